"""G-code lines as the firmware sees them: comments stripped, case normalised, numbered with checksums."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

# Commands whose argument is free text; their case must survive normalisation (M117 "Ciao").
_TEXT_COMMANDS = frozenset({"M23", "M28", "M30", "M32", "M117", "M118", "M928"})

BOM = "\ufeff"
_HEAD = re.compile(r"[A-Za-z]\s*\d+(?:\.\d+)?")


def strip_comment(line: str) -> str:
    """The command part of a line: everything before `;`, trimmed. Marlin ignores the rest."""
    cut = line.find(";")
    if cut >= 0:
        line = line[:cut]
    return line.strip()


def command_word(command: str) -> str:
    """`G1 X10` -> `G1`; `g01 x1` -> `G1`; `M104S200` -> `M104`. Empty string if none."""
    if not command:
        return ""
    letter = command[0].upper()
    digits: list[str] = []
    for ch in command[1:]:
        if ch.isdigit() or (ch == "." and digits):
            digits.append(ch)
        elif ch == " " and not digits:
            continue
        else:
            break
    if not digits:
        return letter
    number = "".join(digits)
    # G01 and G1 are the same command; keep subcodes like G29.1.
    if "." in number:
        whole, _, sub = number.partition(".")
        return f"{letter}{int(whole)}.{sub}"
    return f"{letter}{int(number)}"


def strip_line_number(command: str) -> str:
    """`N123 G1 X5*71` -> `G1 X5`: a host-numbered line (saved from a host's log) carries its own
    number and checksum; the driver numbers every line itself, so both must go (else Marlin gets
    `N1 N123 G1 X5*71*cs`). A line not opening with `N<digits>` is returned unchanged."""
    if len(command) < 2 or command[0] not in "Nn" or not command[1].isdigit():
        return command
    star = command.rfind("*")
    if star >= 0 and command[star + 1 :].strip().isdigit():
        command = command[:star]
    i = 1
    while i < len(command) and command[i].isdigit():
        i += 1
    return command[i:].strip()


def normalize(line: str) -> str:
    """The line as it is sent to the firmware: no comment, no padding, no host line number or
    checksum, upper case (Marlin's parser is case-sensitive unless GCODE_CASE_INSENSITIVE),
    free-text arguments kept as written."""
    command = strip_line_number(strip_comment(line.lstrip(BOM)))
    if not command:
        return ""
    word = command_word(command)
    if word in _TEXT_COMMANDS:
        # Only the command word is upper-cased; the text argument is the maker's.
        head = _HEAD.match(command)
        end = head.end() if head else 1
        return command[:end].upper() + command[end:]
    return command.upper()


def checksum(payload: bytes) -> int:
    """Marlin/RepRap checksum: XOR of every byte before `*` (Marlin queue.cpp)."""
    cs = 0
    for b in payload:
        cs ^= b
    return cs


def numbered_line(number: int, command: str) -> bytes:
    """`N<n> <command>*<checksum>\\n`, the form Marlin verifies."""
    payload = f"N{number} {command}".encode()
    return payload + b"*" + str(checksum(payload)).encode() + b"\n"


def iter_commands(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based file line number, normalised command) for every line that carries a command.

    Reads the file line by line, so a 100 MB job is never held in memory. Accepts a UTF-8 BOM
    and CRLF/LF mixed; the file is expected to have passed validation already.
    """
    with path.open("r", encoding="utf-8", errors="replace", newline=None) as fh:
        for number, raw in enumerate(fh, start=1):
            command = normalize(raw)
            if command:
                yield number, command
