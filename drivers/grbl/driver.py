"""GrblDriver: streams a laser job to GRBL 1.1 over pyserial with character counting and realtime bytes.

Threads (both daemons, started by `connect()`), as in drivers/marlin/driver.py; this module holds the
public API, `reader.py` and `sender.py` the two threads' halves, `core.py` the state they share:

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
import time
from pathlib import Path

import serial

from drivers.base import ConnectionFailed, DriverState, NotReady
from drivers.grbl.core import (
    CYCLE_START,
    DOOR_OPEN,
    FEED_HOLD,
    LOCKED,
    RESET,
    RESET_TIMEOUT_S,
    START_WAIT_S,
)
from drivers.grbl.flow import CharCounter
from drivers.grbl.handshake import GrblFacts, Handshake
from drivers.grbl.lines import iter_job
from drivers.grbl.reader import GrblReader
from drivers.grbl.sender import GrblSender
from drivers.grbl.settings import check_settings


class GrblDriver(GrblReader, GrblSender):
    """A GRBL 1.1 laser behind `serial_for_url(connection)`: a device, a pty or `socket://`."""

    protocol = "grbl"

    # -- connecting (the rest of connect() and close() is SerialDriver's) ---------------------

    def _handshake(self, deadline: float) -> GrblFacts:
        assert self._handshake_replies is not None
        return Handshake(self._handshake_replies, self._write, deadline).run()

    def _connected(self, facts: GrblFacts) -> None:
        self.facts = facts
        budget = self.profile.flow.rx_buffer_bytes
        if facts.rx_buffer_bytes:
            budget = min(budget, facts.rx_buffer_bytes)  # `$I` knows the build's RX_BUFFER_SIZE
        self.flow = CharCounter(budget, self.flow.mode)
        self._refusal = check_settings(self.profile, facts.settings)
        if facts.state is not None:
            self.view.update(facts.state)
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

    def _abandon_job(self) -> None:
        assert self._ser is not None
        with contextlib.suppress(serial.SerialException, OSError):
            self._ser.write(RESET)  # nobody will watch the buffered moves
