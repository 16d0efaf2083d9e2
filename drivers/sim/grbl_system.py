"""GRBL's `$` system commands (system.c) and its realtime status report (report.c), for the core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivers.sim import grbl_settings as st
from drivers.sim.grbl_gcode import GcodeError, parse
from drivers.sim.grbl_lines import Line

if TYPE_CHECKING:
    from drivers.sim.grbl_core import GrblFirmware

HELP = "[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]"
VERSION = "[VER:1.1h.20190830:]"
# report.c: WCO every 30 reports while busy (10 idle), Ov every 20 (10 idle).
WCO_BUSY, WCO_IDLE, OVR_BUSY, OVR_IDLE = 30, 10, 20, 10
_BUSY = frozenset(("Run", "Hold", "Door", "Home", "Jog"))


def _xyz(v: tuple[float, float, float]) -> str:
    return f"{v[0]:.3f},{v[1]:.3f},{v[2]:.3f}"


def status_report(fw: GrblFirmware, now: float) -> str:
    """report_realtime_status() of GRBL 1.1h: `<State|MPos:…|Bf:…|FS:…|Pn:…|WCO:…|Ov:…|A:…>`."""
    pos = fw.planner.where()
    mask = int(fw.settings[10])
    wco = fw.modal.wco()
    parts = [fw.state_text()]
    if mask & 1:
        parts.append("MPos:" + _xyz(pos))
    else:
        parts.append("WPos:" + _xyz((pos[0] - wco[0], pos[1] - wco[1], pos[2] - wco[2])))
    if mask & 2:
        parts.append(f"Bf:{fw.planner.free},{fw.rx.free}")
    parts.append(f"FS:{fw.planner.current_feed():.0f},{fw.beam.power if fw.laser_mode else fw.spindle_s:.0f}")
    if fw.door_open:
        parts.append("Pn:D")
    busy = fw.state in _BUSY
    if fw.wco_counter > 0:
        fw.wco_counter -= 1
    else:
        fw.wco_counter = (WCO_BUSY if busy else WCO_IDLE) - 1
        if fw.ovr_counter == 0:
            fw.ovr_counter = 1  # the overrides come in the next report
        parts.append("WCO:" + _xyz(wco))
    if fw.ovr_counter > 0:
        fw.ovr_counter -= 1
    else:
        fw.ovr_counter = (OVR_BUSY if busy else OVR_IDLE) - 1
        parts.append(f"Ov:{fw.planner.feed_ovr},{fw.planner.rapid_ovr},{fw.spindle_ovr}")
        acc = ""
        if fw.spindle_on == 3:
            acc += "S"
        elif fw.spindle_on == 4:
            acc += "C"
        if fw.flood:
            acc += "F"
        if fw.mist:
            acc += "M"
        if acc:
            parts.append("A:" + acc)
    return "<" + "|".join(parts) + ">"


def run_startup_line(fw: GrblFirmware, text: str, now: float) -> list[str]:
    """system_execute_startup(): `>line:ok` (deliberately not a bare `ok`)."""
    try:
        act = parse(text, fw.modal, fw.planned, fw.settings[30], fw.m7)
    except GcodeError as err:
        return [f">{text}:error:{err.code}"]
    fw.modal = act.modal
    return [f">{text}:ok"]


def system_line(fw: GrblFirmware, line: Line, now: float, out: list[str]) -> None:
    """system_execute_line(): every `$` command, answered with GRBL's status codes."""
    text = line.text
    state = fw.state
    if text == "$":
        out.append(HELP)
        fw.reply(st.OK, out)
        return
    cmd = text[1]
    if cmd in "$GCX" and len(text) > 2:
        fw.reply(st.INVALID_STATEMENT, out)
        return
    if cmd == "$":
        if state in ("Run", "Hold"):
            fw.reply(st.IDLE_ERROR, out)  # "Block during cycle. Takes too long to print."
            return
        out += st.dump(fw.settings)
        fw.reply(st.OK, out)
    elif cmd == "G":
        out.append(fw.modal.gc_line())
        fw.reply(st.OK, out)
    elif cmd == "C":
        if state == "Check":
            # Leaving check mode is a soft reset: `[MSG:Disabled]`, `ok`, then the banner.
            out.append("[MSG:Disabled]")
            fw.reply(st.OK, out)
            out += fw.soft_reset(now)
            return
        if state != "Idle":
            fw.reply(st.IDLE_ERROR, out)
            return
        fw.state = "Check"
        out.append("[MSG:Enabled]")
        fw.reply(st.OK, out)
    elif cmd == "X":
        if state == "Alarm":
            if fw.door_open:
                fw.reply(st.CHECK_DOOR, out)
                return
            out.append("[MSG:Caution: Unlocked]")
            fw.state = "Idle"
        fw.reply(st.OK, out)
    elif cmd == "J":
        fw.reply(st.UNSUPPORTED_COMMAND, out)  # jogging is not simulated
    elif state not in ("Idle", "Alarm"):
        fw.reply(st.IDLE_ERROR, out)  # EEPROM, homing and sleep need Idle or Alarm
    else:
        _idle_command(fw, line, now, out)


def _idle_command(fw: GrblFirmware, line: Line, now: float, out: list[str]) -> None:
    text = line.text
    cmd = text[1]
    if cmd == "#" and len(text) == 2:
        for i, c in enumerate(fw.modal.wcs):
            out.append(f"[G{54 + i}:{_xyz(c)}]")
        out += ["[G28:0.000,0.000,0.000]", "[G30:0.000,0.000,0.000]", f"[G92:{_xyz(fw.modal.g92)}]"]
        out += ["[TLO:0.000]", "[PRB:0.000,0.000,0.000:0]"]
        fw.reply(st.OK, out)
    elif text == "$I":
        # V variable spindle; M mist (M7) only on a build with ENABLE_M7, as the profile says, so
        # that `$I` tells the same story as the profile validation checks files against.
        letters = "VM" if fw.m7 else "V"
        opt = f"[OPT:{letters},{fw.planner.capacity},{fw.rx.capacity}]"
        out += [VERSION, opt]
        fw.reply(st.OK, out)
    elif text == "$H":
        if not int(fw.settings[22]):
            fw.reply(st.SETTING_DISABLED, out)
        elif fw.door_open:
            fw.reply(st.CHECK_DOOR, out)
        else:
            from drivers.sim.grbl_core import HOMING_S
            from drivers.sim.grbl_program import Pending

            fw.state = "Home"
            fw.homing_until = now + (HOMING_S / fw.speed if fw.motion else 0.0)
            fw.pending = Pending(line, None)
    elif text == "$SLP":
        fw.reply(st.OK, out)
        fw.planner.clear(now)
        fw.spindle_on, fw.mist, fw.flood = 5, False, False
        fw.state = "Sleep"
        out.append("[MSG:Sleeping]")
    elif text.startswith("$RST="):
        what = text[5:]
        if what not in ("$", "#", "*"):
            fw.reply(st.INVALID_STATEMENT, out)
            return
        if what in ("$", "*"):
            fw.settings = dict(fw.defaults)
        if what in ("#", "*"):
            fw.modal.wcs = [(0.0, 0.0, 0.0)] * 6
        if what == "*":
            fw.startup_lines = ["", ""]
        out.append("[MSG:Restoring defaults]")
        fw.reply(st.OK, out)
        out += fw.soft_reset(now)
    elif text == "$N":
        out += [f"$N{i}={s}" for i, s in enumerate(fw.startup_lines)]
        fw.reply(st.OK, out)
    elif text.startswith("$N") and len(text) > 3 and text[2] in "01" and text[3] == "=":
        fw.startup_lines[int(text[2])] = text[4:]
        fw.reply(st.OK, out)
    elif text.startswith("$I="):
        fw.reply(st.OK, out)  # the build-info string is stored in EEPROM
    else:
        fw.reply(_write_setting(fw, text), out)


def _write_setting(fw: GrblFirmware, text: str) -> int:
    key, eq, value = text[1:].partition("=")
    if not eq:
        return st.INVALID_STATEMENT
    try:
        n = float(key)
        v = float(value)
    except ValueError:
        return st.BAD_NUMBER_FORMAT
    if n != int(n):
        return st.INVALID_STATEMENT
    code = st.check_write(fw.settings, int(n), v)
    if code != st.OK:
        return code
    fw.settings[int(n)] = (
        float(int(v)) if int(n) in (0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 32) else v
    )
    if int(n) == 22 and not int(v):
        fw.settings[20] = 0.0  # settings.c: disabling homing forces soft limits off
    return st.OK
