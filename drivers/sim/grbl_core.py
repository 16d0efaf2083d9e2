"""The I/O-free core of the GRBL simulator: main loop, realtime commands, states, `$` commands, laser.

Time is passed in (`now`, `time.monotonic()` seconds); the core never sleeps or touches a file. The
threads and the pty live in `grbl.py`, G-code lines and planning in `grbl_program.py`. Every public method returns the text to send (lines, each sent
with GRBL's `\\r\\n`).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.profiles import Profile
from drivers.sim import grbl_realtime as rt
from drivers.sim import grbl_settings as st
from drivers.sim.grbl_gcode import Modal
from drivers.sim.grbl_lines import (
    CMD_CYCLE_START,
    CMD_FEED_HOLD,
    CMD_RESET,
    CMD_SAFETY_DOOR,
    CMD_STATUS_REPORT,
    Line,
    LineAssembler,
    RxBuffer,
    split_realtime,
)
from drivers.sim.grbl_machine import Beam, Block, Planner
from drivers.sim.grbl_program import Pending, finish_pending, gcode_line
from drivers.sim.grbl_system import run_startup_line, status_report, system_line

BANNER = "Grbl 1.1h ['$' for help]"
MSG_UNLOCK = "[MSG:'$H'|'$X' to unlock]"
MSG_RESET_TO_CONTINUE = "[MSG:Reset to continue]"
HOMING_S = 2.0  # simulated seconds a `$H` takes


@dataclass
class GrblFaults:
    """Faults to inject: `corrupt_rate` is the probability that a received line gets one flipped bit."""

    corrupt_rate: float = 0.0


@dataclass
class SimStats:
    lines_received: int = 0
    ok_sent: int = 0
    errors_sent: int = 0
    bytes_dropped: int = 0  # RX overflow
    rx_high_water: int = 0
    planner_idle_s: float = 0.0  # the planner ran dry between moves (the host did not keep up)
    moves: int = 0
    move_time_s: float = 0.0  # what the planned moves need (distance / feed, scaled by speed)
    status_reports: int = 0
    resets: int = 0
    corrupted_lines: int = 0


class GrblFirmware:
    """One GRBL 1.1h board: feed it wire bytes with `receive`, run it with `step`."""

    def __init__(
        self,
        profile: Profile,
        *,
        speed: float = 1.0,
        motion: bool = True,
        settings: dict[int, float] | None = None,
        faults: GrblFaults | None = None,
        seed: int = 0,
        now: float = 0.0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.profile = profile
        self.m7 = profile.laser is not None and profile.laser.enable_m7  # built with ENABLE_M7
        self.speed = speed
        self.motion = motion
        self.faults = faults or GrblFaults()
        self.defaults = st.defaults(profile)
        self.settings = dict(self.defaults)
        for key, value in (settings or {}).items():
            if key not in self.settings:
                raise ValueError(f"GRBL 1.1 has no setting ${key}")
            self.settings[key] = float(value)
        self.stats = SimStats()
        self.executed: list[str] = []
        self.checked: list[str] = []  # lines parsed in check mode ($C): answered, never run
        self.wire_log: list[tuple[float, int]] = []
        self.beam = Beam(now)
        self.startup_lines = ["", ""]
        self.inject_error: int | None = None  # the next line is answered error:<code>
        self.rx = RxBuffer(profile.flow.rx_buffer_bytes)
        self.lines = LineAssembler(
            profile.flow.max_command_chars, corrupt_rate=self.faults.corrupt_rate, seed=seed
        )
        self.planner = Planner(profile.flow.bufsize, speed, now)
        self.door_open = False
        # main.c: a machine with homing enabled powers up locked in Alarm.
        self.state = "Alarm" if int(self.settings[22]) else "Idle"
        self._power_on(now)

    def _power_on(self, now: float) -> None:
        """What a soft reset re-initialises (main.c's loop): parser, planner, overrides, suspend."""
        wcs = getattr(self, "modal", Modal()).wcs  # G54..G59 live in EEPROM; G92 does not
        self.modal = Modal(wcs=wcs)
        self.planned = self.planner.where()
        self.planner.clear(now)
        self.lines.reset()
        self.rx.clear()
        self.pending: Pending | None = None
        self.spindle_on = 5  # what the spindle/laser output is set to (changes are synced)
        self.spindle_s = 0.0
        self.mist = self.flood = False
        self.spindle_ovr = 100
        self.spindle_stop = False
        self.hold_done_at: float | None = None
        self.hold_in_motion = False
        self.door_phase = 0
        self.restore_at: float | None = None
        self.critical = False
        self.ok_after_reset = False
        self.wco_counter = 0
        self.ovr_counter = 0
        self.homing_until: float | None = None
        self.set_beam(now)

    # -- properties the simulator exposes ---------------------------------------------------------

    @property
    def laser_mode(self) -> bool:
        return bool(int(self.settings[32]))

    def state_text(self) -> str:
        if self.state == "Hold":
            return "Hold:0" if self.hold_done_at is None else "Hold:1"
        if self.state == "Door":
            return f"Door:{self.door_phase}"
        return self.state

    def sync_stats(self) -> SimStats:
        s = self.stats
        s.bytes_dropped = self.rx.dropped
        s.rx_high_water = self.rx.high_water
        s.planner_idle_s = self.planner.idle_s
        s.moves = self.planner.moves
        s.move_time_s = self.planner.move_time_s
        s.corrupted_lines = self.lines.corrupted
        return s

    # -- boot and reset ---------------------------------------------------------------------------------

    def boot(self, now: float) -> list[str]:
        """report_init_message() and what protocol_main_loop() says before reading the first line."""
        out = ["", BANNER]
        if self.state in ("Alarm", "Sleep"):
            self.state = "Alarm"
            out.append(MSG_UNLOCK)
        elif self.door_open:
            rt.door(self, now, out)
        else:
            for text in self.startup_lines:
                if text:
                    out.extend(run_startup_line(self, text, now))
        return out

    def soft_reset(self, now: float) -> list[str]:
        """0x18 (mc_reset): stop at once, empty everything, laser off; ALARM:3 if it was moving."""
        out: list[str] = []
        moving = self.state in ("Run", "Home", "Jog") or (
            self.state in ("Hold", "Door") and self.hold_in_motion
        )
        if moving and not self.critical:
            out.append(f"ALARM:{st.ALARM_ABORT_CYCLE}")
            self.state = "Alarm"
        if self.ok_after_reset or self.pending is not None:
            # A line the main loop holds (planner full, sync, dwell, soft limit) returns once the reset
            # aborts the wait, and gc_execute_line() still reports STATUS_OK.
            out.append("ok")
            self.stats.ok_sent += 1
        if self.state not in ("Alarm", "Sleep"):
            self.state = "Idle"  # check mode, hold and door end with a reset
        self.stats.resets += 1
        self._power_on(now)
        return out + self.boot(now)

    # -- bytes from the wire ----------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[str]:
        """Bytes off the wire: realtime ones act now (serial.c ISR), the rest go to the RX buffer."""
        keep, picked = split_realtime(data)
        if not picked:
            self.rx.store(keep)
            return []
        out: list[str] = []
        if keep:
            # Keep arrival order: what came before a realtime byte is read before it acts.
            cut = 0
            for i, b in enumerate(data):
                if b > 0x7F or b in (CMD_RESET, CMD_STATUS_REPORT, CMD_CYCLE_START, CMD_FEED_HOLD):
                    if i > cut:
                        self.rx.store(data[cut:i])
                        out += self.step(now)[0]
                    out += self.realtime(b, now)
                    cut = i + 1
            if cut < len(data):
                self.rx.store(data[cut:])
            return out
        for b in picked:
            out += self.realtime(b, now)
        return out

    def realtime(self, b: int, now: float) -> list[str]:
        if b in (CMD_RESET, CMD_STATUS_REPORT, CMD_CYCLE_START, CMD_FEED_HOLD):
            self.wire_log.append((now, b))
        self.advance(now)
        if b == CMD_RESET:
            return self.soft_reset(now)
        if self.critical:
            return []  # a limit alarm blocks everything but reset (protocol.c), status reports too
        out: list[str] = []
        if b == CMD_STATUS_REPORT:
            self.stats.status_reports += 1
            out.append(status_report(self, now))
        elif b == CMD_FEED_HOLD:
            rt.feed_hold(self, now)
        elif b == CMD_CYCLE_START:
            rt.cycle_start(self, now)
        elif b == CMD_SAFETY_DOOR:
            if self.state not in ("Alarm", "Check", "Sleep"):
                rt.door(self, now, out)
        else:
            rt.override(self, b)
        self.set_beam(now)
        return out

    # -- faults the simulator triggers -----------------------------------------------------------------
    def alarm(self, code: int, now: float) -> list[str]:
        """An alarm from outside the main loop (limit switch, probe, homing) — protocol.c's handling."""
        self.advance(now)
        self.planner.advance(now, self.on_block)
        self.planner.running = False  # mc_reset(): the steppers stop at once
        self.spindle_on = 5
        self.state = "Alarm"
        out = [f"ALARM:{code}"]
        if code in (st.ALARM_HARD_LIMIT, st.ALARM_SOFT_LIMIT):
            # Critical: nothing is processed until a reset, which then leaves the machine locked.
            out.append(MSG_RESET_TO_CONTINUE)
            self.critical = True
            self.set_beam(now)
            return out
        self.hold_in_motion = False
        return out + self.soft_reset(now)

    # -- the main loop ----------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Motion and timers up to `now`."""
        p = self.planner
        p.advance(now, self.on_block)
        if self.state == "Run" and not p.blocks:
            self.state = "Idle"
            p.running = False
            self.set_beam(now)
        if self.hold_done_at is not None and now >= self.hold_done_at:
            self.hold_done_at = None
            if self.state == "Door":
                self.door_phase = 1 if self.door_open else 0
        restore = self.restore_at
        if self.state == "Door" and self.door_phase == 3 and restore is not None and now >= restore:
            rt.resume(self, now)
            self.set_beam(now)
        if self.state == "Home" and self.homing_until is not None and now >= self.homing_until:
            self.homing_until = None
            self.state = "Idle"
            self.planner.position = self.planned = (0.0, 0.0, 0.0)

    def step(self, now: float) -> tuple[list[str], float | None]:
        """Run the main loop as far as it goes at `now`; (lines to send, when to call again)."""
        self.advance(now)
        out: list[str] = []
        suspended = ("Hold", "Door", "Sleep")
        while not self.critical and self.state not in suspended:
            if self.pending is not None and not finish_pending(self, now, out):
                break
            line = self.lines.take(self.rx)
            if line is None:
                break
            self._line(line, now, out)
        return out, self._deadline(now)

    def _deadline(self, now: float) -> float | None:
        times = [t for t in (self.hold_done_at, self.restore_at, self.homing_until) if t is not None]
        nb = self.planner.next_boundary(now)
        if nb is not None:
            times.append(nb)
        if self.pending is not None and self.pending.until is not None:
            times.append(self.pending.until)
        return min(times) if times else None

    def reply(self, code: int, out: list[str]) -> None:
        if code == st.OK:
            self.stats.ok_sent += 1
            out.append("ok")
        else:
            self.stats.errors_sent += 1
            out.append(f"error:{code}")

    def _line(self, line: Line, now: float, out: list[str]) -> None:
        """protocol_main_loop(): one line, one `ok` or `error:N` (motion lines once planned)."""
        self.stats.lines_received += 1
        text = line.text
        if self.inject_error is not None:
            code, self.inject_error = self.inject_error, None
            self.reply(code, out)
        elif line.overflow:
            self.reply(st.OVERFLOW, out)
        elif not text:
            self.reply(st.OK, out)  # empty or comment line: "for syncing purposes"
        elif text[0] == "$":
            system_line(self, line, now, out)
        elif self.state in ("Alarm", "Jog"):
            self.reply(st.SYSTEM_GC_LOCK, out)
        else:
            gcode_line(self, line, now, out)

    # -- the beam -------------------------------------------------------------------------------------

    def on_block(self, nxt: Block | None, at: float) -> None:
        self.beam.set(self._power(nxt), at)

    def _power(self, head: Block | None) -> float:
        """The laser output: in laser mode ($32=1) only while a G1/G2/G3 block runs; else the spindle."""
        if self.critical or self.spindle_stop or self.state in ("Alarm", "Door", "Sleep", "Home"):
            return 0.0
        if self.laser_mode:
            if self.state != "Run" or head is None or head.rapid or not self.planner.running:
                return 0.0
            power = head.power
        else:
            power = self.spindle_s if self.spindle_on in (3, 4) else 0.0
        return min(power * self.spindle_ovr / 100.0, self.settings[30])

    def set_beam(self, now: float) -> None:
        head = self.planner.blocks[0] if self.planner.blocks else None
        self.beam.set(self._power(head), now)
