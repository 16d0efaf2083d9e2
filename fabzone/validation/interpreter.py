"""The G-code interpreter state and the careful path: every command but plain G0/G1, arcs, homing."""

from __future__ import annotations

import math
from collections.abc import Callable

from fabzone.validation.estimate import ALLOWANCE_S, Estimator, MotionConfig
from fabzone.validation.geometry import AxisTrack, arc_center_from_radius, arc_extremes, arc_sweep
from fabzone.validation.model import MAX_PER_CODE, ReasonLog

_INF = math.inf
# Deleting these from a command leaves one letter per word when every value is a plain number;
# anything else (`X1E5`, `XNAN`, `G1X10`) takes the careful path.
NUMERIC = b"0123456789.-+ \t"
# Marlin starts with feedrate_mm_s = 1500 mm/min (motion.cpp).
_START_FEED = 25.0

Params = dict[str, float | None]
Stat = tuple[int, list[int]]


def tally(stat: list, line: int) -> None:
    """One more line in a `[count, first lines]` stat."""
    stat[0] += 1
    if stat[0] <= MAX_PER_CODE:
        stat[1].append(line)


def count(stats: dict, key: object, line: int) -> None:
    """Count `key` in `stats` (key -> [count, first lines])."""
    entry = stats.get(key)
    if entry is None:
        stats[key] = [1, [line]]
    else:
        entry[0] += 1
        if entry[0] <= MAX_PER_CODE:
            entry[1].append(line)


class Interpreter:
    """The interpreter state. Positions are machine coordinates in mm (None: not known yet)."""

    def __init__(self, configs: list[MotionConfig]) -> None:
        self.log = ReasonLog()
        self.unit = 1.0  # G20 -> 25.4
        self.rel = False  # G91 (X, Y, Z)
        self.rel_e = False  # M83 / G91
        self.px: float | None = None
        self.py: float | None = None
        self.pz: float | None = None
        self.pe = 0.0  # logical E
        self.ox = self.oy = self.oz = 0.0  # G92 shift: machine = logical + shift
        self.feed = _START_FEED
        # Set by G28/G92: known positions not yet recorded; the next move's endpoint includes them
        # even on axes it does not name (the head really is there).
        self.unrecorded = False
        self.mode: str | None = None  # last G0/G1/G2/G3, for modal lines
        self.tool = 0
        self.tx, self.ty, self.tz = AxisTrack(), AxisTrack(), AxisTrack()
        # Box of extruding moves: low x/y/z, high x/y/z (inf/-inf: none yet).
        self.elx = self.ely = self.elz = _INF
        self.ehx = self.ehy = self.ehz = -_INF
        self.extruding = False
        self.filament = 0.0
        self.hot_last: dict[int, float] = {}
        self.bed_last = 0.0
        self.hot_targets: dict = {}
        self.bed_targets: dict = {}
        self.lengths: dict = {}
        # Cleaned length (GRBL: no spaces, no comments) of commands longer than LONG_COMMAND.
        self.clean_lengths: dict = {}
        self.words: dict = {}
        self.e_words: list = [0, []]  # lines with an E word: count, first lines
        self.z_words: list = [0, []]
        self.paren_lines: list = [0, []]  # lines with a ( ) comment after a command
        self.burning = False  # laser.py: a laser is on with S > 0 in G1/G2/G3
        self.commands = 0
        self.est = Estimator(configs)
        self.handlers: dict[str, Callable[[str, Params, int], None]] = {
            "G0": self._g1,
            "G1": self._g1,
            "G2": self._arc,
            "G3": self._arc,
            "G4": self._dwell,
            "G20": self._units,
            "G21": self._units,
            "G28": self._home,
            "G29": self._settle,
            "G80": self._settle,
            "G90": self._absolute,
            "G91": self._relative,
            "G92": self._set_position,
            "M82": self._e_absolute,
            "M83": self._e_relative,
            "M104": self._hotend,
            "M109": self._hotend,
            "M140": self._bed,
            "M190": self._bed,
            "M400": self._settle,
        }

    # -- the hot loop -------------------------------------------------------------------------

    def _move(
        self,
        x: float | None,
        y: float | None,
        z: float | None,
        e: float | None,
        f: float | None,
        ln: int,
        length: float | None = None,
    ) -> None:
        """A linear move (or an arc's endpoint, with its `length`): values in file units.

        The three axes below are written out rather than looped over on purpose: this runs once per
        move of a 100 MB file, and a loop over the axes would add tuple work on the hottest path.
        """
        u = self.unit
        if self.unrecorded:
            self.unrecorded = False
            for v, t in ((self.px, self.tx), (self.py, self.ty), (self.pz, self.tz)):
                if v is not None:
                    if v > t.hi:
                        t.push_hi(v, ln)
                    if v < t.lo:
                        t.push_lo(v, ln)
        if f is not None and f > 0.0:
            self.feed = f * u / 60.0  # F is per minute (mm, or inches under G20)
        px, py, pz = self.px, self.py, self.pz
        nx, ny, nz = px, py, pz
        if x is not None:
            if not self.rel:
                nx = x * u + self.ox
            elif px is not None:
                nx = px + x * u
            if nx is not None:
                t = self.tx
                if nx > t.hi:
                    t.push_hi(nx, ln)
                if nx < t.lo:
                    t.push_lo(nx, ln)
        if y is not None:
            if not self.rel:
                ny = y * u + self.oy
            elif py is not None:
                ny = py + y * u
            if ny is not None:
                t = self.ty
                if ny > t.hi:
                    t.push_hi(ny, ln)
                if ny < t.lo:
                    t.push_lo(ny, ln)
        if z is not None:
            if not self.rel:
                nz = z * u + self.oz
            elif pz is not None:
                nz = pz + z * u
            if nz is not None:
                t = self.tz
                if nz > t.hi:
                    t.push_hi(nz, ln)
                if nz < t.lo:
                    t.push_lo(nz, ln)
        de = 0.0
        if e is not None:
            e *= u
            if self.rel_e:
                de = e
                self.pe += e
            else:
                de = e - self.pe
                self.pe = e
            self.filament += de
        if de > 0.0:
            if not self.extruding:
                self._grow(px, py, pz, ln)
            self._grow(nx, ny, nz, ln)
            self.extruding = True
        else:
            self.extruding = False
        dx = nx - px if nx is not None and px is not None else 0.0
        dy = ny - py if ny is not None and py is not None else 0.0
        dz = nz - pz if nz is not None and pz is not None else 0.0
        d = math.sqrt(dx * dx + dy * dy + dz * dz) if length is None else math.hypot(length, dz)
        if d > 0.0:
            self.est.move(d, self.feed, dx, dy, dz, abs(de), True)
        elif de:
            self.est.move(abs(de), self.feed, 0.0, 0.0, 0.0, abs(de), False)
        if self.burning:
            self._burn(px, py, nx, ny)
        self.px, self.py, self.pz = nx, ny, nz

    def _grow(self, x: float | None, y: float | None, z: float | None, ln: int) -> None:
        if x is not None:
            self.elx, self.ehx = min(self.elx, x), max(self.ehx, x)
        if y is not None:
            self.ely, self.ehy = min(self.ely, y), max(self.ehy, y)
        if z is not None:
            self.elz, self.ehz = min(self.elz, z), max(self.ehz, z)

    # -- everything but plain G0/G1 -----------------------------------------------------------

    # Laser hooks (laser.py): a move or an arc's extreme point while the laser burns.
    def _burn(self, x0: float | None, y0: float | None, x1: float | None, y1: float | None) -> None:
        raise NotImplementedError

    def _burn_point(self, x: float | None, y: float | None) -> None:
        raise NotImplementedError

    # -- handlers -----------------------------------------------------------------------------

    def _g1(self, word: str, p: Params, ln: int) -> None:
        self.mode = word
        self._move(p.get("X"), p.get("Y"), p.get("Z"), p.get("E"), p.get("F"), ln)

    def _arc(self, word: str, p: Params, ln: int) -> None:
        """G2/G3 in the XY plane, by the real extent of the arc (Marlin G2_G3.cpp)."""
        self.mode = word
        clockwise = word == "G2"
        x0, y0, u = self.px, self.py, self.unit
        x, y = p.get("X"), p.get("Y")
        if x0 is None or y0 is None:
            self._move(x, y, p.get("Z"), p.get("E"), p.get("F"), ln)
            return
        x1 = x0 if x is None else (x0 + x * u if self.rel else x * u + self.ox)
        y1 = y0 if y is None else (y0 + y * u if self.rel else y * u + self.oy)
        r = p.get("R")
        if r is not None:
            center = arc_center_from_radius(x0, y0, x1, y1, r * u, clockwise)
        elif p.get("I") is not None or p.get("J") is not None:
            center = (x0 + (p.get("I") or 0.0) * u, y0 + (p.get("J") or 0.0) * u)
        else:
            center = None
        if center is None:  # Marlin refuses the arc: no motion
            return
        cx, cy = center
        sweep = arc_sweep(x0, y0, x1, y1, cx, cy, clockwise)
        radius = math.hypot(x0 - cx, y0 - cy)
        self._move(x, y, p.get("Z"), p.get("E"), p.get("F"), ln, length=abs(sweep) * radius)
        self._arc_extent(x0, y0, cx, cy, sweep, ln)

    def _arc_extent(self, x0: float, y0: float, cx: float, cy: float, sweep: float, ln: int) -> None:
        for ax, ay in arc_extremes(x0, y0, cx, cy, sweep):
            for v, t in ((ax, self.tx), (ay, self.ty)):
                if v > t.hi:
                    t.push_hi(v, ln)
                if v < t.lo:
                    t.push_lo(v, ln)
            if self.extruding:
                self._grow(ax, ay, None, ln)
            if self.burning:
                self._burn_point(ax, ay)

    def _dwell(self, word: str, p: Params, ln: int) -> None:
        ms, s = p.get("P"), p.get("S")
        self.est.wait((ms or 0.0) / 1000.0 + (s or 0.0))

    def _settle(self, word: str, p: Params, ln: int) -> None:
        self.est.wait(ALLOWANCE_S.get(word, 0.0))

    def _units(self, word: str, p: Params, ln: int) -> None:
        self.unit = 25.4 if word == "G20" else 1.0

    def _absolute(self, word: str, p: Params, ln: int) -> None:
        # Marlin 2.1 G90/G91 switch E as well (gcode.h set_relative_mode); M82/M83 only E.
        self.rel = self.rel_e = False

    def _relative(self, word: str, p: Params, ln: int) -> None:
        self.rel = self.rel_e = True

    def _e_absolute(self, word: str, p: Params, ln: int) -> None:
        self.rel_e = False

    def _e_relative(self, word: str, p: Params, ln: int) -> None:
        self.rel_e = True

    def _home(self, word: str, p: Params, ln: int) -> None:
        """G28: homed axes are at their home, taken as 0 (min endstop; Marlin set_axis_is_at_home
        also clears the G92 shift of the axis). No axis letter (or only Prusa's `W`) homes all."""
        axes = [a for a in "XYZ" if a in p] or ["X", "Y", "Z"]
        for a in axes:
            setattr(self, "p" + a.lower(), 0.0)
            setattr(self, "o" + a.lower(), 0.0)
        self.extruding = False
        self.unrecorded = True
        self.est.wait(ALLOWANCE_S["G28"])

    def _set_position(self, word: str, p: Params, ln: int) -> None:
        """G92: the current machine position is named anew; no parameters changes nothing
        (Marlin G92.cpp). On an axis not known yet, the value is taken as the machine position."""
        u = self.unit
        for a in "XYZ":
            v = p.get(a)
            if v is None:
                continue
            pos = getattr(self, "p" + a.lower())
            if pos is None:
                setattr(self, "p" + a.lower(), v * u)
                setattr(self, "o" + a.lower(), 0.0)
            else:
                setattr(self, "o" + a.lower(), pos - v * u)
            self.unrecorded = True
        if p.get("E") is not None:
            self.pe = (p["E"] or 0.0) * u

    def _hotend(self, word: str, p: Params, ln: int) -> None:
        t = p.get("T")
        tool = int(t) if t is not None else self.tool
        target = self._targets(p, ln, self.hot_targets)
        if target is not None:
            self.hot_last[tool] = target
            if word == "M109" and target > 0:
                self.est.wait(ALLOWANCE_S["M109"])

    def _bed(self, word: str, p: Params, ln: int) -> None:
        target = self._targets(p, ln, self.bed_targets)
        if target is not None:
            self.bed_last = target
            if word == "M190" and target > 0:
                self.est.wait(ALLOWANCE_S["M190"])

    @staticmethod
    def _targets(p: Params, ln: int, stats: dict) -> float | None:
        """Record S and R targets; returns the one the heater ends up with (S wins, as in Marlin)."""
        s, r = p.get("S"), p.get("R")
        for v in (s, r):
            if v is not None:
                count(stats, v, ln)
        return s if s is not None else r

    # -- result -------------------------------------------------------------------------------
