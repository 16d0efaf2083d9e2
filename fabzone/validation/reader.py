"""Streaming reader: raw bytes -> lines in blocks, with sha256, size, NUL and UTF-8 checks in the same pass."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from fabzone.validation.model import ReasonLog

BLOCK_BYTES = 1 << 18  # 256 KiB: a few thousand lines per block; memory stays ~2 MB
# No G-code line is this long; a "line" this size without an end is a binary or a broken upload and
# must not make the reader buffer the whole file.
MAX_LINE_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"


class Reader:
    """Yields `(lines before this block, [line bytes without the end of line])`.

    Lines end at `\\n`, `\\r\\n` or a lone `\\r`, as in Python's universal newlines, which is what
    `drivers.gcode.iter_commands` (the driver's sender) uses, so line numbers agree with the driver's.
    File-level problems (too large, NUL bytes, invalid UTF-8, endless line) go to `reasons`; after
    a NUL byte the reader stops: the file is binary, nothing after it is worth reading.
    """

    def __init__(self, path: Path, max_bytes: int | None = None, block_bytes: int = BLOCK_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.block_bytes = block_bytes
        self.sha = hashlib.sha256()
        self.file_bytes = 0
        self.file_lines = 0
        self.ends_with_newline = True
        self.stopped = False
        self.reasons = ReasonLog()

    def blocks(self) -> Iterator[tuple[int, list[bytes]]]:
        carry = b""
        first = True
        drop_lf = False  # the previous block ended with `\r`: a `\n` opening this one is its pair
        with self.path.open("rb") as fh:
            while True:
                data = fh.read(self.block_bytes)
                if not data:
                    break
                self.file_bytes += len(data)
                if self.max_bytes is not None and self.file_bytes > self.max_bytes:
                    self.reasons.add("gcode.too_large", None, limit_mb=round(self.max_bytes / 1e6, 1))
                    self.stopped = True
                    return
                self.sha.update(data)
                if first:
                    first = False
                    if data.startswith(_BOM):
                        data = data[len(_BOM) :]
                if drop_lf:
                    drop_lf = False
                    if data[:1] == b"\n":
                        data = data[1:]
                buf = carry + data if carry else data
                cut = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
                if cut < 0:
                    carry = buf
                    if len(carry) > MAX_LINE_BYTES:
                        self.reasons.add(
                            "gcode.line_endless", self.file_lines + 1, kib=MAX_LINE_BYTES // 1024
                        )
                        self.stopped = True
                        return
                    continue
                part, carry = buf[: cut + 1], buf[cut + 1 :]
                drop_lf = not carry and part.endswith(b"\r")
                lines = self._split(part)
                if lines:
                    start = self.file_lines
                    self.file_lines += len(lines)
                    yield start, lines
                if self.stopped:
                    return
            if carry:
                self.ends_with_newline = False
                lines = self._split(carry + b"\n")
                if lines:
                    start = self.file_lines
                    self.file_lines += len(lines)
                    yield start, lines
            elif self.file_bytes == 0:
                self.ends_with_newline = False

    def _split(self, part: bytes) -> list[bytes]:
        """`part` ends with an end of line; returns its lines, checking NUL bytes and UTF-8."""
        if b"\r" in part:
            part = part.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        nul = part.find(b"\0")
        if nul >= 0:
            self.reasons.add("gcode.binary", self.file_lines + part.count(b"\n", 0, nul) + 1)
            self.stopped = True
            part = part[: part.rfind(b"\n", 0, nul) + 1]
        lines = part.split(b"\n")
        lines.pop()  # `part` ends with `\n`: the last piece is empty
        if not part.isascii():
            try:
                part.decode("utf-8")
            except UnicodeDecodeError:
                # Only now look line by line, to name every bad line (bounded by ReasonLog).
                for i, line in enumerate(lines):
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError:
                        self.reasons.add("gcode.not_utf8", self.file_lines + i + 1)
        return lines
