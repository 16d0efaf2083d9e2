"""GrblDriver: streams a laser job to GRBL 1.1 over pyserial with character counting and realtime bytes.

Threads (both daemons, started by `connect()`), as in drivers/marlin/driver.py:

* the reader blocks in `serial.read()`, splits lines, parses them (`replies.py`) and updates the flow
  (`flow.py`) and the machine view under the driver's lock, then wakes the sender;
* the sender sleeps on a condition variable until an answer frees RX budget, a command arrives or a
  deadline passes (status poll, coalesced status); it then writes, in one write, a `?` if one is due,
  the driver's own `$` commands (one at a time, send-response) and as many job lines as the budget takes.

Realtime bytes (`!` pause, `~` resume, 0x18 cancel/emergency stop) are written from the caller's
thread at once: GRBL's serial ISR acts on them wherever they fall in the stream, even inside a line,
and they never take RX buffer space (serial.c), so they jump every queue and the budget. Emergency stop
does not even take the driver's lock.

Choices (where notes/grbl.md and issue 4 leave room):
* `completed` = every line answered `ok` AND two status reports, both requested after the last `ok`,
  say `Idle` (or `Check` in check mode). One is not enough: protocol.c reports status before it
  auto-starts the cycle in the same pass, so a `?` right after the last `ok` can say Idle with the
  last moves still queued.
* State changes seen in status reports (Hold/Door from the machine, Run after a cycle start at the
  machine) are trusted only from a report whose `?` was written two polls after our own last `!`/`~`:
  the report requested before or with the command may describe the machine before it (protocol.c
  reports status before it executes a hold or cycle start of the same pass). One `?` is in flight at
  a time so reports and requests pair up.
* No `ok` timeout: GRBL legitimately withholds an `ok` while a long move empties a planner slot. The
  controller is alive as long as it answers `?`; `flow.ok_timeout_s` without a status report fails the
  job and resets the controller (the beam's state is unknown).
* `error:N` for a job line fails the job (file line number and message) and soft-resets: the lines
  after it are already in GRBL's buffer and would run. Cancel soft-resets too, then `$X` (a person
  decided, the machine is fine). Emergency stop soft-resets and leaves the driver in ERROR until
  `unlock()`. An `ALARM:N` fails the job and leaves ERROR until `unlock()` (ALARM:1/2 need a reset
  first, which `unlock()` does). The safety door pauses (PAUSED, reason in `status.message`); closing
  it does not resume: only `resume()` does.
* `close()` with a job running soft-resets first: a laser must not finish the buffered moves unwatched.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import serial

from drivers.base import (
    ConnectionChanged,
    ConnectionFailed,
    Driver,
    DriverError,
    DriverState,
    EventCallback,
    HandshakeFailed,
    JobEnded,
    JobOutcome,
    NotReady,
)
from drivers.grbl.codes import CRITICAL_ALARMS, alarm_message, error_message
from drivers.grbl.flow import CharCounter, StreamingMode
from drivers.grbl.handshake import ConnectionLost, GrblFacts, Handshake
from drivers.grbl.lines import JobLine, UnsafeLine, iter_job
from drivers.grbl.replies import (
    Alarm,
    Banner,
    LineError,
    Message,
    Ok,
    Reply,
    StatusReport,
    parse_line,
)
from drivers.grbl.settings import check_settings
from drivers.grbl.view import MachineView
from drivers.profiles import Profile

RESET = b"\x18"
FEED_HOLD = b"!"
CYCLE_START = b"~"
STATUS = b"?"
STATUS_MIN_INTERVAL_S = 0.1  # progress snapshots at most 10 per second
RESET_TIMEOUT_S = 3.0  # a soft reset prints the banner within milliseconds; after this GRBL is gone
START_WAIT_S = 5.0  # start_job waits this long for a cancel's reset and `$X` to finish
_JOB_SPAN = 1 << 32  # job line tags are job_seq * span + file line number; driver commands are < 0
DOOR_OPEN = "safety door open: the beam is off — close the lid, then resume"
DOOR_CLOSED = "safety door closed: resume when ready"
LOCKED = "the controller is locked (alarm) — unlock it"


@dataclass
class _Command:
    """A `$` command of the driver's (unlock, settings, check mode): sent alone, answered alone."""

    line: str
    done: threading.Event = field(default_factory=threading.Event)
    replies: list[Reply] = field(default_factory=list)
    error: int | None = None
    lost: bool = False
    on_done: Callable[[_Command], None] | None = None


class GrblDriver(Driver):
    """A GRBL 1.1 laser behind `serial_for_url(connection)`: a device, a pty or `socket://`."""

    protocol = "grbl"

    def __init__(self, profile: Profile, connection: str, *, on_event: EventCallback | None = None) -> None:
        super().__init__(profile, connection, on_event=on_event)
        mode: StreamingMode = "send_response" if profile.flow.streaming == "send_response" else "char_count"
        self.flow = CharCounter(profile.flow.rx_buffer_bytes, mode)
        self.facts = GrblFacts()
        self.view = MachineView(profile.limits.laser_s_max)
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)  # the sender sleeps on it
        self._changed = threading.Condition(self._lock)  # API calls waiting for a reset to finish
        self._ser: serial.SerialBase | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._handshake_replies: queue.Queue[Reply | ConnectionLost] | None = None
        self._online = False
        self._refusal: str | None = None  # settings that make jobs unsafe ($32, $30)
        self._critical_alarm = False  # ALARM:1/2: only a reset unlocks
        self._alarm_text: str | None = None
        # soft reset in progress: "cancel"/"error" (then `$X`), "estop" (stay ERROR), "unlock"
        # (unlock() continues), "relock" (our `$X` after a cancel is in flight)
        self._resetting: str | None = None
        self._reset_at = 0.0
        self._control: deque[_Command] = deque()
        self._in_flight_cmds: dict[int, _Command] = {}
        self._cmd_seq = 0
        self._banners = 0
        # status polling: one `?` in flight at a time
        self._polls = 0  # `?` written
        self._poll_out: int | None = None  # number of the unanswered `?`
        self._poll_at = 0.0
        self._next_poll = 0.0
        self._trust_after = 0  # reports answering polls <= this may predate our last `!`/`~`
        self._last_report = 0.0
        # coalesced status
        self._dirty = False
        self._last_status = 0.0
        # the job
        self._job_id: str | None = None
        self._job_seq = 0
        self._job_iter: Iterator[JobLine] | None = None
        self._job_next: JobLine | None = None
        self._job_acked = 0
        self._job_all_sent = False
        self._drain_from: int | None = None  # every line acked; count Idle reports after this poll
        self._idle_reports = 0

    # -- public API ----------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._ser is not None:
                raise NotReady("already connected")
            self._set_status(state=DriverState.CONNECTING, message=None)
        try:
            ser = serial.serial_for_url(
                self.connection, baudrate=self.profile.baud, timeout=0.1, write_timeout=2
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self._set_status(state=DriverState.DISCONNECTED, message=str(exc))
            raise ConnectionFailed(f"cannot open {self.connection}: {exc}") from exc
        self._stop.clear()
        self._ser = ser
        self._handshake_replies = queue.Queue()
        reader = threading.Thread(target=self._read_loop, name=f"grbl-read {self.connection}", daemon=True)
        self._threads = [reader]
        reader.start()
        try:
            facts = Handshake(self._handshake_replies, self._write, time.monotonic() + timeout).run()
        except (HandshakeFailed, ConnectionFailed) as exc:
            self._shutdown()
            self._set_status(state=DriverState.DISCONNECTED, message=str(exc))
            raise
        except (serial.SerialException, OSError) as exc:
            self._shutdown()
            self._set_status(state=DriverState.DISCONNECTED, message=str(exc))
            raise ConnectionFailed(f"{self.connection}: {exc}") from exc
        with self._lock:
            self.facts = facts
            self._handshake_replies = None
            budget = self.profile.flow.rx_buffer_bytes
            if facts.rx_buffer_bytes:
                budget = min(budget, facts.rx_buffer_bytes)  # `$I` knows the build's RX_BUFFER_SIZE
            self.flow = CharCounter(budget, self.flow.mode)
            self._refusal = check_settings(self.profile, facts.settings)
            if facts.state is not None:
                self.view.update(facts.state)
            self._last_report = time.monotonic()
            self._online = True
            if self._refusal:
                state, message = DriverState.ERROR, self._refusal
            elif facts.locked:
                state, message = DriverState.ERROR, LOCKED
            else:
                state, message = DriverState.IDLE, None
            self._set_status(
                state=state, firmware=f"Grbl {facts.version}", message=message, extra=self.view.extra()
            )
            self._emit(ConnectionChanged(True))
        sender = threading.Thread(target=self._send_loop, name=f"grbl-send {self.connection}", daemon=True)
        self._threads.append(sender)
        sender.start()

    def start_job(self, job_id: str, path: Path, total_lines: int | None = None) -> None:
        with self._lock:
            self._wait_reset(START_WAIT_S)
            if self._refusal:
                raise NotReady(self._refusal)
            if self.status.state is not DriverState.IDLE or self._job_id is not None:
                why = self.status.message or f"the machine is {self.status.state}"
                raise NotReady(f"cannot start a job: {why}")
            if self.view.door_open:
                raise NotReady("cannot start a job: the safety door is open")
            if not Path(path).is_file():
                raise NotReady(f"job file {path} does not exist")
            self._job_id = job_id
            self._job_seq += 1
            self._job_iter = iter_job(Path(path), self.profile.flow.max_command_chars)
            self._job_next = None
            self._job_acked = 0
            self._job_all_sent = False
            self._drain_from = None
            self._idle_reports = 0
            self._set_status(
                state=DriverState.RUNNING, job_id=job_id, lines_acked=0, lines_total=total_lines, message=None
            )
            self._wake.notify()

    def pause(self) -> None:
        """Feed hold (`!`): GRBL decelerates to a stop and, in laser mode, turns the beam off."""
        with self._lock:
            if self.status.state is not DriverState.RUNNING or self._job_id is None:
                raise NotReady(f"cannot pause while {self.status.state}")
            self._realtime(FEED_HOLD)
            self._set_status(state=DriverState.PAUSED, message=None)

    def resume(self) -> None:
        """Cycle start (`~`). Refused while the door is open (GRBL would ignore it)."""
        with self._lock:
            if self.status.state is not DriverState.PAUSED or self._job_id is None:
                raise NotReady(f"cannot resume while {self.status.state}")
            if self.view.door_open or self.status.message == DOOR_OPEN:
                raise NotReady("cannot resume: the safety door is open")
            self._realtime(CYCLE_START)
            self._set_status(state=DriverState.RUNNING, message=None)
            self._wake.notify()

    def cancel(self) -> None:
        """Soft reset (0x18): motion and beam stop at once and GRBL drops what it buffered; then `$X`
        (a reset in motion locks GRBL with ALARM:3, but here a person decided and the machine is fine)."""
        with self._lock:
            if self._job_id is None:
                raise NotReady("no job to cancel")
            self._realtime(RESET)
            self._begin_reset("cancel")
            self._end_job("cancelled", "cancelled", DriverState.IDLE)

    def emergency_stop(self) -> None:
        ser = self._ser
        if ser is None:
            raise NotReady("not connected")
        try:
            ser.write(RESET)  # no lock, no queue: 0x18 acts in GRBL's ISR wherever it lands
        except (serial.SerialException, OSError) as exc:
            raise ConnectionFailed(f"emergency stop not sent: {exc}") from exc
        with self._lock:
            self._begin_reset("estop")
            reason = "emergency stop (soft reset): locked until a technician unlocks it"
            if self._job_id is not None:
                self._end_job("cancelled", "emergency stop", DriverState.ERROR, message=reason)
            else:
                self._set_status(state=DriverState.ERROR, message=reason)

    def unlock(self, timeout: float = 10.0) -> None:
        """`$X` after an alarm or an emergency stop (soft reset first after ALARM:1/2, which GRBL only
        leaves through a reset). A settings refusal ($32, $30) raises NotReady: fix, then reconnect."""
        with self._lock:
            self._require_link()
            if self._job_id is not None:
                raise NotReady("a job is running")
            if self._refusal:
                raise NotReady(f"unlocking does not help: {self._refusal} (then reconnect)")
            self._wait_reset(RESET_TIMEOUT_S)
            if self._critical_alarm:
                self._realtime(RESET)
                self._begin_reset("unlock")
                self._wait_reset(RESET_TIMEOUT_S)
        self._command("$X", timeout)
        with self._lock:
            self._critical_alarm = False
            self._alarm_text = None
            self._set_status(state=DriverState.IDLE, message=None)

    def send_setting(self, number: int, value: float, timeout: float = 10.0) -> None:
        """Write `$n=value` (a technician's action): alone, send-response, since GRBL's AVR stops
        reading serial while it writes EEPROM. Not during a job."""
        with self._lock:
            self._require_link()
            if self._job_id is not None:
                raise NotReady("settings cannot be written during a job")
        self._command(f"${number}={value:g}", timeout)
        with self._lock:
            self.facts.settings[number] = float(value)

    def set_check_mode(self, enabled: bool, timeout: float = 10.0) -> None:
        """`$C`: GRBL parses lines without moving or firing (to pre-check a program). Leaving check
        mode soft-resets GRBL (system.c), so we wait for its banner."""
        with self._lock:
            self._require_link()
            if self._job_id is not None:
                raise NotReady("not during a job")
            checking = self.view.report is not None and self.view.report.state == "Check"
            if checking == enabled:
                return
            banners = self._banners
        self._command("$C", timeout)
        with self._lock:
            deadline = time.monotonic() + RESET_TIMEOUT_S
            while not enabled and self._banners == banners and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            self._poll_now()

    def close(self) -> None:
        with self._lock:
            if self._ser is None:
                return
            if self._job_id is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    self._ser.write(RESET)  # nobody will watch the buffered moves
                self._end_job("interrupted", "driver closed", DriverState.DISCONNECTED)
        self._shutdown()
        with self._lock:
            if self._online:
                self._online = False
                self._emit(ConnectionChanged(False, "closed"))
            self._set_status(state=DriverState.DISCONNECTED)

    # -- plumbing ------------------------------------------------------------------------------

    def _require_link(self) -> None:
        if self._ser is None:
            raise NotReady("not connected")

    def _shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            self._wake.notify_all()
            self._changed.notify_all()
            ser, self._ser = self._ser, None
            self._fail_commands()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads = []
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def _write(self, data: bytes) -> None:
        ser = self._ser
        if ser is None:
            raise ConnectionFailed("link closed")
        ser.write(data)

    def _realtime(self, byte: bytes) -> None:
        """A realtime byte from the caller's thread; status reports requested up to the next poll may
        describe the machine before it."""
        try:
            self._write(byte)
        except (serial.SerialException, OSError) as exc:
            raise ConnectionFailed(f"{byte!r} not sent: {exc}") from exc
        self._trust_after = self._polls + 1

    def _begin_reset(self, purpose: str) -> None:
        """0x18 was written: GRBL empties its RX buffer and planner; nothing is sent until its banner."""
        self._resetting, self._reset_at = purpose, time.monotonic()
        self._trust_after = self._polls + 1
        for cmd in self._control:
            cmd.lost = True
            cmd.done.set()
        self._control.clear()
        self._wake.notify()

    def _wait_reset(self, timeout: float) -> None:
        """With the lock held: wait until no reset (or the `$X` after a cancel) is in progress."""
        deadline = time.monotonic() + timeout
        while self._resetting is not None and self._ser is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotReady("the controller is still restarting after a reset")
            self._changed.wait(left)

    def _command(self, line: str, timeout: float) -> list[Reply]:
        cmd = _Command(line)
        with self._lock:
            self._require_link()
            self._control.append(cmd)
            self._wake.notify()
        if not cmd.done.wait(timeout):
            with self._lock:
                if cmd in self._control:
                    self._control.remove(cmd)
            raise DriverError(f"no answer to {line} from the controller within {timeout:g} s")
        if cmd.lost:
            raise DriverError(f"{line} was lost: the controller reset or the link closed")
        if cmd.error is not None:
            raise DriverError(f"the controller refused {line}: {error_message(cmd.error)}")
        return cmd.replies

    def _fail_commands(self) -> None:
        for cmd in [*self._control, *self._in_flight_cmds.values()]:
            cmd.lost = True
            cmd.done.set()
        self._control.clear()
        self._in_flight_cmds.clear()

    def _link_lost(self, reason: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            if self._job_id is not None:
                self._end_job("interrupted", f"link lost: {reason}", DriverState.DISCONNECTED)
            was_online, self._online = self._online, False
            self._resetting = None
            self._fail_commands()
            self._set_status(state=DriverState.DISCONNECTED, message=f"link lost: {reason}")
            if was_online:
                self._emit(ConnectionChanged(False, reason))
            self._wake.notify_all()
            self._changed.notify_all()
            if self._handshake_replies is not None:
                self._handshake_replies.put(ConnectionLost(f"link lost: {reason}"))
            ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def _end_job(
        self, outcome: JobOutcome, reason: str | None, state: DriverState, message: str | None = None
    ) -> None:
        job_id = self._job_id
        assert job_id is not None
        self._job_id = None
        self._job_iter = self._job_next = None
        self._drain_from = None
        acked = self._job_acked
        if message is None and (outcome in ("failed", "interrupted") or state is DriverState.ERROR):
            message = reason
        self._set_status(
            state=state, job_id=None, lines_acked=acked, message=message, extra=self.view.extra()
        )
        self._last_status = time.monotonic()
        self._dirty = False
        self._emit(JobEnded(job_id, outcome, acked, reason))

    def _fail_and_reset(self, reason: str, purpose: str = "error") -> None:
        """A job line failed: stop the beam now (the lines after it are in GRBL's buffer and would run)."""
        with contextlib.suppress(ConnectionFailed):
            self._realtime(RESET)
        self._begin_reset(purpose)
        state = DriverState.ERROR if purpose == "estop" else DriverState.IDLE
        self._end_job("failed", reason, state)

    # -- reader thread -------------------------------------------------------------------------

    def _read_loop(self) -> None:
        ser = self._ser
        assert ser is not None
        pending = b""
        try:
            while not self._stop.is_set():
                chunk = ser.read(max(1, ser.in_waiting))
                if not chunk:
                    continue
                pending += chunk
                if b"\n" not in pending:
                    continue
                *lines, pending = pending.split(b"\n")
                replies = [parse_line(t) for raw in lines if (t := raw.decode("ascii", "replace").strip())]
                with self._lock:
                    for reply in replies:
                        self._on_reply(reply)
                    self._wake.notify()
        except (serial.SerialException, OSError, TypeError) as exc:
            if not self._stop.is_set():
                self._link_lost(str(exc) or type(exc).__name__)

    def _on_reply(self, reply: Reply) -> None:
        if self._handshake_replies is not None:
            self._handshake_replies.put(reply)
            return
        if isinstance(reply, Ok | LineError):
            self._on_answer(reply)
        elif isinstance(reply, StatusReport):
            self._on_report(reply)
        elif isinstance(reply, Alarm):
            self._on_alarm(reply.code)
        elif isinstance(reply, Banner):
            self._on_banner()
        elif isinstance(reply, Message):
            self._on_message(reply.text)
        else:
            oldest = self.flow.oldest
            if oldest is not None and oldest.tag < 0 and (cmd := self._in_flight_cmds.get(oldest.tag)):
                cmd.replies.append(reply)  # `$$` lines, `[GC:..]`: the output of our command

    def _on_answer(self, reply: Ok | LineError) -> None:
        done = self.flow.answer()
        if done is None:
            return  # the answer to a line sent before a reset
        error = reply.code if isinstance(reply, LineError) else None
        if done.tag < 0:
            cmd = self._in_flight_cmds.pop(done.tag, None)
            if cmd is not None:
                cmd.error = error
                if cmd.on_done is not None:
                    cmd.on_done(cmd)
                cmd.done.set()
            return
        seq, number = divmod(done.tag, _JOB_SPAN)
        if seq != self._job_seq or self._job_id is None:
            return  # a line of a job that already ended (error:9 after an alarm)
        if error is not None:
            self._fail_and_reset(f"file line {number}: {error_message(error)}")
            return
        self._job_acked += 1
        self._dirty = True
        self._maybe_drain()

    def _maybe_drain(self) -> None:
        # During a job only job lines are in flight (driver commands are refused while one runs).
        if self._job_all_sent and self._drain_from is None and not len(self.flow):
            # Every line answered: now wait for the planner to empty (status Idle).
            self._drain_from = self._polls
            self._idle_reports = 0
            self._poll_now()

    def _on_alarm(self, code: int) -> None:
        self._alarm_text = alarm_message(code)
        if code in CRITICAL_ALARMS:
            self._critical_alarm = True
        if self._resetting is not None and code == 3:
            return  # our own reset while moving: expected, handled after the banner
        if self._resetting in ("cancel", "error", "relock"):
            self._resetting = "estop"  # another alarm meanwhile: do not `$X` it away, stay in ERROR
        if self._job_id is not None:
            self._end_job("failed", self._alarm_text, DriverState.ERROR)
        else:
            self._set_status(state=DriverState.ERROR, message=self._alarm_text)

    def _on_banner(self) -> None:
        """GRBL (re)started: its RX buffer and planner are empty; lines in flight will never be answered."""
        self.flow.reset()
        self._fail_commands()
        self._banners += 1
        self._poll_out = None
        purpose, self._resetting = self._resetting, None
        if purpose in ("cancel", "error"):
            # A reset in motion leaves ALARM:3 (position may be lost); `$X` is harmless when not locked
            # (system.c: "Otherwise, no effect").
            self._resetting = "relock"
            self._control.append(_Command("$X", on_done=self._relocked))
        elif purpose is None and self._job_id is not None:
            self._end_job("interrupted", "the controller restarted mid-job", DriverState.IDLE)
        self._poll_now()
        self._changed.notify_all()

    def _relocked(self, cmd: _Command) -> None:
        self._resetting = None
        if cmd.error is not None:
            self._set_status(
                state=DriverState.ERROR, message=f"unlock after cancel: {error_message(cmd.error)}"
            )
        elif self._refusal:
            self._set_status(state=DriverState.ERROR, message=self._refusal)
        elif self.status.state is DriverState.IDLE:
            self._set_status(message=None)
        self._changed.notify_all()

    def _on_message(self, text: str) -> None:
        if text == "Check Door":
            # Printed as the door opens (protocol.c, EXEC_SAFETY_DOOR): pause now, not at the next poll.
            if self._job_id is not None and self.status.state is DriverState.RUNNING:
                self._set_status(state=DriverState.PAUSED, message=DOOR_OPEN)
        elif "unlock" in text and self._resetting is None and self.status.state is DriverState.IDLE:
            self._set_status(state=DriverState.ERROR, message=self._alarm_text or LOCKED)
        elif text == "Reset to continue":
            self._critical_alarm = True

    def _on_report(self, report: StatusReport) -> None:
        now = time.monotonic()
        self._last_report = now
        answered, self._poll_out = self._poll_out, None
        self.view.update(report)
        self._dirty = True
        if answered is None or answered <= self._trust_after or self._resetting is not None:
            return
        state = self.status.state
        st = report.state
        if self._job_id is None:
            if st == "Alarm" and state is DriverState.IDLE:
                self._set_status(state=DriverState.ERROR, message=self._alarm_text or LOCKED)
            return
        if st == "Door":
            message = DOOR_CLOSED if report.sub_state == 0 else DOOR_OPEN
            if state is not DriverState.PAUSED or self.status.message != message:
                self._set_status(state=DriverState.PAUSED, message=message)
        elif st == "Hold" and state is DriverState.RUNNING:
            self._set_status(state=DriverState.PAUSED, message="feed hold at the machine")
        elif st in ("Run", "Idle", "Jog") and state is DriverState.PAUSED:
            self._set_status(state=DriverState.RUNNING, message="resumed at the machine")
        elif st == "Alarm":
            self._end_job("failed", self._alarm_text or "the controller went into alarm", DriverState.ERROR)
            return
        if self._drain_from is not None and self.status.state is DriverState.RUNNING:
            if answered > self._drain_from and st in ("Idle", "Check"):
                self._idle_reports += 1
                if self._idle_reports >= 2:
                    self._end_job("completed", None, DriverState.IDLE)
                    return
                self._poll_now()
            else:
                self._idle_reports = 0

    def _poll_now(self) -> None:
        self._next_poll = 0.0
        self._wake.notify()

    # -- sender thread -------------------------------------------------------------------------

    def _send_loop(self) -> None:
        try:
            with self._lock:
                while not self._stop.is_set():
                    wake_at = self._pump(time.monotonic())
                    self._wake.wait(max(0.0, wake_at - time.monotonic()))
        except (serial.SerialException, OSError) as exc:
            self._link_lost(str(exc))

    def _pump(self, now: float) -> float:
        """Write what is due; return when to look again."""
        ser = self._ser
        if ser is None:
            return now + 1.0
        out = bytearray()
        wake = [self._poll(now, out)]
        if self._resetting is not None and self._resetting != "relock":
            if now - self._reset_at > RESET_TIMEOUT_S:
                self._reset_timed_out()
            wake.append(self._reset_at + RESET_TIMEOUT_S)
        else:
            self._send_commands(out)
            if self._job_id is not None and self.status.state is DriverState.RUNNING and not self._control:
                self._feed_job(out)
            self._check_alive(now)
        if out:
            ser.write(bytes(out))  # one write per refill: fewer syscalls on both sides
        wake.append(self._flush_status(now))
        return min(wake)

    def _poll(self, now: float, out: bytearray) -> float:
        interval = self.profile.flow.status_interval_s
        if self._poll_out is not None and now - self._poll_at > max(1.0, 5 * interval):
            self._poll_out = None  # that `?` was lost (a reset cleared GRBL's pending report flag)
        if self._poll_out is None and now >= self._next_poll:
            out += STATUS
            self._polls += 1
            self._poll_out = self._polls
            self._poll_at = now
            self._next_poll = now + interval
        return max(self._next_poll, now + 0.01) if self._poll_out is None else self._poll_at + 5 * interval

    def _send_commands(self, out: bytearray) -> None:
        while self._control:
            cmd = self._control[0]
            data = cmd.line.encode("ascii") + b"\n"
            if not self.flow.fits(len(data), exclusive=True):
                return
            self._cmd_seq += 1
            tag = -self._cmd_seq
            self.flow.take(len(data), tag, exclusive=True)
            self._in_flight_cmds[tag] = cmd
            self._control.popleft()
            out += data

    def _feed_job(self, out: bytearray) -> None:
        flow = self.flow
        base = self._job_seq * _JOB_SPAN
        while not self._job_all_sent:
            line = self._job_next
            if line is None:
                assert self._job_iter is not None
                try:
                    line = next(self._job_iter, None)
                except (UnsafeLine, OSError) as exc:
                    self._fail_and_reset(str(exc))
                    return
                if line is None:
                    self._job_all_sent = True
                    self._maybe_drain()
                    return
                self._job_next = line
            size = len(line.text) + 1
            if not flow.fits(size, line.eeprom):
                return
            flow.take(size, base + line.number, line.eeprom)
            out += line.text.encode("ascii") + b"\n"
            self._job_next = None

    def _check_alive(self, now: float) -> None:
        silent = now - self._last_report
        if self._job_id is not None and silent > self.profile.flow.ok_timeout_s:
            self._fail_and_reset(f"no status report from the controller for {silent:.0f} s", "estop")

    def _reset_timed_out(self) -> None:
        self._resetting = None
        self.flow.reset()
        self._set_status(state=DriverState.ERROR, message="the controller did not restart after a soft reset")
        self._changed.notify_all()

    def _flush_status(self, now: float) -> float:
        if not self._dirty:
            return now + 1.0
        due = self._last_status + STATUS_MIN_INTERVAL_S
        if now < due:
            return due
        self._dirty = False
        self._last_status = now
        self._set_status(lines_acked=self._job_acked, extra=self.view.extra())
        return now + 1.0
