"""The state and plumbing GrblDriver's threads share: fields, writes, resets, commands, job end."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import serial

from drivers.base import ConnectionFailed, DriverError, DriverState, EventCallback, NotReady
from drivers.grbl.codes import error_message
from drivers.grbl.flow import CharCounter, StreamingMode
from drivers.grbl.handshake import ConnectionLost, GrblFacts
from drivers.grbl.lines import JobLine
from drivers.grbl.replies import Reply
from drivers.grbl.view import MachineView
from drivers.profiles import Profile
from drivers.serial_driver import SerialDriver

RESET = b"\x18"
FEED_HOLD = b"!"
CYCLE_START = b"~"
STATUS = b"?"
RESET_TIMEOUT_S = 3.0  # a soft reset prints the banner within milliseconds; after this GRBL is gone
# After a reset we did not ask for (an alarm that resets, the reset button), lines we wrote before the
# banner reached us arrive in GRBL's emptied buffer and are answered (`error:9` when locked): their
# answers must not be taken for a new command's. Nothing is sent for this long after such a banner.
SETTLE_S = 0.3
START_WAIT_S = 5.0  # start_job waits this long for a cancel's reset and `$X` to finish
JOB_SPAN = 1 << 32  # job line tags are job_seq * span + file line number; driver commands are < 0
DOOR_OPEN = "safety door open: the beam is off — close the lid, then resume"
DOOR_CLOSED = "safety door closed: resume when ready"
LOCKED = "the controller is locked (alarm) — unlock it"


@dataclass
class Command:
    """A `$` command of the driver's (unlock, settings, check mode): sent alone, answered alone."""

    line: str
    done: threading.Event = field(default_factory=threading.Event)
    replies: list[Reply] = field(default_factory=list)
    error: int | None = None
    lost: bool = False
    on_done: Callable[[Command], None] | None = None


class GrblCore(SerialDriver[Reply, ConnectionLost, GrblFacts]):
    """Fields and helpers of GrblDriver (driver.py), shared by its reader (reader.py) and sender
    (sender.py) threads. Every method here is called with `_lock` held unless it says otherwise."""

    def __init__(self, profile: Profile, connection: str, *, on_event: EventCallback | None = None) -> None:
        super().__init__(profile, connection, on_event=on_event)
        mode: StreamingMode = "send_response" if profile.flow.streaming == "send_response" else "char_count"
        self.flow = CharCounter(profile.flow.rx_buffer_bytes, mode)
        self.facts = GrblFacts()
        self.view = MachineView(profile.limits.laser_s_max)
        self._changed = threading.Condition(self._lock)  # API calls waiting for a reset to finish
        self._refusal: str | None = None  # settings that make jobs unsafe ($32, $30)
        self._critical_alarm = False  # ALARM:1/2: only a reset unlocks
        self._alarm_text: str | None = None
        # soft reset in progress: "cancel"/"error" (then `$X`), "estop" (stay ERROR), "unlock"
        # (unlock() continues), "relock" (our `$X` after a cancel is in flight)
        self._resetting: str | None = None
        self._reset_at = 0.0
        self._quiet_until = 0.0  # SETTLE_S after a banner we did not cause
        self._control: deque[Command] = deque()
        self._in_flight_cmds: dict[int, Command] = {}
        self._cmd_seq = 0
        self._banners = 0
        # status polling: one `?` in flight at a time
        self._polls = 0  # `?` written
        self._poll_out: int | None = None  # number of the unanswered `?`
        self._poll_at = 0.0
        self._next_poll = 0.0
        self._trust_after = 0  # reports answering polls <= this may predate our last `!`/`~`
        self._last_report = 0.0
        # the job
        self._job_seq = 0
        self._job_iter: Iterator[JobLine] | None = None
        self._job_next: JobLine | None = None
        self._job_all_sent = False
        self._drain_from: int | None = None  # every line acked; count Idle reports after this poll
        self._idle_reports = 0

    # -- plumbing ------------------------------------------------------------------------------

    def _require_link(self) -> None:
        if self._ser is None:
            raise NotReady("not connected")

    def _stopped(self, lost: bool) -> None:
        if lost:
            self._resetting = None
        self._fail_commands()
        self._changed.notify_all()

    def _lost_reply(self, text: str) -> ConnectionLost:
        return ConnectionLost(text)

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
        cmd = Command(line)
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

    def _forget_job(self) -> None:
        self._job_iter = self._job_next = None
        self._drain_from = None

    def _progress(self) -> dict[str, object]:
        return {"extra": self.view.extra()}

    def _fail_and_reset(self, reason: str, purpose: str = "error") -> None:
        """A job line failed: stop the beam now (the lines after it are in GRBL's buffer and would run)."""
        with contextlib.suppress(ConnectionFailed):
            self._realtime(RESET)
        self._begin_reset(purpose)
        state = DriverState.ERROR if purpose == "estop" else DriverState.IDLE
        self._end_job("failed", reason, state)

    def _maybe_drain(self) -> None:
        # During a job only job lines are in flight (driver commands are refused while one runs).
        if self._job_all_sent and self._drain_from is None and not len(self.flow):
            # Every line answered: now wait for the planner to empty (status Idle).
            self._drain_from = self._polls
            self._idle_reports = 0
            self._poll_now()

    def _poll_now(self) -> None:
        self._next_poll = 0.0
        self._wake.notify()
