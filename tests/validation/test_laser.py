"""Laser jobs on GRBL: LightBurn and LaserGRBL exports, the analysis, several profiles, the file's kind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from drivers.profiles import Profile
from fabzone.validation import ValidationResult, check, scan_file, validate
from tests.validation.conftest import DATA, PRUSA, codes, line_of

LIGHTBURN = DATA / "lightburn_grbl_350x250.gcode"
LASERGRBL = DATA / "lasergrbl_raster.gcode"
LASERS = ("grbl-laser-400", "k40-grbl")
PRINTERS = ("prusa-mk3s", "creality-ender3", "marlin-generic")

# Laser on (M4) and one burning move: what every test body below runs after (lines 1-5).
LHEAD = "G90\nG21\nM4 S0\nG0 X1 Y1 F3000\nG1 X2 Y1 S300 F1200\n"
LTAIL = "M5\nG0 X0 Y0\n"

Laser = Callable[..., ValidationResult]


def laser_run(write: Callable[..., Path], profiles: dict[str, Profile]) -> Laser:
    def _run(body: str, profile: str = "grbl-laser-400") -> ValidationResult:
        path = write(LHEAD + body + LTAIL)
        return check(scan_file(path, profiles=[profiles[profile]]), profiles[profile])

    return _run


def test_lightburn_350x250_fits_the_400_not_the_k40(profiles: dict[str, Profile]) -> None:
    results = validate(LIGHTBURN, list(profiles.values()))
    assert results["grbl-laser-400"].ok, results["grbl-laser-400"].reasons
    # The cut frame's first edge reaches X360 (K40: 300 mm), its second Y260 (K40: 200 mm).
    k40 = results["k40-grbl"]
    first_x, first_y = line_of(LIGHTBURN, "G1 X360Y10S800F600"), line_of(LIGHTBURN, "G1 Y260")
    assert codes(k40) == [("gcode.out_of_area", first_x), ("gcode.out_of_area", first_y)]
    params = k40.reasons[0].params
    assert (params["axis"], params["value"], params["max"]) == ("X", 360.0, 300.0)
    text = k40.reasons[0].message("en")
    assert "X=360 mm" in text and f"line {first_x}" in text and "300" in text and "laser" in text
    assert "X=360 mm" in k40.reasons[0].message("it") and "激光" in k40.reasons[0].message("zh")


def test_lasergrbl_raster_fits_both_lasers(profiles: dict[str, Profile]) -> None:
    results = validate(LASERGRBL, [profiles[p] for p in LASERS])
    assert all(r.ok for r in results.values()), {p: r.reasons for p, r in results.items()}


def test_laser_analysis() -> None:
    facts = scan_file(LIGHTBURN)
    assert facts.kind == "laser"
    a = check(facts, _profile("grbl-laser-400")).analysis
    assert a is not None and a.kind == "laser"
    # All motion: the finish move to X0 Y0 and the frame to (360, 260); no Z on this file.
    assert a.bbox is not None and a.burn_bbox is not None
    assert (a.bbox.min_x, a.bbox.min_y, a.bbox.max_x, a.bbox.max_y) == (0.0, 0.0, 360.0, 260.0)
    assert a.bbox.min_z is None and a.bbox.max_z is None
    # Burning: the frame (10..360, 10..260); the G0 to the origin is not in it.
    assert (a.burn_bbox.min_x, a.burn_bbox.min_y, a.burn_bbox.max_x, a.burn_bbox.max_y) == (
        10.0,
        10.0,
        360.0,
        260.0,
    )
    assert a.max_s == 800.0
    assert (a.max_hotend_c, a.max_bed_c, a.filament_mm, a.extrude_bbox) == (None, None, 0.0, None)
    data = LIGHTBURN.read_bytes().decode()
    assert a.lines == len([ln for ln in data.splitlines() if ln.split(";", 1)[0].strip()])
    # The frame alone is 1,200 mm at 10 mm/s = 120 s; the raster and the circle add more.
    assert 150 < a.estimated_s < 400
    assert a.to_dict()["burn_bbox"]["max_x"] == 360.0 and a.to_dict()["max_s"] == 800.0


def test_raster_burn_box_and_power() -> None:
    a = check(scan_file(LASERGRBL), _profile("k40-grbl")).analysis
    assert a is not None and a.burn_bbox is not None and a.bbox is not None
    # Rows from X20 to X60, Y20 to Y39.6; the travel home to (0, 0) is in the motion box only.
    assert (a.burn_bbox.min_x, a.burn_bbox.max_x) == (20.0, 60.0)
    assert (a.burn_bbox.min_y, a.burn_bbox.max_y) == (20.0, 39.6)
    assert (a.bbox.min_x, a.bbox.min_y) == (0.0, 0.0)
    assert a.max_s == 255.0


def test_arc_crossing_a_quadrant_is_in_both_boxes(write: Callable[..., Path]) -> None:
    # From the top of a circle around (330, 140), clockwise to the bottom: through X=340.
    path = write("G90\nM4\nG0 X330Y150\nG2 X330Y130I0J-10S600F1200\nM5\n")
    a = check(scan_file(path), _profile("grbl-laser-400")).analysis
    assert a is not None and a.burn_bbox is not None and a.bbox is not None
    assert a.bbox.max_x == 340.0 and a.burn_bbox.max_x == 340.0 and a.burn_bbox.min_x == 330.0


def test_what_burns(write: Callable[..., Path]) -> None:
    def burn(body: str) -> tuple[float | None, ...] | None:
        a = check(scan_file(write(body)), _profile("grbl-laser-400")).analysis
        assert a is not None and a.kind == "laser", body
        b = a.burn_bbox
        return None if b is None else (b.min_x, b.min_y, b.max_x, b.max_y)

    # G0 never burns (GRBL laser mode), nor S0, nor after M5.
    assert burn("M4 S500\nG0 X10 Y10\nG1 X20 Y10\nG0 X90 Y90\nM5\nG1 X100 Y100\n") == (10.0, 10.0, 20.0, 10.0)
    assert burn("M3 S0\nG1 X10 Y10 F600\nG1 X20 S0\nS300\nG1 X30\n") == (20.0, 10.0, 30.0, 10.0)
    # A modal line after a plain G0 (the scan's fast path) moves in G0: no burn until G1.
    assert burn("G0 X10 Y10\nM4 S500\nX20\nG1 X30\n") == (20.0, 10.0, 30.0, 10.0)


def test_wrong_kind_both_ways_is_one_reason(profiles: dict[str, Profile]) -> None:
    laser = validate(PRUSA, [profiles[p] for p in LASERS])
    for result in laser.values():
        assert codes(result) == [("gcode.wrong_kind", None)]
        assert result.reasons[0].params == {"kind": "printer", "machine_kind": "laser"}
    printer = validate(LIGHTBURN, [profiles[p] for p in PRINTERS])
    for result in printer.values():
        assert codes(result) == [("gcode.wrong_kind", None)]
        assert result.reasons[0].params == {"kind": "laser", "machine_kind": "printer"}
        assert "laser" in result.reasons[0].message("en")
    assert codes(validate(LASERGRBL, [profiles["prusa-mk3s"]])["prusa-mk3s"]) == [("gcode.wrong_kind", None)]


def test_kind_from_evidence(write: Callable[..., Path]) -> None:
    def kind(body: str) -> str:
        return scan_file(write(body)).kind

    # A laser file with a stray heater command stays a laser file (and the line is refused).
    assert kind(LHEAD + "M104 S200\n" + "G1 X5 S100\nX6\nX7\n" + LTAIL) == "laser"
    # A printer file with one M3 stays a printer file.
    assert kind("M104 S200\nM140 S60\nG28\nM3 S100\nG1 X10 E1\nG1 X20 E2\nM104 S0\nM140 S0\n") == "printer"
    # `$` lines and S on moves are laser evidence; plain moves with nothing else: a printer file.
    assert kind("$H\nG0 X10 Y10\n") == "laser"
    assert kind("G1 X10 Y10 S200 F1000\n") == "laser"
    assert kind("G28\nG1 X10 Y10\n") == "printer"


def test_header_and_multi_word_lines(write: Callable[..., Path]) -> None:
    # LightBurn's header sets five modes on one line; `G91 G1` moves relative (GRBL runs G91 first).
    path = write("G00 G17 G40 G21 G54\nG90\nM4 S400\nG1 X100 Y100 F1000\nG91 G1 X50\nG1 X50\nG90\nM5\n")
    facts = scan_file(path)
    assert facts.kind == "laser" and not facts.file_reasons
    assert facts.bbox is not None and facts.bbox.max_x == 200.0
    assert all(w in facts.words for w in ("G0", "G17", "G40", "G21", "G54", "G91"))
    # G53 moves in machine coordinates, past any G92 shift; the shift holds for other lines.
    shifted = scan_file(write("M4 S400\nG1 X100 Y10 F600\nG92 X0\nG53 G0 X5\nG1 X150\nM5\n"))
    assert shifted.bbox is not None and shifted.bbox.max_x == 250.0 and shifted.bbox.min_x == 5.0


def test_paren_comments_and_line_count(write: Callable[..., Path]) -> None:
    path = write("(LaserGRBL)\nG90 (absolute)\nM4 S100 (dynamic\nG1 X10 F600 ( move )\nM5\n")
    facts = scan_file(path)
    assert not facts.file_reasons
    assert facts.lines == 5  # a comment-only line is still sent to GRBL (and answered `ok`)
    assert facts.bbox is not None and facts.bbox.max_x == 10.0


def test_air_assist_accepted_on_every_laser(write: Callable[..., Path], profiles: dict[str, Profile]) -> None:
    # The K40 has no pump: M8 switches a pin that is not wired, which is harmless (laser.py).
    assert not profiles["k40-grbl"].laser.air_assist  # type: ignore[union-attr]
    run = laser_run(write, profiles)
    assert run("M8\nG1 X10 Y10\nM9\n", profile="k40-grbl").ok
    assert run("M8\nG1 X10 Y10\nM9\n", profile="grbl-laser-400").ok


def _profile(pid: str) -> Profile:
    from drivers.profiles import get_profile

    return get_profile(pid)
