"""The simulated Marlin's G/M commands: which ones the firmware knows, and what each one does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.sim import marlin_replies as txt
from drivers.sim.marlin_machine import Heater, parse_params

if TYPE_CHECKING:
    from drivers.sim.marlin_core import MarlinFirmware

_WORD = re.compile(r"\s*([A-Za-z])\s*([0-9]+)(?:\.([0-9]+))?")
HOMING_S = 3.0  # simulated seconds a G28 takes
# Commands a stock Marlin 2.1 accepts that change nothing the simulator models.
_ACCEPTED = frozenset(
    [
        "G17",
        "G18",
        "G19",
        "G20",
        "G21",
        "G29",
        "G80",
        "G53",
        "G54",
        "M17",
        "M18",
        "M84",
        "M73",
        "M75",
        "M76",
        "M77",
        "M80",
        "M81",
        "M92",
        "M106",
        "M107",
        "M117",
        "M118",
        "M108",
        "M119",
        "M120",
        "M200",
        "M201",
        "M203",
        "M204",
        "M205",
        "M206",
        "M207",
        "M208",
        "M209",
        "M211",
        "M220",
        "M221",
        "M280",
        "M300",
        "M301",
        "M302",
        "M303",
        "M304",
        "M420",
        "M500",
        "M501",
        "M502",
        "M503",
        "M504",
        "M851",
        "M876",
        "M900",
        "M907",
        "M999",
        "T0",
    ]
)
_MOVES = frozenset(["G0", "G1", "G2", "G3"])


@dataclass(slots=True)
class Block:
    """A command that holds the firmware (and its `ok`) until `done(now)`."""

    done: Callable[[float], bool]
    wake: Callable[[float], float]  # when `done` may next become true
    finish: Callable[[float], list[str]] | None = None
    temps: bool = False  # M109/M190 print the heater states every second
    breakable: bool = False  # M108 (emergency parser) ends the wait


Handler = Callable[["MarlinFirmware", str, float], "list[str] | Block"]


def find(command: str, *, autoreport: bool) -> Handler | None:
    """The handler for `command`, or None when the firmware answers `Unknown command`."""
    m = _WORD.match(command)
    if m is None:
        return None
    letter = m.group(1).upper()
    word = f"{letter}{int(m.group(2))}" + (f".{m.group(3)}" if m.group(3) else "")
    if letter == "G" and word in _MOVES:
        return _move
    if word == "M155" and not autoreport:
        return None  # AUTO_REPORT_TEMPERATURES not compiled in: M155 does not exist
    handler = _HANDLERS.get(word)
    if handler is not None:
        return handler
    if word in _ACCEPTED:
        return _accept
    return None


def _accept(fw: MarlinFirmware, command: str, now: float) -> list[str]:
    return []


def _move(fw: MarlinFirmware, command: str, now: float) -> list[str] | Block:
    # Arcs are planned as their chord: enough for timing, the simulator draws nothing.
    distance = fw.pos.move(parse_params(command))
    if distance <= 0:
        return []  # planner.buffer_line() drops zero-length moves
    duration = 0.0
    if fw.motion:
        feed = min(fw.pos.feed_mm_min / 60.0, fw.max_feed)
        duration = distance / feed / fw.speed
    planner = fw.planner
    if planner.has_room(now):
        planner.add(duration, now)
        return []

    def finish(t: float) -> list[str]:
        planner.add(duration, t)
        return []

    # Planner full: the move (and its `ok`) waits for a free block — the host's only back-pressure.
    return Block(planner.has_room, planner.next_free, finish)


def _after_planner(
    fw: MarlinFirmware, seconds: float, now: float, finish: Callable[[float], list[str]] | None
) -> Block:
    """planner.synchronize() then a fixed time (G4, G28)."""
    planner = fw.planner
    planner.pause_accounting()
    end = planner.drained_at(now) + (seconds / fw.speed if fw.motion else 0.0)
    return Block(lambda t: t >= end, lambda t: end, finish)


def _g4(fw: MarlinFirmware, command: str, now: float) -> Block:
    p = parse_params(command)
    seconds = p.get("S", 0.0) + p.get("P", 0.0) / 1000.0
    return _after_planner(fw, seconds, now, None)


def _g28(fw: MarlinFirmware, command: str, now: float) -> Block:
    axes = [a for a in "XYZ" if a in parse_params(command)] or list("XYZ")

    def finish(t: float) -> list[str]:
        fw.pos.set(dict.fromkeys(axes, 0.0))
        return []

    return _after_planner(fw, HOMING_S, now, finish)


def _g92(fw: MarlinFirmware, command: str, now: float) -> list[str]:
    fw.pos.set(parse_params(command))
    return []


def _positioning(relative: bool | None, relative_e: bool | None) -> Handler:
    def handler(fw: MarlinFirmware, command: str, now: float) -> list[str]:
        if relative is not None:
            fw.pos.relative = relative
            fw.pos.relative_e = relative  # G90/G91 set E too (unless M82/M83 later)
        if relative_e is not None:
            fw.pos.relative_e = relative_e
        return []

    return handler


def _m400(fw: MarlinFirmware, command: str, now: float) -> Block:
    fw.planner.pause_accounting()
    return Block(fw.planner.is_empty, lambda t: fw.planner.drained_at(t))


def _set_temp(fw: MarlinFirmware, heater: Heater, command: str, now: float, wait: bool) -> list[str] | Block:
    p = parse_params(command)
    value = p.get("S", p.get("R"))
    if value is not None:
        heater.set_target(value, now, fw.speed)
    if not wait or (heater.target <= 0 and "R" not in p):
        return []
    cooling_too = "R" in p
    speed = fw.speed
    fw.planner.pause_accounting()
    return Block(
        lambda t: heater.reached(t, speed, cooling_too=cooling_too),
        lambda t: t + max(0.001, heater.time_to_reach(t, speed)),
        temps=True,
        breakable=True,
    )


def _m105(fw: MarlinFirmware, command: str, now: float) -> list[str]:
    fw.ok_text = "ok" + fw.temperatures(now)
    return []


def _m110(fw: MarlinFirmware, command: str, now: float) -> list[str]:
    p = parse_params(command)
    if "N" in p:
        fw.reader.last_n = int(p["N"])
    return []


def _m112(fw: MarlinFirmware, command: str, now: float) -> list[str]:
    return fw.kill()


def _m114(fw: MarlinFirmware, command: str, now: float) -> list[str]:
    return [fw.pos.report()]


def _m115(fw: MarlinFirmware, command: str, now: float) -> list[str]:
    return txt.m115_lines(fw.firmware, fw.profile.name, autoreport=fw.autoreport, seed=fw.seed)


def _m155(fw: MarlinFirmware, command: str, now: float) -> list[str]:
    fw.report_s = max(0.0, parse_params(command).get("S", 0.0))
    fw.next_report = now + fw.report_s
    return []


def _m410(fw: MarlinFirmware, command: str, now: float) -> list[str]:
    fw.planner.clear(now)
    return []


_HANDLERS: dict[str, Handler] = {
    "G4": _g4,
    "G28": _g28,
    "G90": _positioning(False, None),
    "G91": _positioning(True, None),
    "G92": _g92,
    "M82": _positioning(None, False),
    "M83": _positioning(None, True),
    "M104": lambda fw, c, now: _set_temp(fw, fw.hotend, c, now, wait=False),
    "M109": lambda fw, c, now: _set_temp(fw, fw.hotend, c, now, wait=True),
    "M140": lambda fw, c, now: _set_temp(fw, fw.bed, c, now, wait=False),
    "M190": lambda fw, c, now: _set_temp(fw, fw.bed, c, now, wait=True),
    "M105": _m105,
    "M110": _m110,
    "M112": _m112,
    "M114": _m114,
    "M115": _m115,
    "M155": _m155,
    "M400": _m400,
    "M410": _m410,
}
