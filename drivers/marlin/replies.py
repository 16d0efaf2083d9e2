"""Parsing of the lines a Marlin firmware sends to the host into small typed replies (no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from drivers.base import Temperature


class LineErrorCause(StrEnum):
    """Why Marlin refused a numbered line (language.h STR_ERR_*); each is followed by `Resend:`."""

    LINE_NUMBER = "line_number"  # "Line Number is not Last Line Number+1": a lost or stale line
    CHECKSUM = "checksum"  # "checksum mismatch": the line with the expected N arrived damaged
    NO_CHECKSUM = "no_checksum"  # "No Checksum with line number" / "No Line Number with checksum"


@dataclass(frozen=True, slots=True)
class Ok:
    """`ok`, `ok T:...` (the answer to M105) or ADVANCED_OK's `ok N.. P.. B..`."""

    temperatures: dict[str, Temperature] | None = None


@dataclass(frozen=True, slots=True)
class Resend:
    number: int


@dataclass(frozen=True, slots=True)
class LineError:
    cause: LineErrorCause
    last_line: int | None
    text: str


@dataclass(frozen=True, slots=True)
class FirmwareError:
    """Any other `Error:` line; the driver decides with the profile whether it is fatal."""

    text: str  # without the `Error:` prefix


@dataclass(frozen=True, slots=True)
class Busy:
    """HOST_KEEPALIVE_FEATURE: `echo:busy: processing` every 2 s while a command blocks."""

    text: str


@dataclass(frozen=True, slots=True)
class Temperatures:
    """An auto-report (M155) or the progress lines M109/M190 print while heating."""

    temperatures: dict[str, Temperature | float]


@dataclass(frozen=True, slots=True)
class Start:
    """`start`: the firmware (re)booted and forgot every queued command."""


@dataclass(frozen=True, slots=True)
class Wait:
    """`wait`: idle and waiting for commands (NO_TIMEOUTS)."""


@dataclass(frozen=True, slots=True)
class FirmwareInfo:
    """M115's first line: `FIRMWARE_NAME:Marlin 2.1.2 (Github) SOURCE_CODE_URL:... KEY:value ...`."""

    name: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Capability:
    """M115's `Cap:AUTOREPORT_TEMP:1` lines (EXTENDED_CAPABILITIES_REPORT)."""

    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class Action:
    """`//action:pause` and friends (HOST_ACTION_COMMANDS)."""

    action: str


@dataclass(frozen=True, slots=True)
class Echo:
    text: str


@dataclass(frozen=True, slots=True)
class Other:
    text: str


Reply = (
    Ok
    | Resend
    | LineError
    | FirmwareError
    | Busy
    | Temperatures
    | Start
    | Wait
    | FirmwareInfo
    | Capability
    | Action
    | Echo
    | Other
)

# `T:210.00 /210.00`, `B:60.0 /60.0`, `T0:...`, and the target-less `T:200.1 E:0 W:?` of M109.
_TEMP = re.compile(r"(?<![\w@])([TBCPRL]\d?):\s*(-?\d+(?:\.\d+)?)(?:\s*/\s*(-?\d+(?:\.\d+)?))?")
_RESEND = re.compile(r"^(?:Resend|rs)\s*:?\s*N?\s*(\d+)", re.IGNORECASE)
_LAST_LINE = re.compile(r"Last Line:\s*(-?\d+)")
# M115 keys are upper-case words ending in a colon; the values may contain spaces.
_M115_KEY = re.compile(r"\b([A-Z][A-Z0-9_]*):")


def parse_temperatures(text: str) -> dict[str, Temperature | float]:
    """Sensor -> Temperature(actual, target), or the bare actual when no target was printed."""
    found: dict[str, Temperature | float] = {}
    for key, actual, target in _TEMP.findall(text):
        if target:
            found[key] = Temperature(float(actual), float(target))
        else:
            found.setdefault(key, float(actual))
    return found


def _line_error(text: str) -> LineError | None:
    lowered = text.lower()
    if "line number is not last line number" in lowered:
        cause = LineErrorCause.LINE_NUMBER
    elif "checksum mismatch" in lowered:
        cause = LineErrorCause.CHECKSUM
    elif "no checksum" in lowered or "no line number" in lowered:
        cause = LineErrorCause.NO_CHECKSUM
    else:
        return None
    match = _LAST_LINE.search(text)
    return LineError(cause, int(match.group(1)) if match else None, text)


def _firmware_info(text: str) -> FirmwareInfo:
    keys = list(_M115_KEY.finditer(text))
    fields: dict[str, str] = {}
    for i, key in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        fields[key.group(1)] = text[key.end() : end].strip()
    return FirmwareInfo(fields.get("FIRMWARE_NAME", ""), fields)


def parse_line(raw: str) -> Reply:
    """Classify one line from the firmware (without its line ending)."""
    line = raw.strip()
    if line == "ok" or line.startswith("ok "):
        temps = parse_temperatures(line[3:]) if "T:" in line else {}
        full = {k: v for k, v in temps.items() if isinstance(v, Temperature)}
        return Ok(full or None)
    if match := _RESEND.match(line):
        return Resend(int(match.group(1)))
    if line.startswith("Error:") or line.startswith("!!"):
        text = line.removeprefix("Error:").removeprefix("!!").strip()
        return _line_error(text) or FirmwareError(text)
    if line == "start":
        return Start()
    if line == "wait":
        return Wait()
    if line.startswith("echo:busy:") or line.startswith("busy:"):
        return Busy(line.partition("busy:")[2].strip())
    if line.startswith("Cap:"):
        name, _, value = line[4:].rpartition(":")
        return Capability(name.strip().upper(), value.strip() == "1")
    if line.startswith("FIRMWARE_NAME:"):
        return _firmware_info(line)
    if line.startswith("//action:"):
        return Action(line.removeprefix("//action:").strip())
    if line.startswith("echo:"):
        return Echo(line.removeprefix("echo:").strip())
    if "T:" in line or "B:" in line:
        temps = parse_temperatures(line)
        if temps:
            return Temperatures(temps)
    return Other(line)


def merge_temperatures(
    previous: dict[str, Temperature], report: dict[str, Temperature | float]
) -> dict[str, Temperature]:
    """Fold a report into the last known readings; a bare actual keeps the last known target."""
    merged = dict(previous)
    for key, value in report.items():
        if isinstance(value, Temperature):
            merged[key] = value
        else:
            old = previous.get(key)
            merged[key] = Temperature(value, old.target if old else 0.0)
    return merged
