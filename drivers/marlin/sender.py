"""The MarlinDriver's sender thread: decides and writes the next bytes (resends, own commands, job lines)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import serial

from drivers.base import DriverState
from drivers.gcode import iter_commands, numbered_line

if TYPE_CHECKING:
    from drivers.marlin.driver import MarlinDriver

# Probes in a row with no answer at all: the firmware is gone though the port is open.
MAX_SILENT_PROBES = 3
JOB_END = -1  # tag of the M400 that closes a job: its `ok` means the planner has drained
_JOB_TAG_SPAN = 1 << 40  # tags are job_seq * span + command index, so old jobs' acks never count
_ENVELOPE = len("N ") + len("*255")  # what numbering adds besides the number's digits, at most


class Sender:
    """What goes out, in this order: resends, the driver's own commands, job lines, the M105 poll.

    It belongs to one `MarlinDriver` and runs under the driver's lock (see driver.py for why every
    write shares that lock); the driver's lifecycle calls and its reader change the state here only
    while holding it too.
    """

    def __init__(self, driver: MarlinDriver) -> None:
        self._driver = driver
        # driver's own numbered commands (M155, pause/cancel commands, the job's closing M400)
        self.control: deque[tuple[str, int]] = deque()
        self.silent_probes = 0
        # temperature polling when the firmware cannot auto-report
        self.poll_due = 0.0
        self.poll_sent_at: float | None = None
        # the job's lines
        self._job_seq = 0
        self._job_iter: Iterator[tuple[int, str]] | None = None
        self._job_next: tuple[int, str] | None = None  # read from disk, not yet taken by the window
        self._job_index = 0  # commands taken into the window
        self.closing = False  # every line sent, M400 queued

    # -- the job, as the driver sees it ----------------------------------------------------------

    def open_job(self, path: Path) -> None:
        self._job_seq += 1
        self._job_iter = iter_commands(path)
        self._job_next = None
        self._job_index = 0
        self.closing = False

    def close_job(self) -> None:
        self._job_iter = self._job_next = None
        self.closing = False

    def job_index(self, tag: int) -> int | None:
        """The index (1-based) of the current job's command that `tag` was sent for; None if another's."""
        job_seq, index = divmod(tag, _JOB_TAG_SPAN)
        return index if job_seq == self._job_seq else None

    # -- the thread ------------------------------------------------------------------------------

    def run(self) -> None:
        d = self._driver
        try:
            with d._lock:
                while not d._stop.is_set():
                    wake_at = self.pump(time.monotonic())
                    timeout = None if wake_at is None else max(0.0, wake_at - time.monotonic())
                    d._wake.wait(timeout)
        except (serial.SerialException, OSError) as exc:
            d._link_lost(str(exc))

    def pump(self, now: float) -> float | None:
        """Write what the window allows; return when to look again (None: on the next event)."""
        d = self._driver
        wake: list[float] = []
        state = d.status.state
        if d._ser is None or state in (DriverState.ERROR, DriverState.DISCONNECTED):
            return d._flush_status(now)
        out = bytearray()
        write = out.extend
        flow = d.flow
        flow.check_stale(now)
        probe = flow.check_timeout(now)
        if probe is not None:
            self.silent_probes += 1
            if self.silent_probes > MAX_SILENT_PROBES and d._job_id is not None:
                silent = round(MAX_SILENT_PROBES * flow.ok_timeout_s)
                d._end_job("failed", f"no answer from the firmware for {silent} s", DriverState.IDLE)
            write(probe)
        while (line := flow.next_resend(now)) is not None:
            write(line)
        control = self.control
        while control and (line := flow.send(*control[0], now)) is not None:
            control.popleft()
            write(line)
        if d._job_id is not None and not d._paused and not control:
            self._feed_job(now, write)
        self._poll_temperature(now, write, wake)
        if out:
            d._ser.write(bytes(out))  # one write for the whole refill: fewer syscalls both sides
        if (due := d._flush_status(now)) is not None:
            wake.append(due)
        if (deadline := flow.deadline()) is not None:
            wake.append(deadline)
        return min(wake, default=None)

    def _feed_job(self, now: float, write: Callable[[bytes], object]) -> None:
        d = self._driver
        flow = d.flow
        limit = d.profile.flow.max_command_chars
        while not self.closing:
            if self._job_next is None:
                assert self._job_iter is not None
                self._job_next = next(self._job_iter, None)
                if self._job_next is None:
                    # Every line is out: M400 answers once the planner has drained, so "completed"
                    # means the part is done, not merely that its last move was queued.
                    self.closing = True
                    self.control.append(("M400", JOB_END))
                    line = flow.send("M400", JOB_END, now)
                    if line is not None:
                        self.control.popleft()
                        write(line)
                    return
            tag = self._job_seq * _JOB_TAG_SPAN + self._job_index + 1
            command = self._job_next[1]
            # `N<n> ` + command + `*<cs>` (<= 3 digits): checked before the flow numbers it, so a line
            # that cannot go leaves nothing in the window or the resend history.
            longest = len(command) + len(str(flow.next_number)) + _ENVELOPE
            if longest > limit and len(numbered_line(flow.next_number, command)) - 1 > limit:
                # Marlin would truncate it and refuse it forever (MAX_CMD_SIZE counts N and *cs too).
                why = f"file line {self._job_next[0]} is too long for the firmware once numbered"
                d._end_job("failed", why, DriverState.IDLE)
                return
            line = flow.send(command, tag, now)
            if line is None:
                return
            self._job_index += 1
            self._job_next = None
            write(line)

    def _poll_temperature(self, now: float, write: Callable[[bytes], object], wake: list[float]) -> None:
        """M105 outside the window when the firmware cannot auto-report (no M155)."""
        d = self._driver
        if d.facts.autoreport_temp:
            return
        if self.poll_sent_at is not None and now - self.poll_sent_at > d.flow.ok_timeout_s:
            self.poll_sent_at = None  # flushed with the RX buffer after a line error
        if self.poll_sent_at is None and now >= self.poll_due:
            write(b"M105\n")
            self.poll_sent_at = now
            self.poll_due = now + d.profile.flow.status_interval_s
        wake.append(self.poll_due)
