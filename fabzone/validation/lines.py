"""Line dispatch: one command line -> its command words and parameters -> the handlers (Marlin and GRBL)."""

from __future__ import annotations

import re

from fabzone.validation.grbl import LONG_COMMAND, MODAL_MOVE_WORDS, POWER_WORDS, clean_length, strip_parens
from fabzone.validation.interpreter import Params, count, tally
from fabzone.validation.laser import LaserInterpreter

_WORD = re.compile(rb"([A-Z]) *([0-9]+(?:\.[0-9]+)?)")
_PARAM = re.compile(rb"([A-Z]) *([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))?")
# Free-text commands: the argument is not parameters (drivers.gcode keeps their case, too).
_TEXT = frozenset({"M23", "M28", "M30", "M32", "M117", "M118", "M928"})
# Lines may open with a parameter when a motion mode is active (Marlin GCODE_MOTION_MODES).
_MODAL_LETTERS = frozenset(b"XYZEFIJR")
_FIRST_LETTERS = frozenset(b"GMTD")  # D: Marlin's debug codes
# GRBL: a line may only set power or feed (`S500`, `F3000`); a value must follow the letter.
_VALUE = re.compile(rb"[SF] *[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")


def _word(letter: str, number: str) -> str:
    """`G`, `01` -> `G1`; `G`, `38.2` -> `G38.2`."""
    whole, _, sub = number.partition(".")
    return f"{letter}{int(whole or 0)}" + (f".{sub}" if sub else "")


class LineInterpreter(LaserInterpreter):
    """Every line but plain G0/G1 (the scan's hot loop takes those) comes through `_other`."""

    @staticmethod
    def _text_command(ucmd: bytes) -> bool:
        """`M117 Printing (1/3)`: the rest of the line is text for the display, parentheses included."""
        m = _WORD.match(ucmd)
        return m is not None and _word(m.group(1).decode(), m.group(2).decode()) in _TEXT

    def _other(self, ucmd: bytes, cmd: bytes, ln: int) -> None:
        if ucmd[0] == 78 and len(ucmd) > 1 and 48 <= ucmd[1] <= 57:  # `N123 ... *cs` from a host
            cmd = self._strip_number(cmd, ln)
            if not cmd:
                self.commands -= 1
                return
            ucmd = cmd.upper()
        if 40 in ucmd and not self._text_command(ucmd):
            # `(`: GRBL drops ( ) comments (the line is still sent and answered). Stock Marlin has no
            # PAREN_COMMENTS: its parser skips the `(` and reads on, so `G1 X10 (Y300)` moves to Y300.
            # Noted here, refused for printers in check.py; the laser's reading goes on without them.
            tally(self.paren_lines, ln)
            ucmd = strip_parens(ucmd)
            if not ucmd:
                self._length(cmd, ln)
                return
        first = ucmd[0]
        m = _WORD.match(ucmd)
        if first == 36:  # `$`: a GRBL system command, recorded as written (laser.py)
            self._length(cmd, ln)
            self._system(ucmd, ln)
            return
        if m is not None and m.group(1)[0] in _FIRST_LETTERS:
            letter, number = m.group(1).decode(), m.group(2).decode()
            word = _word(letter, number)
            rest = ucmd[m.end() :]
        elif first in _MODAL_LETTERS and self.mode is not None and _PARAM.match(ucmd):
            word, rest = self.mode, ucmd
        elif _VALUE.match(ucmd):  # GRBL `S500`, `F3000`
            word, rest = chr(first), ucmd
        else:
            self.commands -= 1
            text = cmd[:40].decode("utf-8", "replace")
            self.log.add("gcode.not_gcode", ln, text=text)
            return
        self._length(cmd, ln)
        if word[0] == "T":
            count(self.words, word, ln)
            self.tool = int(float(word[1:]))  # later M104 without T set this tool's hotend
            return
        handler = self.handlers.get(word)
        if handler is None or word in _TEXT:
            count(self.words, word, ln)
            return
        params: Params = {}
        extra: list[str] = []
        for letter_b, value in _PARAM.findall(rest):
            letter = letter_b.decode()
            if letter in "GM" and value:  # GRBL takes several command words per line
                extra.append(_word(letter, value.decode()))
            else:
                params[letter] = float(value) if value else None
        if "Z" in params:
            tally(self.z_words, ln)
        if "E" in params:
            tally(self.e_words, ln)
        if extra or (word in MODAL_MOVE_WORDS and ("X" in params or "Y" in params or "Z" in params)):
            self._multi([word, *extra], params, ln)
            return
        count(self.words, word, ln)
        if "S" in params and word in POWER_WORDS:
            self._power(params["S"], ln)
        handler(word, params, ln)

    def _length(self, cmd: bytes, ln: int) -> None:
        count(self.lengths, len(cmd), ln)
        if len(cmd) > LONG_COMMAND:
            count(self.clean_lengths, clean_length(cmd), ln)

    def _strip_number(self, cmd: bytes, ln: int) -> bytes:
        """Drop `N<n>` and `*<checksum>` (the driver numbers lines itself), checking the checksum
        as Marlin does: XOR of every byte before `*` (queue.cpp)."""
        star = cmd.rfind(b"*")
        if star >= 0 and cmd[star + 1 :].strip().isdigit():
            cs = 0
            for b in cmd[:star]:
                cs ^= b
            if cs != int(cmd[star + 1 :]):
                self.log.add("gcode.bad_checksum", ln)
            cmd = cmd[:star]
        i = 1
        while i < len(cmd) and 48 <= cmd[i] <= 57:
            i += 1
        return cmd[i:].strip()
