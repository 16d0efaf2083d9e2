"""GrblDriver's sender thread: status polls, the driver's `$` commands and job lines within the RX budget."""

from __future__ import annotations

import time

import serial

from drivers.base import DriverState
from drivers.grbl.core import JOB_SPAN, RESET_TIMEOUT_S, STATUS, GrblCore
from drivers.grbl.lines import UnsafeLine


class GrblSender(GrblCore):
    """The sender half of GrblDriver (see driver.py for the rules it implements)."""

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
        elif now < self._quiet_until:
            wake.append(self._quiet_until)
        else:
            self._send_commands(out)
            if self._job_id is not None and self.status.state is DriverState.RUNNING and not self._control:
                self._feed_job(out)
            self._check_alive(now)
        if out:
            ser.write(bytes(out))  # one write per refill: fewer syscalls on both sides
        due = self._flush_status(now)
        wake.append(now + 1.0 if due is None else due)
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
        base = self._job_seq * JOB_SPAN
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
