"""I/O-free GRBL character counting: the bytes of unanswered lines never exceed the RX buffer.

GRBL answers every line it takes out of its RX buffer with exactly one `ok` or `error:N`, in order
(protocol.c), so the host can know how full the buffer is without asking: keep the byte length of each
unanswered line (its `\\n` included), drop the oldest on each answer, and send the next line only if
the sum plus its length fits the budget (gnea/grbl doc/script/stream.py, "aggressive" mode). `Bf:` in
status reports is not used: it is sampled at report time and stale by the time it arrives.

The budget is the whole RX buffer: serial.c allocates RX_BUFFER_SIZE+1 bytes for its ring
(RX_RING_BUFFER), so all RX_BUFFER_SIZE bytes can hold data, and realtime bytes (`?`, `!`, `~`, 0x18,
>= 0x80) are picked off in the ISR and never take a byte of it: nothing needs to be kept free. Lines
are counted from the moment they are written, so bytes still on the wire count too (conservative).

Two modes besides: `send_response` (one line at a time; the profile's fallback) and *exclusive*
lines (EEPROM writers, `$n=v` settings): GRBL's AVR stops servicing the serial port while it writes
EEPROM (notes/grbl.md), so such a line goes out alone, after every earlier line was answered, and
nothing follows it until its own answer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

StreamingMode = Literal["char_count", "send_response"]


@dataclass(frozen=True, slots=True)
class InFlight:
    """A line written and not yet answered. `tag` identifies it for the driver (job line, command)."""

    size: int  # bytes on the wire, `\n` included
    tag: int
    exclusive: bool = False


class CharCounter:
    """The bytes GRBL's RX buffer holds for us, by counting the answers to our lines."""

    def __init__(self, budget: int, mode: StreamingMode = "char_count") -> None:
        if budget < 2:
            raise ValueError("the RX budget must hold at least one character and its newline")
        self.budget = budget
        self.mode: StreamingMode = mode
        self._sent: deque[InFlight] = deque()
        self.bytes = 0
        self.high_water = 0  # the most bytes ever in flight (the benchmark shows the budget is used)
        self.answered = 0

    def __len__(self) -> int:
        return len(self._sent)

    @property
    def free(self) -> int:
        return self.budget - self.bytes

    @property
    def oldest(self) -> InFlight | None:
        return self._sent[0] if self._sent else None

    def fits(self, size: int, exclusive: bool = False) -> bool:
        """May a line of `size` bytes (with its `\\n`) be written now?"""
        if size > self.budget:
            return False  # can never fit; the caller must refuse the line instead of waiting
        if self._sent and (exclusive or self.mode == "send_response" or self._sent[-1].exclusive):
            return False  # send-response, or an EEPROM writer that must be alone on the wire
        return self.bytes + size <= self.budget

    def take(self, size: int, tag: int, exclusive: bool = False) -> None:
        """Record a line as written. Call only when `fits` said yes."""
        if not self.fits(size, exclusive):
            raise ValueError(f"a {size}-byte line does not fit ({self.bytes}/{self.budget} in flight)")
        self._sent.append(InFlight(size, tag, exclusive))
        self.bytes += size
        if self.bytes > self.high_water:
            self.high_water = self.bytes

    def answer(self) -> InFlight | None:
        """An `ok` or `error:N` arrived: it answers the oldest line, whose bytes GRBL has read out of
        its RX buffer. None if nothing was in flight (an answer to a line sent before a reset)."""
        if not self._sent:
            return None
        done = self._sent.popleft()
        self.bytes -= done.size
        self.answered += 1
        return done

    def reset(self) -> list[InFlight]:
        """GRBL was reset (0x18, banner): it emptied its RX buffer (serial_reset_read_buffer), so the
        lines in flight will never be answered. Returns them."""
        lost = list(self._sent)
        self._sent.clear()
        self.bytes = 0
        return lost
