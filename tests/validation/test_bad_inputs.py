"""Every class of bad upload: each reason with its stable code and its line number."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from drivers.profiles import Profile
from fabzone.validation import ValidationResult, check, scan_file
from tests.validation.conftest import HEAD, TAIL, codes

Run = Callable[..., ValidationResult]


def test_empty_and_blank_and_comments_only(run: Run) -> None:
    assert codes(run(b"", frame=False)) == [("gcode.empty", None)]
    assert codes(run("\ufeff \n\n\t\r\n", frame=False)) == [("gcode.empty", None)]
    assert codes(run("; only a comment\n;another\n", frame=False)) == [("gcode.no_commands", None)]
    assert run(b"", frame=False).analysis is None


def test_binary_nul_bytes_named_by_line(run: Run) -> None:
    result = run(b"G28\nG1 X1\nG1 X2\x00\x01\x02\nG1 X3\n", frame=False)
    assert codes(result) == [("gcode.binary", 3)]
    assert result.analysis is None
    # A binary STL: header text, then NULs and floats.
    assert codes(run(b"solid binary stl" + b"\x00" * 64 + b"\x01\x02", frame=False)) == [("gcode.binary", 1)]


def test_invalid_utf8_named_by_line(run: Run) -> None:
    result = run(b"G28\nM117 caf\xe9\nG1 X1\n", frame=False)
    assert ("gcode.not_utf8", 2) in codes(result)


def test_stl_text_is_not_gcode_and_bounded(run: Run) -> None:
    facet = "facet normal 0 0 1\n outer loop\n  vertex 0 0 0\n  vertex 1 0 0\n  vertex 0 1 0\n endloop\nendfacet\n"
    result = run("solid cube\n" + facet * 50 + "endsolid cube\n", frame=False)
    found = codes(result)
    assert found[0] == ("gcode.not_gcode", 1)
    assert found[1] == ("gcode.not_gcode", 2)
    assert len(found) == 21  # 20 named lines, then one "and N more"
    more = result.reasons[-1]
    assert more.code == "validation.more"
    assert more.params == {"code": "gcode.not_gcode", "count": 352 - 20}
    assert "332" in more.message("en")


def test_plain_text_is_not_gcode(run: Run) -> None:
    result = run("Hello, please print my cube\nThanks!\n", frame=False)
    assert codes(result) == [("gcode.not_gcode", 1), ("gcode.not_gcode", 2)]
    assert "Hello" in result.reasons[0].message("en")


def test_command_too_long_but_long_comments_pass(run: Run) -> None:
    assert run("; " + "x" * 2000 + "\nG1 X1 Y1 ; " + "y" * 2000 + "\n").ok
    result = run("M117 " + "a" * 100 + "\nG1 X1\n")
    assert codes(result) == [("gcode.command_too_long", 6)]
    params = result.reasons[0].params
    assert params["length"] == 105
    # 96 minus the driver's envelope `N<n> ` and `*<checksum>` (Marlin counts the whole line), with
    # room for the line numbers of a connection that has printed for weeks.
    assert params["limit"] == 96 - len("N99999999 ") - len("*255")


def test_forbidden_commands_named(run: Run) -> None:
    result = run("G1 X10\nM500\nm502 ; factory reset\nM997\n")
    assert codes(result) == [
        ("gcode.forbidden_command", 7),
        ("gcode.forbidden_command", 8),
        ("gcode.forbidden_command", 9),
    ]
    assert [r.params["command"] for r in result.reasons] == ["M500", "M502", "M997"]
    assert "M500" in result.reasons[0].message("zh")


def test_forbidden_commands_bounded(run: Run) -> None:
    result = run("M500\n" * 100)
    assert len(result.reasons) == 21
    assert result.reasons[-1].params == {"code": "gcode.forbidden_command", "count": 80}


def test_hotend_and_bed_limits_s_and_r(run: Run) -> None:
    # Ender-3: hotend <= 260, bed <= 100.
    result = run("M104 S300\nM109 R270\nM109 S250\nM140 S110\nM190 R105\nM190 S90\n")
    assert codes(result) == [
        ("gcode.hotend_too_hot", 6),
        ("gcode.hotend_too_hot", 7),
        ("gcode.bed_too_hot", 9),
        ("gcode.bed_too_hot", 10),
    ]
    assert result.reasons[0].params == {"value": 300.0, "limit": 260.0}
    # The same file is fine on the MK3S (300 / 120).
    assert run("M104 S300\nM140 S110\n", profile="prusa-mk3s").ok


def test_travel_out_of_volume(run: Run) -> None:
    result = run("G1 X10 Y10\nG0 X230 Y10 F9000\nG1 X240\nG1 X10\n")
    assert codes(result) == [("gcode.out_of_volume", 7)]
    params = result.reasons[0].params
    assert (params["axis"], params["value"], params["max"]) == ("X", 230.0, 220.0)
    assert (params["extreme"], params["extreme_line"]) == (240.0, 8)
    text = result.reasons[0].message("en")
    assert "X=230" in text and "line 7" in text and "220" in text


def test_start_and_end_gcode_count(run: Run) -> None:
    # A park move in the end G-code past the bed is as bad as the part.
    assert codes(run("G1 X10 Y10\nG1 X0 Y230 ; park\n")) == [("gcode.out_of_volume", 7)]
    assert codes(run("G1 Z260 ; lift\n")) == [("gcode.out_of_volume", 6)]
    assert codes(run("G1 Z-1\n")) == [("gcode.out_of_volume", 6)]


def test_relative_moves_accumulate(run: Run) -> None:
    result = run("G1 X100 Y100\nG91\n" + "G1 X50\n" * 3 + "G90\nG1 X10\n")
    # 100 + 50 + 50 = 200, then 250 at the third relative move (line 10).
    assert codes(result) == [("gcode.out_of_volume", 10)]
    # G91 switches E to relative too (Marlin 2.1); M83 alone does not touch X/Y/Z.
    assert run("M83\nG1 X100 E5\nG1 X100 E5\nG1 X100 E5\n").ok


def test_inches(run: Run) -> None:
    # 9 in = 228.6 mm: past the Ender-3's 220 mm; 8 in = 203.2 mm is inside.
    assert codes(run("G20\nG1 X9\nG21\n")) == [("gcode.out_of_volume", 7)]
    assert run("G20\nG1 X8\nG21\nG1 X215\n").ok
    assert codes(run("G20\nG91\nG1 X4\nG1 X4\nG1 X4\nG90\nG21\n")) == [("gcode.out_of_volume", 10)]


def test_g92_position_reset(run: Run) -> None:
    # At X100, call it X0: G1 X150 is then machine X250.
    assert codes(run("G1 X100\nG92 X0\nG1 X150\n")) == [("gcode.out_of_volume", 8)]
    # G28 clears the shift again (Marlin set_axis_is_at_home).
    assert run("G1 X100\nG92 X0\nG28 X\nG1 X150\n").ok
    # G92 E0 resets only the extruder.
    assert run("G1 X100 E10\nG92 E0\nG1 X110 E1\n").ok


def test_g92_e_reset_keeps_filament_count(run: Run) -> None:
    result = run("G1 X100 E10\nG92 E0\nG1 X110 E5\nG1 E4\nG1 E5\n")
    assert result.analysis is not None
    assert result.analysis.filament_mm == 15.0  # net: 10 + 5 - 1 (retract) + 1 (prime)


def test_arc_crossing_quadrant_is_checked_by_extent(run: Run) -> None:
    # From (219, 105) around (214, 110): both endpoints at X219 inside the 220 mm bed, but a
    # counter-clockwise arc to (219, 115) crosses 0° and reaches X = 214 + 7.07 = 221.07.
    base = "G1 X219 Y105 F3000\n"
    ccw = run(base + "G3 X219 Y115 I-5 J5\n")
    assert codes(ccw) == [("gcode.out_of_volume", 7)]
    assert abs(ccw.reasons[0].params["value"] - 221.071) < 0.01
    # Clockwise from the same points goes the long way round on the left side: inside.
    assert run(base + "G2 X219 Y115 I-5 J5\n").ok
    # R form: R > 0 is the short arc, the same centre (214, 110).
    assert codes(run(base + "G3 X219 Y115 R7.0711\n")) == [("gcode.out_of_volume", 7)]
    # Full circle (end = start) of radius 10 around (215, 110).
    assert codes(run("G1 X205 Y110\nG2 I10 J0\n")) == [("gcode.out_of_volume", 7)]
    # Below Y0: from (100, 2) around (105, 5) counter-clockwise to (110, 2) passes 270°, Y = -0.83;
    # clockwise the arc goes over the top (Y = 10.83): inside.
    low = run("G1 X100 Y2\nG3 X110 Y2 I5 J3\n")
    assert codes(low) == [("gcode.out_of_volume", 7)]
    assert low.reasons[0].params["axis"] == "Y" and abs(low.reasons[0].params["value"] + 0.831) < 0.01
    assert run("G1 X100 Y2\nG2 X110 Y2 I5 J3\n").ok


def test_truncated_upload(run: Run) -> None:
    body = HEAD + "G1 X10 Y10 E1\nG1 X20 Y10 E2"  # no newline, heaters still on
    result = run(body, frame=False)
    assert codes(result) == [("gcode.truncated", 7)]
    # Heaters switched off at the end: a file saved without a final newline is fine.
    assert run(HEAD + "G1 X10\n" + TAIL.rstrip("\n"), frame=False).ok
    # No heater ever turned on (a plotter-like file): fine too.
    assert run("G28\nG1 X10 Y10", frame=False).ok
    # M109 S0 / M190 S0 count as off.
    assert run("M109 S200\nM190 S60\nG1 X10\nM109 S0\nM190 S0", frame=False).ok


def test_too_large(write: Callable[..., Path], profiles: dict[str, Profile]) -> None:
    path = write(HEAD + "G1 X10\n" * 1000 + TAIL)
    facts = scan_file(path, max_bytes=1000)
    assert [r.code for r in facts.file_reasons] == ["gcode.too_large"]
    assert not check(facts, profiles["marlin-generic"]).ok


def test_file_level_reasons_reach_every_profile(
    write: Callable[..., Path], profiles: dict[str, Profile]
) -> None:
    from fabzone.validation import validate

    path = write(b"G28\nG1 X1\x00\n")
    results = validate(path, list(profiles.values()))
    assert {pid: codes(r) for pid, r in results.items()} == {pid: [("gcode.binary", 2)] for pid in profiles}


def test_multi_profile_part_size(write: Callable[..., Path], profiles: dict[str, Profile]) -> None:
    from fabzone.validation import validate

    # A 240 mm part: too big for marlin-generic (200) and the Ender-3 (220), fine on the MK3S (250).
    path = write(HEAD + "G1 X5 Y20 Z0.2\nG1 X245 Y20 E10\nG1 X245 Y40 E11\n" + TAIL)
    results = validate(path, list(profiles.values()))
    assert results["prusa-mk3s"].ok
    assert codes(results["marlin-generic"]) == [("gcode.out_of_volume", 7)]
    assert codes(results["creality-ender3"]) == [("gcode.out_of_volume", 7)]


def test_endless_line_stops_the_reader(write: Callable[..., Path], profiles: dict[str, Profile]) -> None:
    from fabzone.validation.reader import MAX_LINE_BYTES

    path = write(b"G28\n; " + b"x" * (MAX_LINE_BYTES + 10))
    facts = scan_file(path)
    assert [(r.code, r.line) for r in facts.file_reasons] == [("gcode.line_endless", 2)]
    assert not check(facts, profiles["marlin-generic"]).ok


def test_wrong_machine_kind(write: Callable[..., Path], profiles: dict[str, Profile]) -> None:
    laser = profiles["marlin-generic"].model_copy(update={"kind": "laser", "id": "some-laser"})
    result = check(scan_file(write(HEAD + "G1 X10\n" + TAIL)), laser)
    assert codes(result) == [("gcode.wrong_kind", None)]
    assert "laser" in result.reasons[0].message("en")


def test_commands_that_move_the_coordinate_system_or_wait_at_the_printer_are_forbidden(run: Run) -> None:
    # Each would make a checked file run somewhere unchecked (steps, home offsets) or hang the job.
    for command in ("M92 X40", "M206 X-100", "M428", "M350 X4", "M0", "M1 S10"):
        result = run(f"{command}\nG1 X150 Y100\n")
        assert codes(result) == [("gcode.forbidden_command", 6)], command
        assert result.reasons[0].params["command"] == command.split()[0]


def test_parentheses_are_not_comments_on_marlin(run: Run) -> None:
    # Stock Marlin has no PAREN_COMMENTS: the parser reads on through `(`, so `(Y300)` is Y300 there.
    result = run("G1 X10 (Y300)\nM104 (S400)\n")
    assert codes(result) == [("gcode.paren_comment", 6), ("gcode.paren_comment", 7)]
    assert "( )" in result.reasons[0].message("en") and "括号" in result.reasons[0].message("zh")
    # Display text keeps its parentheses: M117 shows the rest of the line as written.
    assert run("M117 Layer (1/3)\nG1 X10\n").ok


def test_m82_switches_extrusion_back_to_absolute(run: Run) -> None:
    # Relative for the purge (M83), absolute again for the part (M82, as Cura's start G-code does).
    result = run("M83\nG1 X10 E2\nG1 X20 E2\nM82\nG92 E0\nG1 X30 E5\nG1 X40 E7\n")
    assert result.ok, result.reasons
    assert result.analysis is not None
    assert result.analysis.filament_mm == 11.0  # 2 + 2 relative, then 5 and 7 absolute: +5, +2
