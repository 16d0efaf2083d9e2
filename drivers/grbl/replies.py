"""Parsing GRBL 1.1 output lines: `ok`, `error:N`, `ALARM:N`, banner, `<status>`, `[MSG:..]`, `$n=v`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ok:
    """The answer to one line (GRBL answers every line with exactly one `ok` or `error:N`)."""


@dataclass(frozen=True)
class LineError:
    """`error:N`: the line was refused (it still counts as answered, its bytes left the RX buffer)."""

    code: int


@dataclass(frozen=True)
class Alarm:
    """`ALARM:N`, a push message: motion stopped, G-code locked until `$X` (or a reset for 1 and 2)."""

    code: int


@dataclass(frozen=True)
class Banner:
    """`Grbl 1.1h ['$' for help]`: the firmware (re)started; its RX buffer and planner are empty."""

    version: str  # "1.1h"


@dataclass(frozen=True)
class Message:
    """`[MSG:text]` feedback (e.g. `Check Door`, `'$H'|'$X' to unlock`, `Reset to continue`)."""

    text: str


@dataclass(frozen=True)
class Bracket:
    """Other `[KEY:value]` push lines: `[VER:..]`, `[OPT:V,15,128]`, `[GC:..]`, `[PRB:..]`, `[G54:..]`."""

    key: str
    value: str


@dataclass(frozen=True)
class Setting:
    """One `$n=value` line of a `$$` dump."""

    number: int
    value: float


@dataclass(frozen=True)
class StatusReport:
    """`<State|MPos:..|...>`. Fields GRBL left out of this report are None (WCO comes only every
    10-30 reports, Ov/A every 10-20: report.c `report_realtime_status`), so callers cache them."""

    state: str  # Idle, Run, Hold, Jog, Alarm, Door, Check, Home, Sleep
    sub_state: int | None = None  # Hold:0 complete / 1 in progress; Door:0 closed-ready .. 3 restoring
    mpos: tuple[float, ...] | None = None
    wpos: tuple[float, ...] | None = None
    wco: tuple[float, ...] | None = None
    feed: float | None = None  # mm/min, from FS: or F:
    speed: float | None = None  # spindle speed = laser power (in M4: the dynamically scaled power)
    planner_free: int | None = None  # Bf: planner blocks free
    rx_free: int | None = None  # Bf: RX bytes free (never used for flow control: often stale)
    line_number: int | None = None  # Ln:
    overrides: tuple[int, int, int] | None = None  # Ov: feed, rapid, spindle (%)
    pins: str | None = None  # Pn: XYZPDHRS, "" when the field is present but empty
    accessories: str | None = None  # A: S/C spindle, F flood, M mist ("" = all off)
    extra: dict[str, str] = field(default_factory=dict)  # fields of other GRBL builds, kept verbatim


@dataclass(frozen=True)
class Other:
    """Anything else (help text, `>G1X1:ok` startup-line echo, garbage from line noise)."""

    text: str


Reply = Ok | LineError | Alarm | Banner | Message | Bracket | Setting | StatusReport | Other

_BANNER = re.compile(r"^Grbl\s+(\S+)\s*\[")
_SETTING = re.compile(r"^\$(\d+)=(-?[\d.]+)")


def parse_line(text: str) -> Reply:
    """One line from GRBL, end of line already stripped."""
    if text == "ok":
        return Ok()
    if text.startswith("error:"):
        code = _int(text[6:])
        return LineError(code) if code is not None else Other(text)
    if text.startswith("ALARM:"):
        code = _int(text[6:])
        return Alarm(code) if code is not None else Other(text)
    if text.startswith("<") and text.endswith(">"):
        report = parse_status(text)
        return report if report is not None else Other(text)
    if text.startswith("[") and text.endswith("]"):
        key, _, value = text[1:-1].partition(":")
        if key == "MSG":
            return Message(value)
        return Bracket(key, value)
    if text.startswith("$"):
        m = _SETTING.match(text)
        if m:
            return Setting(int(m.group(1)), float(m.group(2)))
    m = _BANNER.match(text)
    if m:
        return Banner(m.group(1))
    return Other(text)


def parse_status(text: str) -> StatusReport | None:
    """`<Hold:0|MPos:1.000,2.000,0.000|FS:500,300|Ov:100,100,100>` → StatusReport; None if garbled."""
    parts = text[1:-1].split("|")
    state, _, sub = parts[0].partition(":")
    if not state or not state.isalpha():
        return None
    values: dict[str, object] = {"state": state, "sub_state": _int(sub) if sub else None}
    extra: dict[str, str] = {}
    try:
        for part in parts[1:]:
            key, _, value = part.partition(":")
            if key in ("MPos", "WPos", "WCO"):
                values[key.lower()] = _floats(value)
            elif key == "FS":
                feed, speed = _floats(value)
                values["feed"], values["speed"] = feed, speed
            elif key == "F":
                values["feed"] = float(value)
            elif key == "Bf":
                blocks, rx = value.split(",")
                values["planner_free"], values["rx_free"] = int(blocks), int(rx)
            elif key == "Ln":
                values["line_number"] = int(value)
            elif key == "Ov":
                f, r, s = (int(v) for v in value.split(","))
                values["overrides"] = (f, r, s)
            elif key == "Pn":
                values["pins"] = value
            elif key == "A":
                values["accessories"] = value
            else:
                extra[key] = value
    except ValueError:
        return None
    return StatusReport(extra=extra, **values)  # type: ignore[arg-type]


def _floats(value: str) -> tuple[float, ...]:
    return tuple(float(v) for v in value.split(","))


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None
