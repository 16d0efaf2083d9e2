"""The GRBL laser dialect on top of the interpreter: laser power (M3/M4/M5, S), `$` lines, lines with several words, the file's kind.

What the scan records here, and the decisions where GRBL and the hall differ:

- **S is laser power** on every line GRBL reads it from (gcode.c: S sets `spindle_speed` whatever
  else the line holds): `M3 S1000`, `G1 X5 S300`, a modal `X10.4S2`, a bare `S500`. Every value
  goes into one `AxisTrack`, so `check` names the first line above the profile's `$30` and the
  highest one. S on heater or fan commands (M104 S200, M106 S255) is not power and is not counted.
- **Burning**: GRBL's laser mode fires only in G1/G2/G3 with M3/M4 on and S > 0 (G0 keeps the modal
  state but the beam is off). Those moves make the burn box; all moves make the motion box.
- **Several words on a line** (`G00 G17 G40 G21 G54`, `G53 G0 X0 Y0`, `G91 G1 X5`) run in GRBL's
  order of execution (gcode.c, "STEP 3"): S, M3/M4/M5, M7/M8/M9, G4, G17, G20/G21, G54, G90/G91,
  then G92 or the motion. A line with an axis word and no motion word moves in the modal motion mode.
- **Work coordinates**: the hub cannot see the controller's stored offsets (G54's WCO, G28's stored
  position), so a job's coordinates are taken as machine coordinates: G54 (the default system) is
  accepted with a zero offset, and the GRBL driver must check that `WCO` is zero before the first
  line. What depends on or writes stored offsets is refused on GRBL (check.py): G10 L2/L20, G28/G30
  and their `.1` setters (EEPROM writes block serial reception on the AVR), G55–G59. G92 and G92.1
  are tracked as on Marlin (the shift is in the file). G53 moves in machine coordinates.
- **Air assist**: M8/M9 are accepted on every laser, with or without `laser.air_assist`: on a machine
  without a pump the coolant pin is simply not wired, which is harmless. M7 (mist) is accepted on
  GRBL only where the profile says the firmware was built with it (`laser.enable_m7`): stock 1.1 is
  built without ENABLE_M7 (config.h), and M7 then stops the job with error:20 (`gcode.laser_no_m7`).
- **`$` lines** (settings writes `$32=0`, `$RST=*`, `$H`, `$J=…`, `$SLP`, `$$`…) are recorded with
  their text; no `$` line belongs in a job (check refuses every one, on every machine).
- **G4 P** is seconds in GRBL and milliseconds in Marlin: once the file has turned a laser on, P is
  read as seconds (only the time estimate depends on it).
- **Kind** (`file_kind`): see there.
"""

from __future__ import annotations

import math

from fabzone.validation.estimate import MotionConfig
from fabzone.validation.geometry import AxisTrack
from fabzone.validation.grbl import AXIS_COMMANDS, CUT, MOTION, RANK
from fabzone.validation.interpreter import Interpreter, Params, count
from fabzone.validation.model import MAX_PER_CODE

_INF = math.inf


class LaserInterpreter(Interpreter):
    """The interpreter plus laser state; `_Scanner` (scan.py) runs it."""

    def __init__(self, configs: list[MotionConfig]) -> None:
        super().__init__(configs)
        self.laser_on = False  # M3/M4 until M5 (or program end)
        self.laser_seen = 0  # M3/M4 commands: laser evidence
        self.power = 0.0  # the last S
        self.power_lines = 0  # lines with laser power S: laser evidence
        self.ts = AxisTrack()  # every S value (first above a limit, highest)
        self.system: list = [0, []]  # `$` lines: count, [(line, text)]
        self.burn_moves = 0
        self.blx = self.bly = _INF  # burn box (inf/-inf: nothing burnt)
        self.bhx = self.bhy = -_INF
        for word in ("M3", "M4"):
            self.handlers[word] = self._laser_on
        # Modal words with nothing to track: a handler so that the line's other words still run.
        for word in (
            "G17",
            "G18",
            "G19",
            "G40",
            "G49",
            "G53",
            "G54",
            "G61",
            "G94",
            "G91.1",
            "M7",
            "M8",
            "M9",
        ):
            self.handlers[word] = self._nothing
        self.handlers.update(
            {
                "M5": self._laser_off,
                "M2": self._program_end,
                "G4": self._grbl_dwell,
                "G92.1": self._clear_shift,
                "S": self._value_line,
                "F": self._value_line,
            }
        )

    # -- hooks the interpreter calls ------------------------------------------------------------

    def _system(self, ucmd: bytes, ln: int) -> None:
        """A `$` line (GRBL system command): recorded with its text, never interpreted."""
        stat = self.system
        stat[0] += 1
        if stat[0] <= MAX_PER_CODE:
            stat[1].append((ln, ucmd[:24].decode("utf-8", "replace")))

    def _power(self, s: float | None, ln: int) -> None:
        if s is None:
            return
        self.power_lines += 1
        self.power = s
        t = self.ts
        if s > t.hi:
            t.push_hi(s, ln)
        if s < t.lo:
            t.push_lo(s, ln)
        self.burning = self.laser_on and s > 0.0 and self.mode in CUT

    def _burn(self, x0: float | None, y0: float | None, x1: float | None, y1: float | None) -> None:
        # Inline comparisons: this runs once per burning move, most lines of a raster file.
        self.burn_moves += 1
        for x in (x0, x1):
            if x is not None:
                if x < self.blx:
                    self.blx = x
                if x > self.bhx:
                    self.bhx = x
        for y in (y0, y1):
            if y is not None:
                if y < self.bly:
                    self.bly = y
                if y > self.bhy:
                    self.bhy = y

    def _burn_point(self, x: float | None, y: float | None) -> None:
        self._burn(x, y, None, None)
        self.burn_moves -= 1

    def _multi(self, words: list[str], p: Params, ln: int) -> None:
        """A line with several command words, or a modal word with axis words: GRBL's order."""
        for w in words:
            count(self.words, w, ln)
        if "S" in p:
            self._power(p["S"], ln)
        motion: str | None = None
        axis_command = machine = False
        for w in sorted(words, key=lambda w: RANK.get(w, 12)):
            if w in MOTION:
                motion = w
            elif w == "G53":
                machine = True
            else:
                axis_command = axis_command or w in AXIS_COMMANDS
                handler = self.handlers.get(w)
                if handler is not None:
                    handler(w, p, ln)
        if axis_command:
            return
        if motion is None and any(a in p for a in "XYZ"):
            motion = self.mode
        if motion is None:
            f = p.get("F")
            if f is not None and f > 0.0:
                self.feed = f * self.unit / 60.0
            return
        if machine:  # G53: this line only, absolute machine coordinates (no G92 shift)
            saved = self.rel, self.ox, self.oy, self.oz
            self.rel, self.ox, self.oy, self.oz = False, 0.0, 0.0, 0.0
            self.handlers[motion](motion, p, ln)
            self.rel, self.ox, self.oy, self.oz = saved
        else:
            self.handlers[motion](motion, p, ln)

    # -- handlers -------------------------------------------------------------------------------

    def _g1(self, word: str, p: Params, ln: int) -> None:
        self.burning = self.laser_on and self.power > 0.0 and word != "G0"
        super()._g1(word, p, ln)

    def _arc(self, word: str, p: Params, ln: int) -> None:
        self.burning = self.laser_on and self.power > 0.0
        super()._arc(word, p, ln)

    def _nothing(self, word: str, p: Params, ln: int) -> None:
        pass

    def _laser_on(self, word: str, p: Params, ln: int) -> None:
        self.laser_on = True
        self.laser_seen += 1
        self.burning = self.power > 0.0 and self.mode in CUT

    def _laser_off(self, word: str, p: Params, ln: int) -> None:
        self.laser_on = self.burning = False

    def _program_end(self, word: str, p: Params, ln: int) -> None:
        # GRBL M2/M30 (gcode.c, program flow): laser and coolant off, G1, G90, G54.
        self.laser_on = self.burning = False
        self.mode = "G1"
        self.rel = False

    def _grbl_dwell(self, word: str, p: Params, ln: int) -> None:
        if self.laser_seen and p.get("P") is not None:
            self.est.wait(p["P"] or 0.0)  # GRBL: P in seconds (gcode.c, NON_MODAL_DWELL)
        else:
            self._dwell(word, p, ln)

    def _clear_shift(self, word: str, p: Params, ln: int) -> None:
        self.ox = self.oy = self.oz = 0.0  # G92.1: GRBL clears the G92 offset

    def _value_line(self, word: str, p: Params, ln: int) -> None:
        """A line that opens with S or F (`S500`, `F3000`): GRBL sets power or feed, no motion."""
        f = p.get("F")
        if f is not None and f > 0.0:
            self.feed = f * self.unit / 60.0
        if any(a in p for a in "XYZ") and self.mode is not None:
            self.handlers[self.mode](self.mode, p, ln)

    # -- result ---------------------------------------------------------------------------------

    def file_kind(self) -> str:
        """ "laser" or "printer", from what the file does, never from its comments or name.

        Laser evidence: moves that burn, M3/M4, lines with laser power S, `$` lines. Printer
        evidence: lines with an E word, heater targets (M104/M109/M140/M190), M82/M83. Each line
        of evidence counts one; the side with more wins, so a LightBurn file with a stray M104
        stays a laser file (and that line is refused), and a slicer file with one M3 stays a
        printer file. A tie, including a file with no evidence either way (plain moves, a
        plotter drawing), is a printer file: the API's default kind.
        """
        words = self.words
        laser = self.burn_moves + self.laser_seen + self.power_lines + self.system[0]
        printer = self.e_words[0]
        for stats in (self.hot_targets, self.bed_targets):
            printer += sum(n for n, _ in stats.values())
        for w in ("M82", "M83"):
            printer += words[w][0] if w in words else 0
        return "laser" if laser > printer else "printer"

    def burn_box(self) -> tuple[float, float, float, float] | None:
        if not (math.isfinite(self.bhx) or math.isfinite(self.bhy)):
            return None
        return self.blx, self.bly, self.bhx, self.bhy
