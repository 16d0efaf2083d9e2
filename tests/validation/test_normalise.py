"""Accepted after normalising: BOM, CRLF/LF/CR mixed, comments, lower case, host N-lines, Unicode."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from drivers.gcode import normalize
from drivers.profiles import Profile
from fabzone.validation import ValidationResult, scan_file
from tests.validation.conftest import CURA, HEAD, PRUSA, TAIL, codes


def test_unicode_message_passes(run: Callable[..., ValidationResult]) -> None:
    result = run("M117 Ciao città 你好\nG1 X10 Y10 F3000\n")
    assert result.ok, result.reasons


def test_bom_crlf_mixed_lowercase_comments(run: Callable[..., ValidationResult]) -> None:
    body = "\ufeff" + (
        HEAD + "g1 x10 y10 ; lower case\r\n  G1 X20 ; comment\r;only comment\nm104 s0\r\n" + TAIL
    )
    assert run(body, frame=False).ok
    # Line numbers count CRLF and a lone CR as one end of line each, like the driver's reader.
    bad = "\ufeffG28\r\nG90\rG1 X500\nM104 S0\n"
    assert codes(run(bad, frame=False)) == [("gcode.out_of_volume", 3)]


def test_host_numbered_lines_with_checksums(run: Callable[..., ValidationResult]) -> None:
    from drivers.gcode import numbered_line

    lines = [numbered_line(i + 1, c).decode() for i, c in enumerate(["G28", "G90", "G1 X10 Y10 F3000"])]
    assert run("".join(lines)).ok
    broken = "N1 G28*18\nN2 G1 X10*99\n"  # the first checksum is right, the second is not
    assert numbered_line(1, "G28") == b"N1 G28*18\n"
    assert codes(run(broken)) == [("gcode.bad_checksum", 7)]


def test_modal_coordinates_without_g_word(run: Callable[..., ValidationResult]) -> None:
    assert run("G1 X10 Y10 F3000\nX20 Y20\nX30\n").ok
    assert codes(run("G1 X10 Y10 F3000\nX230 Y20\n")) == [("gcode.out_of_volume", 7)]


def test_scan_measures_what_the_driver_sends(profiles: dict[str, Profile]) -> None:
    """The length the validator counts is the length of drivers.gcode.normalize(line) in bytes."""
    for path in (PRUSA, CURA):
        facts = scan_file(path)
        expected = Counter(
            len(normalize(line).encode())
            for line in path.read_text(encoding="utf-8").splitlines()
            if normalize(line)
        )
        assert {n: c for n, (c, _) in facts.lengths.items()} == dict(expected)


def test_normalize_strips_host_numbers() -> None:
    assert normalize("N123 G1 X5*71") == "G1 X5"
    assert normalize("n5 m117 Ciao*3 ; c") == "M117 Ciao"
    assert normalize("N7 M110 N0*12") == "M110 N0"
    assert normalize("M117 a*b") == "M117 a*b"
    assert normalize("N10") == ""


def test_tail_frame_is_valid(tmp_path: Path, profiles: dict[str, Profile]) -> None:
    path = tmp_path / "frame.gcode"
    path.write_text(HEAD + TAIL, encoding="utf-8")
    assert scan_file(path).file_reasons == []
