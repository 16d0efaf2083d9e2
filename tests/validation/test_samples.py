"""Realistic slicer files: PrusaSlicer MK3S and Cura Ender-3, on every profile; the analysis."""

from __future__ import annotations

import hashlib
from pathlib import Path

from drivers.profiles import Profile
from fabzone.validation import Analysis, scan_file, validate
from tests.validation.conftest import CURA, PRUSA, codes, line_of


def test_prusa_file_passes_on_mk3s_only(profiles: dict[str, Profile]) -> None:
    # The file carries comment lines of 4,000 characters (prusaslicer_config): they do not count.
    assert max(len(line) for line in PRUSA.read_text(encoding="utf-8").splitlines()) > 1000
    results = validate(PRUSA, list(profiles.values()))
    assert results["prusa-mk3s"].ok, results["prusa-mk3s"].reasons
    purge = line_of(PRUSA, "G1 Y-3 F1000")
    for other in ("creality-ender3", "marlin-generic"):
        result = results[other]
        assert not result.ok
        assert codes(result) == [("gcode.out_of_volume", purge)]
        params = result.reasons[0].params
        assert (params["axis"], params["value"], params["min"]) == ("Y", -3.0, 0.0)


def test_cura_file_passes_on_ender3(profiles: dict[str, Profile]) -> None:
    results = validate(CURA, list(profiles.values()))
    assert results["creality-ender3"].ok, results["creality-ender3"].reasons
    # "Present print" at Y220 is past the 200/210 mm beds.
    present = line_of(CURA, "G1 X0 Y220")
    assert codes(results["marlin-generic"]) == [("gcode.out_of_volume", present)]
    assert codes(results["prusa-mk3s"]) == [("gcode.out_of_volume", present)]


def test_analysis_of_prusa_file(profiles: dict[str, Profile]) -> None:
    result = validate(PRUSA, [profiles["prusa-mk3s"]])["prusa-mk3s"]
    a = result.analysis
    assert isinstance(a, Analysis)
    data = PRUSA.read_bytes()
    assert a.sha256 == hashlib.sha256(data).hexdigest()
    assert a.file_bytes == len(data)
    assert a.file_lines == data.count(b"\n")
    commands = [ln for ln in data.decode().splitlines() if ln.split(";", 1)[0].strip()]
    assert a.lines == len(commands)
    assert a.kind == "printer"
    assert (a.max_hotend_c, a.max_bed_c) == (215.0, 60.0)
    assert a.bbox is not None and a.extrude_bbox is not None
    # All motion: purge line at Y-3, park at X0 Y200, lift to Z52.6.
    assert (a.bbox.min_y, a.bbox.max_y, a.bbox.max_z) == (-3.0, 200.0, 52.6)
    # Extrusion: the purge line from X0 to X100 at Y-3 and the 30 mm cube around (125, 105).
    assert (a.extrude_bbox.min_x, a.extrude_bbox.min_y) == (0.0, -3.0)
    assert (a.extrude_bbox.max_x, a.extrude_bbox.max_y) == (140.0, 120.0)
    assert a.extrude_bbox.max_z == 2.8
    # Filament, net of retractions: intro 9 + 12.5 mm (M83, relative), 14 layers of
    # (4 x 30 + 6 x 29.2) mm x 0.03326, and the end G-code's last 0.8 mm retraction.
    expected = 9 + 12.5 + 14 * (4 * 30 + 6 * 29.2) * 0.03326 - 0.8
    assert abs(a.filament_mm - expected) < 0.05
    # Never from the header ("6666m 6s"): a few minutes of moves plus heating/homing allowances.
    assert 150 < a.estimated_s < 600
    data_dict = a.to_dict()
    assert data_dict["bbox"]["min_y"] == -3.0 and data_dict["sha256"] == a.sha256


def test_cura_time_placeholder_is_ignored(profiles: dict[str, Profile], tmp_path: Path) -> None:
    ender = profiles["creality-ender3"]
    with_header = validate(CURA, [ender])["creality-ender3"].analysis
    stripped = tmp_path / "no-header.gcode"
    stripped.write_text(CURA.read_text(encoding="utf-8").replace(";TIME:6666", ";TIME:1"), encoding="utf-8")
    without = validate(stripped, [ender])["creality-ender3"].analysis
    assert with_header is not None and without is not None
    assert with_header.estimated_s == without.estimated_s != 6666


def test_scan_once_check_many(profiles: dict[str, Profile]) -> None:
    facts = scan_file(PRUSA, profiles=list(profiles.values()))
    from fabzone.validation import check

    a = {pid: check(facts, p).analysis for pid, p in profiles.items()}
    # Slower acceleration, longer job: the estimate is per profile.
    assert a["creality-ender3"].estimated_s > a["marlin-generic"].estimated_s  # type: ignore[union-attr]
    assert len({x.sha256 for x in a.values() if x}) == 1
