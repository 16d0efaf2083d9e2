"""GRBL's realtime commands and the safety door (protocol.c's state machine), for the core."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drivers.sim.grbl_core import GrblFirmware

MSG_CHECK_DOOR = "[MSG:Check Door]"
RESTORE_COOLANT_S = 1.0  # config.h SAFETY_DOOR_COOLANT_DELAY
RESTORE_SPINDLE_S = 4.0  # config.h SAFETY_DOOR_SPINDLE_DELAY (skipped in laser mode)


def override(fw: GrblFirmware, b: int) -> None:
    """Override bytes 0x90–0xA1 (config.h CMD_*_OVR_*); any change shows `Ov:` in the next report."""
    p = fw.planner
    feed = {0x90: 100 - p.feed_ovr, 0x91: 10, 0x92: -10, 0x93: 1, 0x94: -1}
    spindle = {0x99: 100 - fw.spindle_ovr, 0x9A: 10, 0x9B: -10, 0x9C: 1, 0x9D: -1}
    if b in feed:
        p.feed_ovr = max(10, min(200, p.feed_ovr + feed[b]))
    elif b in (0x95, 0x96, 0x97):
        p.rapid_ovr = {0x95: 100, 0x96: 50, 0x97: 25}[b]
    elif b in spindle:
        fw.spindle_ovr = max(10, min(200, fw.spindle_ovr + spindle[b]))
    elif b == 0x9E and fw.state == "Hold":
        fw.spindle_stop = not fw.spindle_stop
    elif b == 0xA0 and fw.state in ("Idle", "Run", "Hold"):
        fw.flood = fw.modal.flood = not fw.flood
    elif b == 0xA1 and fw.state in ("Idle", "Run", "Hold"):
        fw.mist = fw.modal.mist = not fw.mist
    else:
        return  # 0x85 jog cancel (no jog in progress) and unknown bytes: thrown away
    fw.ovr_counter = 0


def feed_hold(fw: GrblFirmware, now: float) -> None:
    if fw.state == "Run":
        fw.state = "Hold"
        fw.hold_in_motion = True
        v = fw.planner.current_feed() / 60.0
        accel = fw.settings[120]
        decel = v / accel / fw.speed if fw.motion and accel > 0 else 0.0
        fw.planner.advance(now, fw.on_block)
        fw.planner.running = False
        fw.hold_done_at = now + decel if decel > 0 else None
    elif fw.state == "Idle":
        fw.state = "Hold"  # protocol.c: idle, so the hold is complete at once
        fw.hold_done_at = None


def cycle_start(fw: GrblFirmware, now: float) -> None:
    if fw.state == "Hold" and fw.hold_done_at is None:
        fw.spindle_stop = False
        resume(fw, now)
    elif fw.state == "Door" and fw.door_phase == 0:
        delay = (RESTORE_COOLANT_S if (fw.mist or fw.flood) else 0.0) + (
            0.0 if fw.laser_mode or fw.spindle_on == 5 else RESTORE_SPINDLE_S
        )
        fw.door_phase = 3
        fw.restore_at = now + (delay / fw.speed if fw.motion else 0.0)
    elif fw.state == "Idle" and fw.planner.blocks:
        resume(fw, now)


def resume(fw: GrblFirmware, now: float) -> None:
    fw.hold_in_motion = False
    fw.restore_at = None
    if fw.planner.blocks:
        fw.state = "Run"
        fw.planner.advance(now, fw.on_block)
        fw.planner.running = True
    else:
        fw.state = "Idle"


def door(fw: GrblFirmware, now: float, out: list[str]) -> None:
    """EXEC_SAFETY_DOOR: `[MSG:Check Door]`, stop like a feed hold, laser and coolant off."""
    out.append(MSG_CHECK_DOOR)
    if fw.state == "Run" or (fw.state == "Hold" and fw.hold_in_motion):
        if fw.state == "Run":
            feed_hold(fw, now)
        fw.state = "Door"
        fw.door_phase = 2 if fw.hold_done_at is not None else (1 if fw.door_open else 0)
    elif fw.state in ("Idle", "Hold", "Door"):
        fw.state = "Door"
        fw.hold_done_at = None
        fw.door_phase = 1 if fw.door_open else 0
    fw.restore_at = None


def open_door(fw: GrblFirmware, now: float) -> list[str]:
    fw.advance(now)
    fw.door_open = True
    out: list[str] = []
    if fw.state not in ("Alarm", "Check", "Sleep") and not fw.critical:
        door(fw, now, out)
    fw.set_beam(now)
    return out


def close_door(fw: GrblFirmware, now: float) -> list[str]:
    fw.advance(now)
    fw.door_open = False
    if fw.state == "Door" and fw.door_phase in (1, 3):
        fw.door_phase = 0
        fw.restore_at = None
    return []
