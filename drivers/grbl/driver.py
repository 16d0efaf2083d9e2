"""GrblDriver: streams a laser job to GRBL 1.1 over pyserial with character counting and realtime bytes.

Threads (both daemons, started by `connect()`), as in drivers/marlin/driver.py; this module holds the
public API, `reader.py` and `sender.py` the two threads' halves, `core.py` the state they share,
`safety.py` the (I/O-free) decision whether a job may start:

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
* Work offsets: validation checks laser files in machine coordinates (G54, no offset), so a job is refused
  while the controller holds one or while it is unknown: `$#`/`$G` at connect, `WCO:` from status reports
  (report.c: every 10-30 reports and in the first after a change), `$#` again when WCO disagrees (to name
  G54 or G92); a reset reloads G54 and zeroes G92 (gcode.c gc_init). Like a `$32`/`$30` refusal, a known
  offset shows as ERROR with the reason while no job runs.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import serial

from drivers.base import ConnectionFailed, DriverError, DriverState, EventCallback, JobOutcome, NotReady
from drivers.grbl.core import (
    CYCLE_START,
    DOOR_OPEN,
    FEED_HOLD,
    LOCKED,
    RESET,
    RESET_TIMEOUT_S,
    START_WAIT_S,
    Command,
)
from drivers.grbl.flow import CharCounter
from drivers.grbl.handshake import GrblFacts, Handshake
from drivers.grbl.lines import iter_job
from drivers.grbl.reader import GrblReader
from drivers.grbl.replies import Setting, StatusReport
from drivers.grbl.safety import OffsetTracker, find_refusal, parse_offsets, refusal_status
from drivers.grbl.sender import GrblSender
from drivers.profiles import Profile

OFFSETS_WAIT_S = 2.0  # start_job waits this long for a WCO report or a `$#` answer on its way


class GrblDriver(GrblReader, GrblSender):
    """A GRBL 1.1 laser behind `serial_for_url(connection)`: a device, a pty or `socket://`."""

    protocol = "grbl"

    def __init__(self, profile: Profile, connection: str, *, on_event: EventCallback | None = None) -> None:
        super().__init__(profile, connection, on_event=on_event)
        self._tracker = OffsetTracker()  # work offsets: `$#` at connect, again when WCO changes

    # -- connecting (the rest of connect() and close() is SerialDriver's) ---------------------

    def _handshake(self, deadline: float) -> GrblFacts:
        assert self._handshake_replies is not None
        handshake = Handshake(self._handshake_replies, self._write, deadline)
        facts = handshake.run()
        # `$#` answers only in Idle or Alarm (system.c); otherwise the offsets stay unknown.
        ngc = handshake.command("$#", optional=True) or []
        modes = handshake.command("$G", optional=True) or []
        self._tracker = OffsetTracker(parse_offsets(ngc, modes))  # nothing asked on the last link counts
        return facts

    def _connected(self, facts: GrblFacts) -> None:
        self.facts = facts
        budget = self.profile.flow.rx_buffer_bytes
        if facts.rx_buffer_bytes:
            budget = min(budget, facts.rx_buffer_bytes)  # `$I` knows the build's RX_BUFFER_SIZE
        self.flow = CharCounter(budget, self.flow.mode)
        if facts.state is not None:
            self.view.update(facts.state)
        self.view.wco = self._tracker.connected(self.view.wco)
        self._refusal = self._find_refusal()
        self._last_report = time.monotonic()
        if self._refusal:
            state, message = DriverState.ERROR, self._refusal
        elif facts.locked:
            state, message = DriverState.ERROR, LOCKED
        else:
            state, message = DriverState.IDLE, None
        self._set_status(
            state=state, firmware=f"Grbl {facts.version}", message=message, extra=self.view.extra()
        )

    # -- public API ----------------------------------------------------------------------------

    def start_job(self, job_id: str, path: Path, total_lines: int | None = None) -> None:
        with self._lock:
            self._wait_reset(START_WAIT_S)
            self._wait_offsets(OFFSETS_WAIT_S)
            self._refresh_refusal()  # the latest WCO, `$#` and settings, whatever came last
            if self._refusal:
                raise NotReady(self._refusal)
            if self.status.state is not DriverState.IDLE or self._job_id is not None:
                why = self.status.message or f"the machine is {self.status.state}"
                raise NotReady(f"cannot start a job: {why}")
            if self.view.door_open:
                raise NotReady("cannot start a job: the safety door is open")
            if (
                self._tracker.offsets is None or self.view.wco is None
            ):  # nothing says where the file would be cut
                raise NotReady("cannot start a job: the work offset is unknown (no answer to `$#` or no WCO)")
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
            self._trust_after = max(self._trust_after, self._polls)  # older reports still say Alarm
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
        # Read back what settings.c stored (it truncates integer settings; `$32=2` means on).
        try:
            stored = [r for r in self._command("$$", timeout) if isinstance(r, Setting)]
        except DriverError:
            stored = []
        with self._lock:
            self.facts.settings.update({r.number: r.value for r in stored} or {number: float(value)})
            self._refresh_refusal()  # a write may make jobs unsafe ($32=0) or safe again

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

    def _abandon_job(self) -> None:
        assert self._ser is not None
        with contextlib.suppress(serial.SerialException, OSError):
            self._ser.write(RESET)  # nobody will watch the buffered moves

    # -- refusals: settings and work offsets (with the lock held) ------------------------------

    def _find_refusal(self) -> str | None:
        return find_refusal(self.profile, self.facts, self._tracker.offsets, self.view.wco)

    def _refresh_refusal(self) -> None:
        """Recompute the refusal; while no job runs, show it (ERROR) or lift it (IDLE, or still locked)."""
        old, new = self._refusal, self._find_refusal()
        self._refusal = new
        if self._job_id is not None:
            return
        alarm = self.view.report is not None and self.view.report.state == "Alarm"
        shown = refusal_status(old, new, (self.status.state, self.status.message), alarm, LOCKED)
        if shown is not None:
            self._set_status(state=shown[0], message=shown[1])

    def _offsets_stale(self) -> bool:
        """True while a `$#` is on its way (asked now if WCO no longer matches its last answer)."""
        if self._tracker.asked:
            return True
        if self._job_id is not None or self._resetting is not None:
            return False
        report = self.view.report
        if not self._tracker.should_ask(self.view.wco, report.state if report is not None else None):
            return False
        self._control.append(Command("$#", on_done=self._got_offsets))
        self._wake.notify()
        return True

    def _got_offsets(self, cmd: Command) -> None:
        self._tracker.answered(cmd.replies if cmd.error is None else None)
        self._changed.notify_all()
        if self._job_id is None:
            self._refresh_refusal()

    def _wait_offsets(self, timeout: float) -> None:
        """With the lock held: let a WCO report or a `$#` answer on its way arrive (bounded)."""
        deadline = time.monotonic() + timeout
        while (self.view.wco is None or self._tracker.asked) and self._ser is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._poll_now()
            self._changed.wait(left)

    # -- the reader's events, extended for the offsets (with the lock held) --------------------

    def _on_report(self, report: StatusReport) -> None:
        before = self.view.wco
        super()._on_report(report)
        if report.wco is None:
            return
        self._changed.notify_all()  # start_job may wait for it
        idle = self._job_id is None and self._resetting is None
        if idle and not self._offsets_stale() and report.wco != before:
            self._refresh_refusal()

    def _on_banner(self) -> None:
        # Before the base ends a job: every reset runs gc_init() (G54 from EEPROM, G92 zeroed), and the
        # first report after it carries WCO (main.c clears sys, report_wco_counter with it).
        self.view.wco = self._tracker.reset()  # a `$#` in flight went with the RX buffer
        super()._on_banner()
        self._refresh_refusal()

    def _end_job(
        self, outcome: JobOutcome, reason: str | None, state: DriverState, message: str | None = None
    ) -> None:
        super()._end_job(outcome, reason, state, message)
        # A reset on its way (cancel, error, stop) clears G92 first: its banner decides.
        if self._resetting is None and not self._offsets_stale():
            self._refresh_refusal()
