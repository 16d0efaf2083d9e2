"""Job lines as they go to GRBL: comments and spaces removed, upper case, realtime-unsafe bytes refused.

drivers/gcode.py normalises for Marlin (keeps spaces, strips `N..*cs`); GRBL needs its own rules:

* GRBL throws away spaces and comments itself (protocol.c), but the RX buffer counts the raw bytes
  (serial.c): sending them wastes the 128-byte budget. So we strip `( )` and `;` comments and every
  byte <= ' ' exactly as protocol.c does, and upper-case (GRBL would too).
* Realtime bytes are picked out of the stream by the serial ISR wherever they appear, even inside a
  comment (serial.c: `?`, `!`, `~`, 0x18, and every byte above 0x7F is an override or is dropped).
  A maker's Chinese or Italian comment in UTF-8 is made of bytes 0x80-0xBF — 0x84 is "safety door",
  0x99-0x9D change the laser power. Comments are removed before anything is sent; a command that
  still holds such a byte is refused, never sent.
* `$` lines do not belong in a job (the validator refuses them; refused here again, since a `$x=`
  write stalls the AVR and breaks character counting).
* EEPROM writers (G10 L2/L20, G28.1, G30.1) are flagged: the flow sends them alone (send-response).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BOM = "\ufeff"
_REALTIME_ASCII = frozenset("?!~")
_WORD = re.compile(r"([A-Z])([-+]?[0-9.]*)")


class UnsafeLine(ValueError):
    """A job line that must not be sent to GRBL; the message names the problem."""


@dataclass(frozen=True, slots=True)
class JobLine:
    number: int  # 1-based line number in the file
    text: str  # what goes on the wire, without the `\n`
    eeprom: bool  # writes GRBL's EEPROM: send alone, wait for its answer


def clean(raw: str) -> str:
    """The line as GRBL's protocol.c would keep it: no comments, no spaces or control bytes, upper case.

    Raises UnsafeLine for a byte GRBL's serial ISR would act on (a realtime command) outside a comment.
    """
    out: list[str] = []
    in_paren = False
    for ch in raw:
        if in_paren:
            if ch == ")":
                in_paren = False
        elif ch == "(":
            in_paren = True  # GRBL: until `)` or the end of the line
        elif ch == ";":
            break
        elif ch <= " " or ch == BOM or ch == "/":  # protocol.c drops <= ' '; '/' block delete is ignored
            continue
        elif ch > "~" or ch in _REALTIME_ASCII:
            raise UnsafeLine(f"character {ch!r} would act as a GRBL realtime command")
        else:
            out.append(ch)
    return "".join(out).upper()


def writes_eeprom(text: str) -> bool:
    """G10 L2/L20, G28.1, G30.1 write EEPROM (notes/grbl.md; gcode.c): the AVR stops reading serial."""
    words = [(letter, value) for letter, value in _WORD.findall(text)]
    gs = {_num(v) for letter, v in words if letter == "G"}
    if 28.1 in gs or 30.1 in gs:
        return True
    if 10.0 in gs:
        return any(letter == "L" and _num(v) in (2.0, 20.0) for letter, v in words)
    return False


def check(number: int, text: str, max_chars: int) -> None:
    """Raise UnsafeLine if GRBL would refuse or misread the cleaned line."""
    if text.startswith("$"):
        raise UnsafeLine(f"file line {number}: '$' commands do not belong in a job ({text[:20]})")
    # LINE_BUFFER_SIZE (profile max_command_chars, 80) holds max_chars-1 characters before the NUL
    # (protocol.c: overflow at char_counter >= LINE_BUFFER_SIZE-1 → error:11).
    if len(text) > max_chars - 1:
        raise UnsafeLine(
            f"file line {number}: {len(text)} characters once cleaned, GRBL takes at most {max_chars - 1}"
        )


def iter_job(path: Path, max_chars: int) -> Iterator[JobLine]:
    """Every line of `path` that carries a command, cleaned and checked; read lazily from disk."""
    with path.open("r", encoding="utf-8", errors="replace", newline=None) as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = clean(raw)
            except UnsafeLine as exc:
                raise UnsafeLine(f"file line {number}: {exc}") from None
            if not text or text == "%":  # `%` program delimiters: GRBL does not support them
                continue
            check(number, text, max_chars)
            yield JobLine(number, text, writes_eeprom(text))


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
