"""The GRBL simulator's G-code lines: parse, soft limits, held lines (sync, dwell, M0) and planning moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drivers.sim import grbl_settings as st
from drivers.sim.grbl_gcode import Action, GcodeError, parse
from drivers.sim.grbl_lines import Line
from drivers.sim.grbl_machine import Block, move_time

if TYPE_CHECKING:
    from drivers.sim.grbl_core import GrblFirmware


@dataclass
class Pending:
    """A line the main loop holds (no `ok` yet): waiting for the planner to empty, a dwell, or room."""

    line: Line
    act: Action | None
    targets: list[tuple[float, float, float]] = field(default_factory=list)
    sync: bool = False
    until: float | None = None
    pause: bool = False  # M0/M1: a feed hold the line waits out
    done_text: list[str] = field(default_factory=list)


def gcode_line(fw: GrblFirmware, line: Line, now: float, out: list[str]) -> None:
    """A G-code line: parsed, soft-limit checked, planned at once or held as `fw.pending`."""
    s_max = fw.settings[30]
    try:
        act = parse(line.text, fw.modal, fw.planned, s_max, fw.m7)
    except GcodeError as err:
        fw.reply(err.code, out)
        return
    if int(fw.settings[20]) and any(not in_travel(fw, t) for t in act.targets):
        # limits_soft_check(): ALARM:2; the line's `ok` only comes after the reset.
        fw.ok_after_reset = True
        out += fw.alarm(st.ALARM_SOFT_LIMIT, now)
        return
    old = fw.modal
    fw.modal = act.modal
    if act.new_wcs:
        fw.wco_counter = 0  # gcode.c: a new offset shows in the next report
    if act.targets:
        fw.planned = act.targets[-1]
    if fw.state == "Check":
        fw.checked.append(line.raw)
        fw.reply(st.OK, out)
        return
    sync = act.sync or (not fw.laser_mode and act.modal.s != old.s and act.modal.spindle != 5)
    if not sync and act.program is None and len(act.targets) <= fw.planner.free:
        # The usual case: planned at once, `ok` now (no need to hold the line).
        for target in act.targets:
            plan(fw, target, act, now)
        fw.executed.append(line.raw)
        fw.stats.ok_sent += 1
        out.append("ok")
        return
    fw.pending = Pending(line, act, list(act.targets), sync=sync, pause=act.program in (0, 1))
    finish_pending(fw, now, out)


def finish_pending(fw: GrblFirmware, now: float, out: list[str]) -> bool:
    """Move the held line on; True (and its `ok` sent) once it is done."""
    p = fw.pending
    assert p is not None
    act = p.act
    if p.sync:
        if fw.planner.blocks:
            return False  # protocol_buffer_synchronize()
        p.sync = False
        fw.planner.pause_accounting()
        if act is not None:
            fw.spindle_on, fw.spindle_s = act.modal.spindle, act.modal.s
            fw.mist, fw.flood = act.modal.mist, act.modal.flood
            fw.set_beam(now)
            if act.dwell_s:
                p.until = now + (act.dwell_s / fw.speed if fw.motion else 0.0)
            if p.pause:
                fw.state, fw.hold_done_at, fw.hold_in_motion = "Hold", None, False
                p.pause = False
                return False
            if act.program in (2, 30):
                p.done_text.append("[MSG:Pgm End]")
    if p.until is not None:
        if now < p.until:
            return False
        p.until = None
        fw.advance(now)
    if fw.state == "Home":
        return False
    while p.targets:
        if fw.planner.free <= 0:
            return False
        plan(fw, p.targets.pop(0), act, now)
    fw.pending = None
    if act is not None:
        fw.executed.append(p.line.raw)
    out += p.done_text
    fw.reply(st.OK, out)
    return True


def plan(fw: GrblFirmware, target: tuple[float, float, float], act: Action | None, now: float) -> None:
    """One block into the planner (or, without motion and with an empty planner, done at once)."""
    planner = fw.planner
    if not fw.motion and not planner.blocks:
        # Moves take no time: the block runs as it is planned (and the beam fires for 0 s).
        planner.moves += 1
        planner.position = target
        return
    start = fw.planner.blocks[-1].end if fw.planner.blocks else fw.planner.where()
    rapid = act is None or act.rapid
    feed = 0.0 if act is None else act.feed
    length = act.length if act is not None and len(act.targets) == 1 else None
    if length is None:
        length = sum((a - b) ** 2 for a, b in zip(start, target, strict=True)) ** 0.5
    rates = (fw.settings[110], fw.settings[111], fw.settings[112])
    duration = move_time(start, target, length, feed, rapid, rates) if fw.motion else 0.0
    if act is not None and act.modal.inverse_time and not rapid and fw.motion:
        duration = 60.0 / max(act.modal.feed, 1e-9)
    modal = act.modal if act is not None else fw.modal
    power = modal.s if modal.spindle in (3, 4) else 0.0
    block = Block(start, target, duration, rapid, feed, power, modal.spindle == 4)
    fw.planner.advance(now, fw.on_block)
    fw.planner.add(block, now)
    if fw.state == "Idle":
        # protocol_auto_cycle_start(): the planner has a block and the main loop goes on reading.
        fw.state = "Run"
        fw.planner.running = True
    fw.set_beam(now)
    if fw.planner.next_boundary(now) == now:
        fw.advance(now)


def in_travel(fw: GrblFirmware, t: tuple[float, float, float]) -> bool:
    # system_check_travel_limits(), with the machine's origin at 0 (HOMING_FORCE_SET_ORIGIN).
    eps = 1e-6
    s = fw.settings
    return all(-eps <= t[k] <= s[130 + k] + eps for k in range(3))
