"""Every class of bad laser job on GRBL: each reason with its stable code and its line number."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.profiles import Profile
from fabzone.validation import ValidationResult
from tests.validation.conftest import codes
from tests.validation.test_laser import LHEAD, laser_run

# Body lines start at 6 (LHEAD is five lines).
B = 6
Run = Callable[..., ValidationResult]


@pytest.fixture
def run(write: Callable[..., Path], profiles: dict[str, Profile]) -> Run:
    return laser_run(write, profiles)


def test_clean_file_passes(run: Run) -> None:
    result = run("G1 X100 Y100 S1000\nG0 X400 Y400\n")
    assert result.ok, result.reasons
    assert result.analysis is not None and result.analysis.kind == "laser"


@pytest.mark.parametrize(
    "line",
    ["$32=0", "$130=500", "$RST=*", "$RST=$", "$SLP", "$H", "$X", "$J=G91 X10 F100", "$C", "$$", "$#", "$I"],
)
def test_dollar_commands_refused(run: Run, line: str) -> None:
    result = run(f"G1 X10\n{line}\nG1 X20\n")
    assert codes(result) == [("gcode.controller_command", B + 1)]
    assert result.reasons[0].params == {"command": line.upper()}
    assert line.upper() in result.reasons[0].message("en")


def test_dollar_lines_named_and_bounded(run: Run) -> None:
    result = run("$32=0\n" * 30)
    assert [r.line for r in result.reasons[:20]] == list(range(B, B + 20))
    assert result.reasons[-1].params == {"code": "gcode.controller_command", "count": 10}


def test_printer_commands_on_a_laser(run: Run) -> None:
    result = run("G1 X10\nM104 S200\nM140 S60\nM106 S255\nG1 X20 E5\nM109 S200\nM190 S60\nG1 X30\n")
    assert sorted(codes(result), key=lambda c: c[1] or 0) == [
        ("gcode.printer_command", B + n) for n in (1, 2, 3, 4, 5, 6)
    ]
    by_line = {r.line: r.params["command"] for r in result.reasons}
    assert by_line == {B + 1: "M104", B + 2: "M140", B + 3: "M106", B + 4: "E", B + 5: "M109", B + 6: "M190"}
    # A heater S is not laser power: no `laser_power_too_high` for S200 on a laser with S max 1000.
    assert result.analysis is not None and result.analysis.max_s == 300.0


def test_z_on_a_machine_without_z(run: Run) -> None:
    result = run("G0 Z5\nG1 X10 Y10\nG1 X20 Z-1\nG92 Z0\n")
    assert codes(result) == [("gcode.no_z_axis", B), ("gcode.no_z_axis", B + 2), ("gcode.no_z_axis", B + 3)]
    assert f"Line {B}" in result.reasons[0].message("en")


def test_outside_the_area_travel_included(run: Run) -> None:
    # The burn is inside; the G0 travel to X412 is not.
    result = run("G1 X100 Y100\nG0 X412 Y10\nG0 X10 Y10\n")
    assert codes(result) == [("gcode.out_of_area", B + 1)]
    reason = result.reasons[0]
    assert (reason.params["axis"], reason.params["value"], reason.params["max"]) == ("X", 412.0, 400.0)
    text = reason.message("en")
    assert "X=412 mm" in text and f"line {B + 1}" in text and "400 mm" in text
    # Below zero, relative moves, inches.
    assert codes(run("G0 X5 Y5\nG91\nG1 X-10\nG90\n")) == [("gcode.out_of_area", B + 2)]
    assert codes(run("G20\nG0 X16\nG21\n")) == [("gcode.out_of_area", B + 1)]  # 16 in = 406.4 mm
    # An arc whose endpoints are inside but whose extent is not (around (395, 200), r = 10).
    assert codes(run("G0 X395 Y190\nG3 X395 Y210 I0 J10\n")) == [("gcode.out_of_area", B + 1)]
    assert run("G0 X395 Y190\nG2 X395 Y210 I0 J10\n").ok


def test_power_above_the_maximum_first_and_highest(run: Run) -> None:
    result = run("G1 X10 S900\nX20S1200\nS1500\nG1 X30\nM3 S1100\nX40S1000\n")
    assert codes(result) == [("gcode.laser_power_too_high", B + 1)]
    params = result.reasons[0].params
    assert params == {"value": 1200.0, "limit": 1000.0, "extreme": 1500.0, "extreme_line": B + 2}
    text = result.reasons[0].message("en")
    assert "S1200" in text and f"line {B + 1}" in text and "S1000" in text and "1000" in text
    assert "S1500" in result.reasons[0].message("it") and "S1200" in result.reasons[0].message("zh")
    # Exactly the maximum is fine; bare `S` lines count too.
    assert run("S1000\nG1 X10\n").ok
    assert codes(run("S1000.5\nG1 X10\n")) == [("gcode.laser_power_too_high", B)]


def test_line_length_after_cleaning(run: Run) -> None:
    # GRBL keeps 79 characters (LINE_BUFFER_SIZE 80 minus one, protocol.c); spaces and ( ) do not count.
    x79 = "G1X1" + "0" * 75  # 79 characters
    assert len(x79) == 79
    # X10…0 is far outside the area, but not too long.
    assert codes(run(f"{x79}\n")) == [("gcode.out_of_area", B)]
    result = run("G1X1" + "0" * 76 + "\n")
    assert ("gcode.laser_line_too_long", B) in codes(result)
    reason = next(r for r in result.reasons if r.code == "gcode.laser_line_too_long")
    assert reason.params == {"length": 80, "limit": 79}
    # 120 raw characters, 19 after cleaning: fine.
    assert run("G1 X10  Y10" + " " * 60 + "(a long comment kept by the exporter)" + "\n").ok
    # Long comments after `;` never count.
    assert run("G1 X10 ; " + "x" * 200 + "\n").ok


def test_commands_grbl_does_not_run_in_a_job(run: Run) -> None:
    body = "G10 L20 P1 X0 Y0\nG28\nG55\nG38.2 X10 F100\nM0\nG18\nG1 X10\n"
    result = run(body)
    found = sorted(codes(result), key=lambda c: c[1] or 0)
    assert found == [("gcode.laser_unsupported", B + n) for n in range(6)]
    assert [r.params["command"] for r in sorted(result.reasons, key=lambda r: r.line or 0)] == [
        "G10",
        "G28",
        "G55",
        "G38.2",
        "M0",
        "G18",
    ]


def test_m7_follows_the_firmware_build(run: Run, profiles: dict[str, Profile]) -> None:
    # M7 exists only in GRBL builds with ENABLE_M7; the profile says which machine has it.
    assert profiles["grbl-laser-400"].laser.enable_m7  # type: ignore[union-attr]
    assert not profiles["k40-grbl"].laser.enable_m7  # type: ignore[union-attr]
    body = "M7\nG1 X10 Y10\nM9\nM8\nM7\nG1 X20\nM9\n"
    assert run(body, profile="grbl-laser-400").ok
    result = run(body, profile="k40-grbl")
    assert codes(result) == [("gcode.laser_no_m7", B), ("gcode.laser_no_m7", B + 4)]
    reason = result.reasons[0]
    # The reason names the machine's firmware and the way out (M8), in every language.
    en = reason.message("en")
    assert f"Line {B}" in en and "without M7" in en and "M8" in en and "firmware" in en
    assert "senza M7" in reason.message("it") and "M8" in reason.message("it")
    assert "没有包含 M7" in reason.message("zh") and "M8" in reason.message("zh")
    # M8 alone is fine on the K40 (air_assist or not: see test_laser.py).
    assert run("M8\nG1 X10 Y10\nM9\n", profile="k40-grbl").ok


def test_m7_default_is_off(profiles: dict[str, Profile]) -> None:
    # A profile that does not say is a stock build: M7 refused.
    laser = profiles["k40-grbl"].laser
    assert laser is not None
    data = laser.model_dump()
    del data["enable_m7"]
    assert not type(laser).model_validate(data).enable_m7


def test_several_problems_at_once(run: Run) -> None:
    result = run("$32=0\nG0 Z3\nG1 X500 S2000\nM104 S210\n")
    assert set(codes(result)) == {
        ("gcode.controller_command", B),
        ("gcode.no_z_axis", B + 1),
        ("gcode.out_of_area", B + 2),
        ("gcode.laser_power_too_high", B + 2),
        ("gcode.printer_command", B + 3),
    }


def test_head_is_a_laser_file() -> None:
    # The frame the tests above run in: laser on and one burning move, nothing else.
    assert LHEAD.count("\n") == B - 1
