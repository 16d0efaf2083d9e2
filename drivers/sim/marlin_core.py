"""The I/O-free core of the Marlin simulator: command queue, line checks, blocking waits, faults.

Time is passed in (`now`, `time.monotonic()` seconds); the core never sleeps or touches a file. The
threads and the pty live in `marlin.py`; the G/M commands in `marlin_commands.py`.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from drivers.gcode import normalize
from drivers.profiles import Profile
from drivers.sim import marlin_replies as txt
from drivers.sim.marlin_commands import Block, find
from drivers.sim.marlin_lines import Line, LineError, LineReader, RxBuffer
from drivers.sim.marlin_machine import Heater, Planner, Position


@dataclass
class MarlinFaults:
    """Faults to inject. Rates are probabilities per line (corrupt) or per `ok` (drop)."""

    corrupt_rate: float = 0.0
    drop_ok_rate: float = 0.0
    drop_ok_lines: set[int] = field(default_factory=set)
    thermal_runaway_after_s: float | None = None
    reset_after_lines: int | None = None


@dataclass
class SimStats:
    lines_received: int = 0
    checksum_errors: int = 0
    line_number_errors: int = 0
    no_checksum_errors: int = 0
    resends_requested: int = 0
    bytes_dropped: int = 0
    corrupted_lines: int = 0
    oks_sent: int = 0
    oks_dropped: int = 0
    planner_idle_s: float = 0.0
    moves: int = 0
    busy_sent: int = 0
    emergency_commands: int = 0
    resets: int = 0


class MarlinFirmware:
    """One Marlin 2.1 board: feed it wire bytes with `receive`, run it with `step`."""

    def __init__(
        self,
        profile: Profile,
        *,
        speed: float = 1.0,
        motion: bool = True,
        faults: MarlinFaults | None = None,
        firmware: str = "Marlin 2.1.2",
        resend_with_ok: bool = True,
        autoreport: bool = True,
        seed: int = 0,
        keepalive_s: float = 2.0,
        temp_report_s: float = 1.0,
        now: float = 0.0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.profile = profile
        self.speed = speed
        self.motion = motion
        self.faults = faults or MarlinFaults()
        self.firmware = firmware
        self.resend_with_ok = resend_with_ok
        self.autoreport = autoreport
        self.seed = seed
        self.keepalive_s = keepalive_s
        self.temp_report_s = temp_report_s
        self._rng = random.Random(seed)
        self.stats = SimStats()
        self.executed: list[str] = []  # commands run, normalised
        self.unknown: list[str] = []  # commands answered `Unknown command`, as received
        self.epoch = 0  # bumped by reset and kill: replies of an older epoch are never written
        self.halted = False
        self._born = now
        self._runaway_done = False
        self._reset_done = False
        self.max_feed = profile.limits.feed_max_mm_min / 60.0  # mm/s, caps every move
        self._power_on(now)

    # -- state -------------------------------------------------------------------------------------

    def _power_on(self, now: float) -> None:
        flow = self.profile.flow
        self.rx = RxBuffer(flow.rx_buffer_bytes)
        self.reader = LineReader(
            flow.max_command_chars, corrupt_rate=self.faults.corrupt_rate, seed=self.seed
        )
        self.queue: deque[Line] = deque()
        self.bufsize = flow.bufsize
        self.planner = Planner()
        self.planner.clear(now)
        self.hotend: Heater = getattr(self, "hotend", None) or Heater(heat_rate=3.0, cool_rate=1.5, _t=now)
        self.bed: Heater = getattr(self, "bed", None) or Heater(heat_rate=1.0, cool_rate=0.3, _t=now)
        for heater in (self.hotend, self.bed):
            heater.set_target(0.0, now, self.speed)  # a reset switches heaters off; the metal stays hot
        self.pos = Position()
        self._current: Block | None = None
        self.ok_text = "ok"  # what acknowledges the current command (M105 puts temperatures in it)
        self._break_wait = False
        self.report_s = 0.0  # M155 auto-report interval (0: off)
        self.next_report = 0.0
        self._next_busy = 0.0
        self._next_temps = 0.0

    def sync_stats(self) -> SimStats:
        s = self.stats
        s.bytes_dropped = self.rx.dropped + getattr(self, "_dropped_before_reset", 0)
        s.planner_idle_s = self.planner.idle_s + getattr(self, "_idle_before_reset", 0.0)
        s.moves = self.planner.moves + getattr(self, "_moves_before_reset", 0)
        s.corrupted_lines = self.reader.corrupted + getattr(self, "_corrupted_before_reset", 0)
        return s

    def boot(self) -> list[str]:
        return txt.boot_lines(self.firmware)

    def reset(self, now: float) -> list[str]:
        """Reset button / watchdog: everything volatile is lost; `start` and the boot lines follow."""
        self.sync_stats()
        self._dropped_before_reset = self.stats.bytes_dropped
        self._idle_before_reset = self.stats.planner_idle_s
        self._moves_before_reset = self.stats.moves
        self._corrupted_before_reset = self.stats.corrupted_lines
        self.stats.resets += 1
        self.epoch += 1
        self.halted = False
        self._power_on(now)
        return self.boot()

    def kill(self, before: list[str] | None = None) -> list[str]:
        """MarlinCore.cpp kill(): the error line, then silence until a reset."""
        self.epoch += 1
        self.halted = True
        self.queue.clear()
        self._current = None
        self.rx.clear()
        return [*(before or []), txt.STR_KILLED]

    def thermal_runaway(self, heater: int | str = 0) -> list[str]:
        heater_id = "bed" if heater in ("bed", -1) else str(heater)
        return self.kill([txt.STR_THERMAL_RUNAWAY.format(heater_id)])

    # -- input ---------------------------------------------------------------------------------------

    def receive(self, chunk: bytes, now: float) -> list[str]:
        """The emergency parser's view of bytes off the wire: it acts on them at once (e_parser.h)."""
        if self.halted:
            return []
        for word in self.rx.scan(chunk):
            self.stats.emergency_commands += 1
            if word == b"M112":
                return self.kill()
            if word == b"M108":
                self._break_wait = True  # wait_for_heatup = wait_for_user = false
            elif word == b"M410":
                self.planner.clear(now)  # quickstop_stepper(): every planned move is dropped
        return []

    def store(self, chunk: bytes) -> bytes:
        """Put bytes into the RX buffer; return what must wait because the firmware is about to drain it.

        Bytes are delivered in bursts here, while a real UART trickles them in and the main loop empties
        the buffer between two bytes. So an overflow only drops bytes while the firmware cannot read:
        blocked in a command (queue.cpp reads nothing until it returns) or halted.
        """
        if self.halted:
            return b""
        return self.rx.store(chunk, drop=self._current is not None)

    # -- the main loop ---------------------------------------------------------------------------------

    def step(self, now: float) -> tuple[list[str], float | None]:
        """Run until blocked or idle; return the lines to send and when to be called again
        (None: only when new bytes arrive)."""
        out: list[str] = []
        if self.halted:
            return out, None
        runaway = self.faults.thermal_runaway_after_s
        if runaway is not None and not self._runaway_done and now - self._born >= runaway:
            self._runaway_done = True
            return self.thermal_runaway(0), None
        self._autoreport(now, out)
        for _ in range(64):  # bounded, so replies go out while a long burst is processed
            if self._current is not None:
                block = self._current
                if not ((self._break_wait and block.breakable) or block.done(now)):
                    self._keepalive(block, now, out)
                    break
                self._current = None
                if block.finish is not None:
                    out.extend(block.finish(now))
                self._complete(out)
                continue
            epoch = self.epoch
            self._fill_queue(now, out)
            if self.epoch != epoch:  # a reset fault fired while reading
                return out, None
            if not self.queue:
                break
            result = self._execute(self.queue[0].command, now)
            if isinstance(result, Block):
                self._current = result
                self._break_wait = False
                self._next_busy = now + self.keepalive_s
                self._next_temps = now + self.temp_report_s
                continue
            out.extend(result)
            if self.halted:  # M112 read from the queue (no emergency parser in the way)
                return out, None
            self._complete(out)
        return out, self._deadline(now)

    def _deadline(self, now: float) -> float | None:
        times: list[float] = []
        if self._current is not None:
            block = self._current
            times += [block.wake(now), self._next_busy]
            if block.temps:
                times.append(self._next_temps)
        if self.report_s:
            times.append(self.next_report)
        runaway = self.faults.thermal_runaway_after_s
        if runaway is not None and not self._runaway_done:
            times.append(self._born + runaway)
        if not times:
            return None
        return max(min(times), now + 0.0005)

    def _fill_queue(self, now: float, out: list[str]) -> None:
        """queue.cpp get_serial_commands(): read only while the command queue has room."""
        reader, rx, stats = self.reader, self.rx, self.stats
        while len(self.queue) < self.bufsize:
            raw = reader.take_line(rx)
            if raw is None:
                return
            if not raw.strip():
                continue
            stats.lines_received += 1
            try:
                line = reader.parse(raw)
            except LineError as err:
                self._line_error(err, out)
                continue
            if line is None:
                continue
            self.queue.append(line)
            limit = self.faults.reset_after_lines
            if limit is not None and not self._reset_done and stats.lines_received >= limit:
                self._reset_done = True
                out.clear()  # the board died before it could send anything else
                out.extend(self.reset(now))
                return

    def _line_error(self, err: LineError, out: list[str]) -> None:
        """gcode_line_error(): report, flush the RX buffer, then ask for the next line again."""
        stats = self.stats
        if err.kind == "checksum":
            stats.checksum_errors += 1
        elif err.kind == "line_number":
            stats.line_number_errors += 1
        else:
            stats.no_checksum_errors += 1
        out.append("Error:" + err.message)
        self.rx.clear()
        self.reader.partial.clear()
        stats.resends_requested += 1
        out.append(f"{txt.STR_RESEND}{self.reader.last_n + 1}")
        if self.resend_with_ok:  # 2.1 flush_and_request_resend() sends `ok`; older versions did not
            out.append("ok")

    def _complete(self, out: list[str]) -> None:
        """The command at the head is done: remove it and acknowledge (gcode.cpp process_next_command)."""
        line = self.queue.popleft() if self.queue else None
        ok, self.ok_text = self.ok_text, "ok"
        if not ok:
            return
        faults = self.faults
        if line is not None and line.number is not None and line.number in faults.drop_ok_lines:
            faults.drop_ok_lines.discard(line.number)
            self.stats.oks_dropped += 1
            return
        if faults.drop_ok_rate and self._rng.random() < faults.drop_ok_rate:
            self.stats.oks_dropped += 1
            return
        self.stats.oks_sent += 1
        out.append(ok)

    # -- periodic output ---------------------------------------------------------------------------------

    def temperatures(self, now: float) -> str:
        h, b = self.hotend, self.bed
        h.update(now, self.speed)
        b.update(now, self.speed)
        return txt.heater_states(h.temp, h.target, b.temp, b.target, h.power(), b.power())

    def _autoreport(self, now: float, out: list[str]) -> None:
        if self.report_s and now >= self.next_report:
            out.append(self.temperatures(now))
            self.next_report = now + self.report_s

    def _keepalive(self, block: Block, now: float, out: list[str]) -> None:
        """gcode.cpp host_keepalive(): `busy: processing` every interval while a command blocks."""
        if block.temps and now >= self._next_temps:
            out.append(self.temperatures(now) + " W:?")
            self._next_temps = now + self.temp_report_s
        if now >= self._next_busy:
            out.append(txt.STR_BUSY)
            self.stats.busy_sent += 1
            self._next_busy = now + self.keepalive_s

    # -- commands ----------------------------------------------------------------------------------------

    def _execute(self, command: str, now: float) -> list[str] | Block:
        handler = find(command, autoreport=self.autoreport)
        if handler is None:
            # Answered `Unknown command` and not run: kept apart, so `executed` is only what ran (a
            # line whose N was damaged to `n` would otherwise read, normalised, like a real run of it).
            self.unknown.append(command)
            return [txt.STR_UNKNOWN.format(command)]
        # Upper-case commands (what drivers send) are already normal; only the others pay for normalize().
        self.executed.append(command if command.isupper() else normalize(command))
        return handler(self, command, now)
