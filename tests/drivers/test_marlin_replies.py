"""Unit tests of the parsing of Marlin's reply lines."""

from __future__ import annotations

import pytest

from drivers.base import Temperature
from drivers.marlin.replies import (
    Action,
    Busy,
    Capability,
    Echo,
    FirmwareError,
    FirmwareInfo,
    LineError,
    LineErrorCause,
    Ok,
    Resend,
    Start,
    Temperatures,
    Wait,
    merge_temperatures,
    parse_line,
)

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ok", Ok()),
        ("ok N12 P15 B3", Ok()),
        ("Resend: 42", Resend(42)),
        ("Resend:42", Resend(42)),
        ("rs N42", Resend(42)),
        ("rs 42", Resend(42)),
        ("start", Start()),
        ("wait", Wait()),
        ("echo:busy: processing", Busy("processing")),
        ("busy: paused for user", Busy("paused for user")),
        ("Cap:AUTOREPORT_TEMP:1", Capability("AUTOREPORT_TEMP", True)),
        ("Cap:EMERGENCY_PARSER:0", Capability("EMERGENCY_PARSER", False)),
        ("//action:pause", Action("pause")),
        ('echo:Unknown command: "G999"', Echo('Unknown command: "G999"')),
        ("Error:Printer halted. kill() called!", FirmwareError("Printer halted. kill() called!")),
    ],
)
def test_simple_lines(line: str, expected: object) -> None:
    assert parse_line(line) == expected


def test_line_errors() -> None:
    e = parse_line("Error:Line Number is not Last Line Number+1, Last Line: 41")
    assert isinstance(e, LineError) and e.cause is LineErrorCause.LINE_NUMBER and e.last_line == 41
    e = parse_line("Error:checksum mismatch, Last Line: 7")
    assert isinstance(e, LineError) and e.cause is LineErrorCause.CHECKSUM and e.last_line == 7
    e = parse_line("Error:No Checksum with line number, Last Line: 7")
    assert isinstance(e, LineError) and e.cause is LineErrorCause.NO_CHECKSUM


def test_thermal_runaway_keeps_the_firmware_words() -> None:
    e = parse_line("Error:Thermal Runaway, system stopped! Heater_ID: 0")
    assert e == FirmwareError("Thermal Runaway, system stopped! Heater_ID: 0")


def test_m105_answer_carries_temperatures() -> None:
    r = parse_line("ok T:210.00 /210.00 B:60.00 /60.00 @:127 B@:0")
    assert r == Ok({"T": Temperature(210.0, 210.0), "B": Temperature(60.0, 60.0)})


def test_autoreport_and_m109_progress() -> None:
    r = parse_line(" T:25.31 /200.00 B:24.90 /0.00 @:127 B@:0")
    assert isinstance(r, Temperatures)
    assert r.temperatures == {"T": Temperature(25.31, 200.0), "B": Temperature(24.9, 0.0)}
    r = parse_line("T:180.5 E:0 W:?")
    assert isinstance(r, Temperatures) and r.temperatures == {"T": 180.5}
    merged = merge_temperatures({"T": Temperature(170.0, 200.0)}, r.temperatures)
    assert merged == {"T": Temperature(180.5, 200.0)}


def test_multi_extruder_report() -> None:
    r = parse_line("T:200.0 /200.0 T0:200.0 /200.0 T1:150.0 /0.0 B:60.0 /60.0 @:0 B@:0 @0:0 @1:0")
    assert isinstance(r, Temperatures)
    assert set(r.temperatures) == {"T", "T0", "T1", "B"}


def test_m115() -> None:
    r = parse_line(
        "FIRMWARE_NAME:Marlin 2.1.2.1 (Github) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
        "PROTOCOL_VERSION:1.0 MACHINE_TYPE:3D Printer EXTRUDER_COUNT:1 UUID:cede2a2f"
    )
    assert isinstance(r, FirmwareInfo)
    assert r.name == "Marlin 2.1.2.1 (Github)"
    assert r.fields["MACHINE_TYPE"] == "3D Printer"
    assert r.fields["EXTRUDER_COUNT"] == "1"
