"""GRBL's serial input side: realtime byte pick-off, the 128-byte RX ring and line assembly (serial.c, protocol.c)."""

from __future__ import annotations

import random
from dataclasses import dataclass

# serial.c ISR: these bytes act at once and never enter the RX buffer (config.h CMD_* values).
CMD_RESET = 0x18
CMD_STATUS_REPORT = ord("?")
CMD_CYCLE_START = ord("~")
CMD_FEED_HOLD = ord("!")
CMD_SAFETY_DOOR = 0x84
CMD_JOG_CANCEL = 0x85
# The bytes the wire log records (the bench times e-stop latency from it).
LOGGED_REALTIME = frozenset((CMD_RESET, CMD_STATUS_REPORT, CMD_CYCLE_START, CMD_FEED_HOLD))
_PICKED = bytes((CMD_RESET, CMD_STATUS_REPORT, CMD_CYCLE_START, CMD_FEED_HOLD))
# Bytes a flipped bit must not turn into: an end of line, a realtime byte, a comment opener.
_UNSAFE = frozenset(b"\n\r?!~;(\x18\x00") | frozenset(range(0x80, 0x100))
_WHITESPACE = bytes(range(33))  # protocol.c throws away every byte <= ' '
_SAFE_FLIPS = (1, 2, 4, 8, 16, 32, 64)


def split_realtime(chunk: bytes) -> tuple[bytes, bytes]:
    """(bytes for the RX buffer, realtime bytes in arrival order).

    serial.c: `?`, `~`, `!` and 0x18 are acted on by the ISR; every byte above 0x7F is either a realtime
    command or thrown away, so neither kind ever reaches the RX buffer.
    """
    if chunk.isascii() and not any(b in chunk for b in _PICKED):
        return chunk, b""
    keep = bytearray()
    picked = bytearray()
    for b in chunk:
        if b > 0x7F or b in _PICKED:
            picked.append(b)
        else:
            keep.append(b)
    return bytes(keep), bytes(picked)


class RxBuffer:
    """serial.c's RX ring (RX_BUFFER_SIZE bytes usable): a byte arriving when it is full is lost."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data = bytearray()
        self.dropped = 0
        self.high_water = 0

    def store(self, chunk: bytes) -> None:
        room = self.capacity - len(self.data)
        if len(chunk) > room:
            self.dropped += len(chunk) - room
            chunk = chunk[:room]
        self.data += chunk
        if len(self.data) > self.high_water:
            self.high_water = len(self.data)

    @property
    def free(self) -> int:
        return self.capacity - len(self.data)

    def clear(self) -> None:
        # serial_reset_read_buffer() on a reset.
        self.data.clear()


@dataclass(slots=True)
class Line:
    """One line read from the RX buffer: `raw` as received (no end of line), `text` as GRBL parses it."""

    raw: str
    text: str
    overflow: bool


class LineAssembler:
    """protocol_main_loop(): bytes up to `\\n` or `\\r` make a line; spaces, control bytes and comments
    (`( )` and `;`) are dropped, letters upper-cased, and more than LINE_BUFFER_SIZE-1 kept characters set
    the overflow flag (the line is answered `error:11`)."""

    def __init__(self, max_chars: int, *, corrupt_rate: float = 0.0, seed: int = 0) -> None:
        # profile flow.max_command_chars is LINE_BUFFER_SIZE (80): 79 characters fit before the NUL.
        self.max_kept = max_chars - 1
        self.partial = bytearray()
        self.corrupt_rate = corrupt_rate
        self.corrupted = 0
        self._rng = random.Random(seed)

    def reset(self) -> None:
        self.partial.clear()

    def take(self, rx: RxBuffer) -> Line | None:
        """Read bytes out of `rx` (as the main loop does whenever it is not blocked); one line or None."""
        data = rx.data
        if not data:
            return None
        n = data.find(b"\n")
        r = data.find(b"\r", 0, n if n >= 0 else len(data))
        end = r if r >= 0 else n
        if end < 0:
            # A partial line leaves the RX buffer for protocol.c's line[]; keep it bounded (garbage
            # without an end of line is only ever counted as overflow).
            if len(self.partial) < 4096:
                self.partial += data
            data.clear()
            return None
        raw = bytes(self.partial) + bytes(data[:end]) if self.partial else bytes(data[:end])
        del data[: end + 1]
        self.partial.clear()
        if self.corrupt_rate and raw and self._rng.random() < self.corrupt_rate:
            raw = self._corrupt(raw)
        return self.clean(raw)

    def clean(self, raw: bytes) -> Line:
        body = raw
        if b"(" in body or b";" in body:
            body = _strip_comments(body)
        text = body.translate(None, _WHITESPACE).replace(b"/", b"").upper()
        return Line(raw.decode("latin-1"), text.decode("latin-1"), len(text) > self.max_kept)

    def _corrupt(self, raw: bytes) -> bytes:
        """Flip one bit of one byte, as line noise would (never into an end of line or a realtime byte)."""
        self.corrupted += 1
        buf = bytearray(raw)
        for _ in range(32):
            i = self._rng.randrange(len(buf))
            flipped = buf[i] ^ self._rng.choice(_SAFE_FLIPS)
            if flipped not in _UNSAFE:
                buf[i] = flipped
                break
        return bytes(buf)


def _strip_comments(body: bytes) -> bytes:
    """protocol.c: `(` starts a comment ended by `)`; `;` comments to the end of the line."""
    out = bytearray()
    in_paren = False
    for b in body:
        if in_paren:
            if b == 0x29:  # ')'
                in_paren = False
        elif b == 0x28:  # '('
            in_paren = True
        elif b == 0x3B:  # ';'
            break
        else:
            out.append(b)
    return bytes(out)
