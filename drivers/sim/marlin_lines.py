"""Marlin's serial input side: RX ring buffer, emergency parser, line assembly and N/checksum checks."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# language.h: the three line errors, each followed by the last good line number.
ERR_LINE_NO = "Line Number is not Last Line Number+1, Last Line: "
ERR_CHECKSUM = "checksum mismatch, Last Line: "
ERR_NO_CHECKSUM = "No Checksum with line number, Last Line: "

# feature/e_parser.h acts on M108, M112, M410 and M876 at end of line, optionally after N<n>, with
# whatever follows the command word (a `*checksum` included) ignored.
_EMERGENCY = re.compile(rb"(?m)^[ \t]*(?:N[-0-9 \t]*)?(M108|M112|M410|M876)[^\r\n]*[\r\n]")
_EOL = re.compile(rb"[\r\n]")
_NUMBERED = re.compile(r"N([0-9]+)([^*]*)\*([0-9]+)[ \t]*")
_SAFE_FLIPS = (1, 2, 4, 8, 16, 32, 64)


class RxBuffer:
    """The firmware's serial RX ring: bytes beyond its capacity are dropped (MarlinSerial ISR)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data = bytearray()
        self.dropped = 0
        self._em_tail = b""

    def scan(self, chunk: bytes) -> list[bytes]:
        """The emergency commands completed by `chunk` (e_parser.h sees every byte, even dropped ones)."""
        if not self._em_tail and b"M" not in chunk:
            return []
        scan = self._em_tail + chunk
        found = _EMERGENCY.findall(scan)
        last_eol = max(scan.rfind(b"\n"), scan.rfind(b"\r"))
        # Only the start of an unfinished line matters to the parser.
        self._em_tail = scan[last_eol + 1 :][:40]
        return found

    def store(self, chunk: bytes, *, drop: bool) -> bytes:
        """Store what fits; the rest is dropped (counted) if `drop`, else returned to be offered again."""
        room = max(0, self.capacity - len(self.data))
        if len(chunk) <= room:
            self.data += chunk
            return b""
        self.data += chunk[:room]
        if drop:
            self.dropped += len(chunk) - room
            return b""
        return chunk[room:]

    def clear(self) -> None:
        self.data.clear()

    def reset(self) -> None:
        self.data.clear()
        self._em_tail = b""


@dataclass(slots=True)
class Line:
    """A line read from the RX buffer: its command text, and its N if it was numbered and checked."""

    command: str
    number: int | None


class LineError(Exception):
    """A numbered line failed its check; `message` is the text after `Error:`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class LineReader:
    """Assembles lines from RX bytes like queue.cpp get_serial_commands().

    Comments (`;` to end of line) are not stored, characters past `max_chars` are dropped (the line is
    truncated, not refused), empty lines are skipped, and a line starting with N is checked.
    """

    def __init__(self, max_chars: int, *, corrupt_rate: float = 0.0, seed: int = 0) -> None:
        self.max_chars = max_chars
        self.last_n = 0
        self.partial = bytearray()
        self.corrupt_rate = corrupt_rate
        self._rng = random.Random(seed)
        self.corrupted = 0

    def reset(self) -> None:
        self.last_n = 0
        self.partial.clear()

    def take_line(self, rx: RxBuffer) -> bytes | None:
        """Move bytes from `rx` into the line buffer; return one complete raw line, or None."""
        data = rx.data
        if not data:
            return None
        m = _EOL.search(data)
        if m is None:
            # Marlin keeps only MAX_CMD_SIZE characters of a line; a little more is kept here so a
            # `;` or `*` arriving later is still seen, and garbage without an end of line stays bounded.
            self.partial += data[: max(0, 4 * self.max_chars - len(self.partial))]
            data.clear()
            return None
        end = m.start()
        raw = bytes(self.partial) + bytes(data[:end])
        del data[: end + 1]
        self.partial.clear()
        return raw

    def parse(self, raw: bytes) -> Line | None:
        """Check one raw line. None for an empty/comment line; raises LineError on a bad numbered line."""
        cut = raw.find(b";")
        if cut >= 0:
            raw = raw[:cut]
        raw = raw[: self.max_chars]
        if self.corrupt_rate and raw.lstrip(b" ").startswith(b"N") and self._rng.random() < self.corrupt_rate:
            raw = self._corrupt(raw)
        text = raw.decode("latin-1").lstrip(" ")
        if not text.strip():
            return None
        if text[0] != "N":
            return Line(text.strip(), None)
        if "M110" not in text:
            # Fast path for the common `N<n> <command>*<cs>`; anything unusual takes the general one.
            m = _NUMBERED.fullmatch(text)
            if m is not None:
                number = int(m[1])
                if number != self.last_n + 1:
                    raise LineError("line_number", ERR_LINE_NO + str(self.last_n))
                cs = 0
                for b in raw.lstrip(b" ")[: m.start(3) - 1]:
                    cs ^= b
                if int(m[3]) != cs:
                    raise LineError("checksum", ERR_CHECKSUM + str(self.last_n))
                self.last_n = number
                return Line(m[2].strip(), number)
        # queue.cpp: on M110 the number to check is the one after M110 (`N0 M110 N0`).
        npos = 0
        is_m110 = "M110" in text
        if is_m110:
            n2 = text.find("N", text.find("M110") + 4)
            if n2 >= 0:
                npos = n2
        number = _leading_int(text, npos + 1)
        if number != self.last_n + 1 and not is_m110:
            raise LineError("line_number", ERR_LINE_NO + str(self.last_n))
        star = text.rfind("*")
        if star < 0:
            raise LineError("no_checksum", ERR_NO_CHECKSUM + str(self.last_n))
        cs = 0
        for b in raw.lstrip(b" ")[:star]:
            cs ^= b
        if _leading_int(text, star + 1) != cs:
            raise LineError("checksum", ERR_CHECKSUM + str(self.last_n))
        self.last_n = number
        # The parser skips `N<n>` and stops at `*`: the command is what lies between.
        body = text[:star]
        i = 1
        while i < len(body) and (body[i].isdigit() or body[i] == "-"):
            i += 1
        return Line(body[i:].strip(), number)

    def _corrupt(self, raw: bytes) -> bytes:
        """Flip one bit of one byte, as line noise would (never into an end of line or `;`)."""
        self.corrupted += 1
        buf = bytearray(raw)
        while True:
            i = self._rng.randrange(len(buf))
            flipped = buf[i] ^ self._rng.choice(_SAFE_FLIPS)
            if flipped not in (0x0A, 0x0D, 0x3B, 0x00):
                buf[i] = flipped
                return bytes(buf)


def _leading_int(text: str, start: int) -> int:
    """strtol(): the integer at `start` (after spaces), 0 when there is none."""
    i = start
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    j = i
    if j < n and text[j] in "+-":
        j += 1
    while j < n and text[j].isdigit():
        j += 1
    try:
        return int(text[i:j])
    except ValueError:
        return 0
