"""MarlinDriver: streams a G-code job to a Marlin printer over pyserial with two I/O threads.

Threads (both daemons, both started by `connect()`):

* the reader blocks in `serial.read()` (0.1 s timeout), splits lines, parses them (`replies.py`) and
  feeds the flow control (`flow.py`) under the driver's lock, then wakes the sender;
* the sender (`sender.py`) sleeps on a condition variable until an `ok` frees the window, a command
  arrives or a deadline passes (ok timeout, M105 poll, coalesced status); it then writes whatever the
  window allows: resends first, then the driver's own commands, then job lines read from disk one at
  a time.

Every write of the two threads happens under the one lock, so a line is never half-written and a
`Resend:` is never processed between "taken into the window" and "written" (stale copies must
precede fresh ones on the wire, see flow.py). `emergency_stop()` writes from the caller's thread:
it does not wait for the sender and waits for the lock at most 50 ms (a single line's write).

Events are emitted with the lock held, in order; callbacks must return quickly (the hub's
coordinator hops onto its event loop).

Choices (see flow.py for the window, resend and lost-`ok` rules):
* a job is `completed` when the `ok` of an M400 sent after its last line arrives: every line acked
  and the planner drained, so the part is finished, not merely queued;
* `lines_acked` is the highest job line acknowledged (Marlin runs lines in order), so a lost `ok`
  recovered by a probe still counts;
* `cancel()` ends the job at once; the few lines in flight still run, then the profile's cancel
  commands; `emergency_stop()` ends it as `cancelled` ("emergency stop (M112)") with the machine in
  ERROR; a later `start` (the board was reset) brings the driver back to IDLE;
* without AUTOREPORT_TEMP, M105 is written unnumbered outside the window every status_interval_s;
  its `ok T:` answer is recognised by the temperatures it carries and acks no line;
* status snapshots for progress and temperatures are coalesced to at most one per 0.1 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import serial

from drivers.base import ConnectionFailed, DriverError, DriverState, EventCallback, NotReady, Temperature
from drivers.marlin.flow import FlowControl, ResendOutcome, Sent
from drivers.marlin.handshake import FirmwareFacts, Handshake
from drivers.marlin.replies import (
    Action,
    Busy,
    Echo,
    FirmwareError,
    LineError,
    LineErrorCause,
    Ok,
    Reply,
    Resend,
    Start,
    Temperatures,
    merge_temperatures,
    parse_line,
)
from drivers.marlin.sender import JOB_END, Sender
from drivers.profiles import Profile
from drivers.serial_driver import SerialDriver

# Kept free in the RX buffer for the unnumbered M105 poll and M112 (without EMERGENCY_PARSER
# Marlin only sees M112 once it is read from the RX buffer, so there must be room for it).
RX_RESERVE_BYTES = 8


class MarlinDriver(SerialDriver[Reply, FirmwareError, FirmwareFacts]):
    """A Marlin printer behind `serial_for_url(connection)`: a device, a pty or `socket://`."""

    protocol = "marlin"

    def __init__(
        self,
        profile: Profile,
        connection: str,
        *,
        on_event: EventCallback | None = None,
        resend_sends_ok: bool | None = None,
    ) -> None:
        super().__init__(profile, connection, on_event=on_event)
        self._estop_sent = False  # until the next connect: a halted firmware then is our own M112
        fl = profile.flow
        self.flow = FlowControl(
            max_lines=fl.bufsize,
            max_bytes=max(32, fl.rx_buffer_bytes - RX_RESERVE_BYTES),
            ok_timeout_s=fl.ok_timeout_s,
            resend_sends_ok=resend_sends_ok,
        )
        self.facts = FirmwareFacts()
        self._sender = Sender(self)
        self._last_line_error: LineErrorCause | None = None
        self._temps: dict[str, Temperature] = {}  # merged reports, published with the coalesced status
        self._paused = False

    # -- connecting (the rest of connect() and close() is SerialDriver's) ---------------------

    def _parse_reply(self, text: str) -> Reply:
        return parse_line(text)

    def _handshake(self, deadline: float) -> FirmwareFacts:
        self._estop_sent = False
        assert self._handshake_replies is not None
        return Handshake(self._handshake_replies, self._write, deadline).run(
            self.profile.flow.status_interval_s
        )

    def _handshake_failed(self, exc: DriverError) -> None:
        # The handshake's words are in the exception; the status keeps what a lost link said.
        self._set_status(state=DriverState.DISCONNECTED)

    def _connected(self, facts: FirmwareFacts) -> None:
        self.facts = facts
        self.flow.reset(1)  # M110 N0 done: the next numbered line is N1
        self._set_status(state=DriverState.IDLE, firmware=facts.name, message=None)

    def _send_loop(self) -> None:
        self._sender.run()

    def _lost_reply(self, text: str) -> FirmwareError:
        return FirmwareError(text)

    # -- public API ----------------------------------------------------------------------------

    def start_job(self, job_id: str, path: Path, total_lines: int | None = None) -> None:
        with self._lock:
            if self.status.state is not DriverState.IDLE or self._job_id is not None:
                raise NotReady(f"cannot start a job while {self.status.state}")
            if not Path(path).is_file():
                raise NotReady(f"job file {path} does not exist")
            self._job_id = job_id
            self._sender.open_job(Path(path))
            self._job_acked = 0
            self._paused = False
            self._set_status(
                state=DriverState.RUNNING, job_id=job_id, lines_acked=0, lines_total=total_lines, message=None
            )
            self._wake.notify()

    def pause(self) -> None:
        with self._lock:
            if self.status.state is not DriverState.RUNNING:
                raise NotReady(f"cannot pause while {self.status.state}")
            self._paused = True  # stop feeding the window: what is in flight still runs
            self._sender.control.extend((c, 0) for c in self.profile.commands.pause)
            self._set_status(state=DriverState.PAUSED)
            self._wake.notify()

    def resume(self) -> None:
        with self._lock:
            if self.status.state is not DriverState.PAUSED:
                raise NotReady(f"cannot resume while {self.status.state}")
            self._paused = False
            self._sender.control.extend((c, 0) for c in self.profile.commands.resume)
            self._set_status(state=DriverState.RUNNING)
            self._wake.notify()

    def cancel(self) -> None:
        """Ends the job at once. The few lines already in flight still run (Marlin has them);
        a resend the firmware asks for them is still honoured (its line numbers demand it); then
        the profile's cancel commands follow."""
        with self._lock:
            if self._job_id is None:
                raise NotReady("no job to cancel")
            self._sender.control.extend((c, 0) for c in self.profile.commands.cancel)
            self._end_job("cancelled", "cancelled", DriverState.IDLE)
            self._wake.notify()

    def emergency_stop(self) -> None:
        ser = self._ser
        if ser is None:
            raise NotReady("not connected")
        # The leading newline ends any half-written line so the emergency parser sees M112 at the
        # start of a line (e_parser.h). Unnumbered: it bypasses the window and the line numbers.
        data = b"\n" + b"".join(c.encode() + b"\n" for c in self.profile.commands.emergency)
        # Said before the bytes go: the firmware's "Printer halted. kill() called!" may reach the reader
        # before this thread ends the job, and it must read as the stop a person asked for, not a fault.
        self._estop_sent = True
        locked = self._lock.acquire(timeout=0.05)
        try:
            ser.write(data)
        except (serial.SerialException, OSError) as exc:
            raise ConnectionFailed(f"emergency stop not sent: {exc}") from exc
        finally:
            if locked:
                self._lock.release()
        with self._lock:
            self._sender.control.clear()
            reason = "emergency stop (M112)"
            if self._job_id is not None:
                self._end_job("cancelled", reason, DriverState.ERROR)
            else:
                self._set_status(state=DriverState.ERROR, message=reason)

    # -- plumbing ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        ser = self._ser
        if ser is None:
            raise ConnectionFailed("link closed")
        with self._lock:
            ser.write(data)

    # -- reader thread -------------------------------------------------------------------------

    def _on_reply(self, reply: Reply) -> None:
        now = time.monotonic()
        with self._lock:
            flow = self.flow
            if isinstance(reply, Ok):
                self._sender.silent_probes = 0
                if reply.temperatures is not None:
                    self._update_temps(reply.temperatures)
                    if self._sender.poll_sent_at is not None:
                        self._sender.poll_sent_at = None  # the M105 poll's answer: not a numbered line's
                        return
                sent = flow.on_ok(now)
                if sent is not None:
                    self._acked((sent,))
            elif isinstance(reply, Resend):
                self._sender.silent_probes = 0
                outcome, done = flow.on_resend(reply.number, self._last_line_error, now)
                self._last_line_error = None
                self._acked(done)
                if outcome is ResendOutcome.IMPOSSIBLE and self._job_id is not None:
                    why = f"firmware asked to resend line {reply.number}, which is no longer kept"
                    self._end_job("failed", why, DriverState.IDLE)
            else:
                flow.on_other_line()
                self._on_other(reply, now)

    def _on_other(self, reply: Reply, now: float) -> None:
        if isinstance(reply, LineError):
            self._last_line_error = reply.cause
        elif isinstance(reply, Busy):
            self.flow.on_busy(now)
        elif isinstance(reply, Temperatures):
            self._update_temps(reply.temperatures)
        elif isinstance(reply, FirmwareError):
            if any(p.lower() in reply.text.lower() for p in self.profile.errors.fatal):
                self._fatal(reply.text)
        elif isinstance(reply, Start):
            self._firmware_restarted()
        elif isinstance(reply, Action):
            self._host_action(reply.action)
        elif isinstance(reply, Echo) and reply.text.startswith("Unknown command"):
            self._unknown_command(reply.text)

    def _unknown_command(self, text: str) -> None:
        """Marlin answers commands in order, so an unknown one is the oldest line in flight — unless it
        is a fragment: a line whose `N` was damaged, or whose head went with an RX flush, runs as an
        unnumbered command. Its `ok` then belongs to no line of ours (the next line fails and is
        resent), so it must not ack one."""
        oldest = self.flow.window.oldest
        entry = self.flow.history.get(oldest.number) if oldest else None
        if entry is not None:
            body = entry[0].decode("latin-1").partition(" ")[2].rpartition("*")[0]
            # Marlin prints the command between quotes; only the closing one goes (`M862.3 P "MK3S"`
            # ends with a quote of its own).
            quoted = text.partition('"')[2].removesuffix('"')
            if body and quoted.startswith(body):
                return
        self.flow.expect_foreign_ok()

    def _update_temps(self, report: dict[str, Temperature] | dict[str, Temperature | float]) -> None:
        self._temps = merge_temperatures(self._temps, report)  # type: ignore[arg-type]
        self._dirty = True

    def _acked(self, sents: tuple[Sent, ...] | list[Sent]) -> None:
        for sent in sents:
            if sent.tag == JOB_END:
                if self._job_id is not None and self._sender.closing:
                    self._end_job("completed", None, DriverState.IDLE)
                continue
            index = self._sender.job_index(sent.tag)
            # Marlin processes in order: the highest index acked counts them all, even when an
            # `ok` was lost and the line was acked by a probe.
            if index is not None and self._job_id is not None and index > self._job_acked:
                self._job_acked = index
                self._dirty = True

    def _fatal(self, text: str) -> None:
        if self.status.state is DriverState.ERROR:
            return  # the kill() line after a thermal runaway: the first words are the cause
        self._sender.control.clear()
        if self._estop_sent:
            text = "emergency stop (M112)"
        if self._job_id is not None:
            self._end_job("cancelled" if self._estop_sent else "failed", text, DriverState.ERROR)
        else:
            self._set_status(state=DriverState.ERROR, message=text)

    def _firmware_restarted(self) -> None:
        """`start`: the board rebooted and lost its queue, its line number and its M155 setting."""
        self.flow.reset(1)  # Marlin boots with last_N = 0
        self._sender.control.clear()
        self._sender.poll_sent_at = None
        if self.facts.autoreport_temp:
            self._sender.control.append((f"M155 S{max(1, round(self.profile.flow.status_interval_s))}", 0))
        if self._job_id is not None:
            self._end_job("interrupted", "the firmware restarted mid-job", DriverState.IDLE)
        else:
            # After a kill or an emergency stop a reset is how a technician brings it back.
            self._set_status(state=DriverState.IDLE, message="firmware restarted")

    def _host_action(self, action: str) -> None:
        """`//action:` lines (filament runout, the printer's own menu) act like the hub's calls."""
        word = action.split()[0] if action else ""
        state = self.status.state
        if word == "pause" and state is DriverState.RUNNING:
            self._paused = True
            self._set_status(state=DriverState.PAUSED, message="paused by the printer")
        elif word == "resume" and state is DriverState.PAUSED:
            self._paused = False
            self._set_status(state=DriverState.RUNNING, message=None)
        elif word == "cancel" and self._job_id is not None:
            self._end_job("cancelled", "cancelled at the printer", DriverState.IDLE)

    def _forget_job(self) -> None:
        self._sender.close_job()
        self._paused = False

    def _progress(self) -> dict[str, object]:
        return {"temperatures": self._temps}
