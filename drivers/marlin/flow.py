"""I/O-free Marlin flow control: the ok-window, the resend history and the resend/timeout policy.

Nothing here touches a port, a thread or a clock: the driver passes `now` in and writes the bytes it
gets back. The rules (checked against Marlin 2.1 queue.cpp, see notes/marlin.md):

* Window. A line is *in flight* from the moment it is written until its `ok`. At most `max_lines`
  (BUFSIZE) lines and `max_bytes` (RX_BUFFER_SIZE minus a small reserve for the unnumbered M105 poll
  and M112) bytes are in flight, so the firmware's RX ring can never overflow: bytes arriving while it
  is full are lost and come back as checksum errors. `ok`s arrive in order, so an `ok` acks the oldest.
* Resend. After a refused line Marlin empties its RX buffer and asks `Resend: n` (2.1 adds `ok`).
  Every line >= n we have in flight is gone: we *rewind* — drop them from the window and send n, n+1…
  again from the history, at once (the rewind itself frees the window, so there is no need to wait for
  the firmware's `ok` or to fake one after 0.5 s as OctoPrint does). Lines < n stay in flight: Marlin
  parsed them into its queue and will `ok` them.
* Stale duplicates (Marlin PR #24972). Lines written before the rewind that were still on the wire
  arrive after the flush and each one triggers another `Line Number…` + `Resend: n` for the same n.
  Rewinding on each of them re-sends the window again and again (the "resend death loop"). So after a
  rewind to n we ignore up to (lines dropped - 1) further `Resend: n` caused by a line-number error.
  A checksum error always rewinds (the line carrying N = n arrived, damaged), and the budget is cleared
  once an `ok` acks a line >= n (stale lines precede fresh ones on the wire). But a stale line's error
  also flushes whatever fresh lines had already reached the RX buffer, and then nothing more comes: so
  an ignored request is only *deferred*. If no `ok` for a line >= n follows within `resend_grace_s`,
  we rewind to n after all. A low-latency link (pty, USB) mostly takes this path; a high-latency one
  (the PR's case) gets its fresh lines in after the flush and the duplicates stay ignored.
* The `ok` after `Resend:`. Marlin 2.1 writes it right after the `Resend:` line (nothing can come in
  between: both come from flush_and_request_resend), older firmware does not. That `ok` acks nothing,
  so it is swallowed. The style is learnt: a non-`ok` line right after `Resend:` proves the old style.
* Lost `ok`. Timed on the OLDEST line in flight: it has `ok_timeout_s` from the later of its write,
  the last `ok` and the last `busy:` keepalive — temperature reports do not count, they keep a line
  chatty while an `ok` is missing. On expiry we *probe*: write the oldest line again. If it had been
  lost, the firmware now takes it (`ok`); if it had been taken, Marlin refuses the duplicate with
  `Resend: last+1`, which after a silent timeout means every line before it was processed with its
  `ok` lost: they are acked and the rest resent. Either way each N is executed exactly once, since
  Marlin's line numbers refuse a duplicate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from drivers.gcode import numbered_line
from drivers.marlin.replies import LineErrorCause


@dataclass(slots=True)
class Sent:
    """A numbered line in flight. `tag` is the job command index (1-based), 0 for the driver's own."""

    number: int
    size: int
    tag: int
    sent_at: float


class ResendOutcome(StrEnum):
    REWOUND = "rewound"  # window dropped from n, lines n.. queued for sending again
    STALE = "stale"  # a duplicate request caused by a line written before the last rewind
    PROBE_SYNC = "probe_sync"  # answer to a timeout probe: lines before n acked, rest resent
    IMPOSSIBLE = "impossible"  # n is no longer (or not yet) in the history: the job cannot go on


class History:
    """The last `capacity` numbered lines, by number, for resends (numbers are consecutive)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("history capacity must be at least 1")
        self.capacity = capacity
        self._first = 0
        self._lines: deque[tuple[bytes, int]] = deque()

    def __len__(self) -> int:
        return len(self._lines)

    def record(self, number: int, line: bytes, tag: int) -> None:
        if self._lines and number != self._first + len(self._lines):
            self._lines.clear()  # numbering restarted (M110 / firmware reset)
        if not self._lines:
            self._first = number
        self._lines.append((line, tag))
        if len(self._lines) > self.capacity:
            self._lines.popleft()
            self._first += 1

    def get(self, number: int) -> tuple[bytes, int] | None:
        index = number - self._first
        if 0 <= index < len(self._lines):
            return self._lines[index]
        return None

    def clear(self) -> None:
        self._lines.clear()


class SendWindow:
    """Lines in flight, bounded by a line count and a byte count."""

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        if max_lines < 1 or max_bytes < 1:
            raise ValueError("window limits must be positive")
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._sent: deque[Sent] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._sent)

    def __iter__(self) -> Iterator[Sent]:
        return iter(self._sent)

    def fits(self, size: int) -> bool:
        if not self._sent:
            return True  # one line always goes, even if longer than the byte budget
        return len(self._sent) < self.max_lines and self.bytes + size <= self.max_bytes

    def push(self, sent: Sent) -> None:
        self._sent.append(sent)
        self.bytes += sent.size

    @property
    def oldest(self) -> Sent | None:
        return self._sent[0] if self._sent else None

    def pop_oldest(self) -> Sent | None:
        if not self._sent:
            return None
        sent = self._sent.popleft()
        self.bytes -= sent.size
        return sent

    def pop_before(self, number: int) -> list[Sent]:
        """Remove and return the lines numbered below `number`."""
        taken = [s for s in self._sent if s.number < number]
        self._keep(lambda s: s.number >= number)
        return taken

    def drop_from(self, number: int) -> list[Sent]:
        """Remove and return the lines numbered `number` or above."""
        dropped = [s for s in self._sent if s.number >= number]
        self._keep(lambda s: s.number < number)
        return dropped

    def _keep(self, keep: Callable[[Sent], bool]) -> None:
        self._sent = deque(s for s in self._sent if keep(s))
        self.bytes = sum(s.size for s in self._sent)

    def clear(self) -> None:
        self._sent.clear()
        self.bytes = 0


class FlowControl:
    """Numbering, window, history and the resend/timeout policy of one Marlin connection."""

    def __init__(
        self,
        *,
        max_lines: int,
        max_bytes: int,
        ok_timeout_s: float,
        history_lines: int = 1024,
        resend_sends_ok: bool | None = None,
        resend_grace_s: float = 0.1,
    ) -> None:
        self.window = SendWindow(max_lines, max_bytes)
        self.history = History(max(history_lines, 2 * max_lines))
        self.ok_timeout_s = ok_timeout_s
        self.resend_grace_s = resend_grace_s
        self._stale_check_at: float | None = None  # an ignored `Resend:` becomes real at this time
        # None: not known yet, learnt from the first unambiguous Resend (see module docstring).
        self.resend_sends_ok = resend_sends_ok
        self.next_number = 1
        self._resend_queue: deque[int] = deque()
        self._rewound_to: int | None = None
        self._stale_budget = 0
        self._swallow_next_ok = False
        self._probe: int | None = None
        self._older_in_flight = False  # at the last Resend: could its `ok` have acked a line?
        self._last_progress = 0.0
        # counters, for tests, logs and the benchmark
        self.resends_requested = 0
        self.rewinds = 0
        self.stale_ignored = 0
        self.oks_swallowed = 0
        self.extra_oks = 0
        self.timeouts = 0

    # -- sending -------------------------------------------------------------------------------

    def reset(self, next_number: int = 1) -> None:
        """Numbering restarted (M110 N<next-1>, or the firmware rebooted): forget everything."""
        self.next_number = next_number
        self.window.clear()
        self.history.clear()
        self._resend_queue.clear()
        self._rewound_to = None
        self._stale_budget = 0
        self._stale_check_at = None
        self._swallow_next_ok = False
        self._probe = None

    @property
    def resend_pending(self) -> bool:
        return bool(self._resend_queue)

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing waiting to be sent again."""
        return not self.window and not self._resend_queue

    def next_resend(self, now: float) -> bytes | None:
        """The next line to send again after a rewind, if the window has room for it."""
        if not self._resend_queue:
            return None
        number = self._resend_queue[0]
        entry = self.history.get(number)
        if entry is None:  # cannot happen: on_resend checked the range
            self._resend_queue.clear()
            return None
        line, tag = entry
        if not self.window.fits(len(line)):
            return None
        self._resend_queue.popleft()
        self.window.push(Sent(number, len(line), tag, now))
        return line

    def send(self, command: str, tag: int, now: float) -> bytes | None:
        """Number `command` and take it into the window, or None if it must wait (full, or resends
        pending: those go first, in order)."""
        if self._resend_queue:
            return None
        line = numbered_line(self.next_number, command)
        if not self.window.fits(len(line)):
            return None
        self.history.record(self.next_number, line, tag)
        self.window.push(Sent(self.next_number, len(line), tag, now))
        self.next_number += 1
        return line

    def has_room(self, size: int) -> bool:
        return not self._resend_queue and self.window.fits(size)

    # -- replies -------------------------------------------------------------------------------

    def on_ok(self, now: float) -> Sent | None:
        """An `ok` (not the M105 poll's): returns the line it acknowledges, if any."""
        if self._swallow_next_ok:
            self._swallow_next_ok = False
            self.oks_swallowed += 1
            if self.resend_sends_ok is None and not self._older_in_flight:
                self.resend_sends_ok = True  # nothing else could have been acked: unambiguous
            return None
        self._last_progress = now
        self._probe = None
        sent = self.window.pop_oldest()
        if sent is None:
            self.extra_oks += 1
            return None
        if self._rewound_to is not None and sent.number >= self._rewound_to:
            self._stale_budget = 0  # the firmware took a fresh line: no stale line can follow
            self._rewound_to = None
            self._stale_check_at = None
        return sent

    def on_other_line(self) -> None:
        """Any line that is neither `ok` nor `Resend:`; proves the old style if it follows `Resend:`."""
        if self._swallow_next_ok:
            self._swallow_next_ok = False
            self.resend_sends_ok = False

    def on_busy(self, now: float) -> None:
        self._last_progress = now

    def on_resend(
        self, number: int, cause: LineErrorCause | None, now: float
    ) -> tuple[ResendOutcome, list[Sent]]:
        """`Resend: number` (cause: the `Error:` line just before it). Returns the outcome and the
        lines now known to be done (only after a probe)."""
        self.resends_requested += 1
        self._last_progress = now
        self._older_in_flight = any(s.number < number for s in self.window)
        self._swallow_next_ok = self.resend_sends_ok is not False
        if number > self.next_number or (number < self.next_number and self.history.get(number) is None):
            return ResendOutcome.IMPOSSIBLE, []
        if self._probe is not None:
            # The firmware was silent for ok_timeout_s, so whatever it took before `number` has been
            # processed and only the `ok`s were lost.
            self._probe = None
            done = self.window.pop_before(number)
            self._rewind(number, budget=0)
            self._rewound_to = None
            return ResendOutcome.PROBE_SYNC, done
        if number == self._rewound_to and self._stale_budget > 0 and cause is not LineErrorCause.CHECKSUM:
            self._stale_budget -= 1
            self.stale_ignored += 1
            self._stale_check_at = now + self.resend_grace_s
            return ResendOutcome.STALE, []
        leftover = self._stale_budget if number == self._rewound_to else 0
        # One of the dropped lines caused this request; each of the others may still cause one.
        dropped = sum(1 for s in self.window if s.number >= number)
        self._rewind(number, budget=leftover + max(0, dropped - 1))
        return ResendOutcome.REWOUND, []

    def _rewind(self, number: int, budget: int) -> None:
        self.window.drop_from(number)
        self._resend_queue = deque(range(number, self.next_number))
        self._rewound_to = number
        self._stale_budget = budget
        self._stale_check_at = None
        self.rewinds += 1

    def expect_foreign_ok(self) -> None:
        """The next `ok` answers something that was not one of our numbered lines (a damaged line
        that lost its `N` and ran as an unknown command): it acks nothing."""
        self._swallow_next_ok = True
        self._older_in_flight = True  # teaches nothing about the Resend style

    def check_stale(self, now: float) -> bool:
        """Rewind after all if an ignored `Resend:` was not followed by progress in time."""
        if self._stale_check_at is None or now < self._stale_check_at or self._rewound_to is None:
            return False
        number = self._rewound_to
        leftover = self._stale_budget
        dropped = sum(1 for s in self.window if s.number >= number)
        self._rewind(number, budget=leftover + max(0, dropped - 1))
        return True

    # -- timeout -------------------------------------------------------------------------------

    def deadline(self) -> float | None:
        """When `check_stale` or `check_timeout` next has work (None: nothing in flight)."""
        oldest = self.window.oldest
        if oldest is None:
            return self._stale_check_at
        timeout = max(oldest.sent_at, self._last_progress) + self.ok_timeout_s
        return timeout if self._stale_check_at is None else min(timeout, self._stale_check_at)

    def check_timeout(self, now: float) -> bytes | None:
        """The probe to write if the oldest line in flight has waited too long for its `ok`."""
        oldest = self.window.oldest
        if oldest is None or now < max(oldest.sent_at, self._last_progress) + self.ok_timeout_s:
            return None
        entry = self.history.get(oldest.number)
        self.timeouts += 1
        self._probe = oldest.number
        self._last_progress = now
        oldest.sent_at = now
        return entry[0] if entry else None
