"""GrblDriver's reader thread: GRBL's lines parsed and acted on (answers, alarms, banner, door, status)."""

from __future__ import annotations

import time

from drivers.base import DriverState
from drivers.grbl.codes import CRITICAL_ALARMS, alarm_message, error_message
from drivers.grbl.core import DOOR_CLOSED, DOOR_OPEN, JOB_SPAN, LOCKED, SETTLE_S, Command, GrblCore
from drivers.grbl.replies import Alarm, Banner, LineError, Message, Ok, Reply, StatusReport, parse_line


class GrblReader(GrblCore):
    """The reader half of GrblDriver (see driver.py for the rules it implements)."""

    # -- reader thread -------------------------------------------------------------------------

    encoding = "ascii"

    def _parse_reply(self, text: str) -> Reply:
        return parse_line(text)

    def _on_reply(self, reply: Reply) -> None:
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
        seq, number = divmod(done.tag, JOB_SPAN)
        if seq != self._job_seq or self._job_id is None:
            return  # a line of a job that already ended (error:9 after an alarm)
        if error is not None:
            self._fail_and_reset(f"file line {number}: {error_message(error)}")
            return
        self._job_acked += 1
        self._dirty = True
        self._maybe_drain()

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
            self._control.append(Command("$X", on_done=self._relocked))
        elif purpose is None:
            self._quiet_until = time.monotonic() + SETTLE_S
            if self._job_id is not None:
                self._end_job("interrupted", "the controller restarted mid-job", DriverState.IDLE)
        self._poll_now()
        self._changed.notify_all()

    def _relocked(self, cmd: Command) -> None:
        if self._resetting != "relock":
            return  # an emergency stop overtook the cancel: its reset decides
        self._resetting = None
        self._trust_after = max(self._trust_after, self._polls)  # older reports still say Alarm
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
            # Printed as the door opens (protocol.c, EXEC_SAFETY_DOOR): pause now, not at the next poll
            # (and block resume() if the job was already paused).
            if self._job_id is not None and self.status.state in (DriverState.RUNNING, DriverState.PAUSED):
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
