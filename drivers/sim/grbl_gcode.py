"""The G-code subset GRBL 1.1 accepts, parsed and checked with gcode.c's error codes; pure, no I/O."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from drivers.sim import grbl_settings as codes

_WORD = re.compile(r"([A-Z])([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
# gcode.c's modal groups (G and M words); a second word from the same group is error:21.
_G_GROUP = {
    0: 1, 1: 1, 2: 1, 3: 1, 38.2: 1, 38.3: 1, 38.4: 1, 38.5: 1, 80: 1,
    4: 0, 10: 0, 28: 0, 28.1: 0, 30: 0, 30.1: 0, 53: 0, 92: 0, 92.1: 0,
    17: 2, 18: 2, 19: 2, 90: 3, 91: 3, 91.1: 4, 93: 5, 94: 5, 20: 6, 21: 6,
    40: 7, 43.1: 8, 49: 8, 54: 12, 55: 12, 56: 12, 57: 12, 58: 12, 59: 12, 61: 13,
}  # fmt: skip
# M7 is a compile-time option (ENABLE_M7): `parse(..., m7=False)` answers it error:20, as a build
# without it does (gc_execute_line has no case for it there); the profile's `laser.enable_m7` says which.
_M_GROUP = {0: 4, 1: 4, 2: 4, 30: 4, 3: 7, 4: 7, 5: 7, 7: 8, 8: 8, 9: 8}
_VALUE_LETTERS = frozenset("FIJKLNPRSTXYZ")
_AXES = "XYZ"


@dataclass
class Modal:
    """gc_state: the modal state `$G` prints."""

    motion: float = 0
    coord: int = 0  # 0..5 = G54..G59
    plane: int = 17
    inches: bool = False
    relative: bool = False
    inverse_time: bool = False
    spindle: int = 5
    mist: bool = False
    flood: bool = False
    tool: int = 0
    feed: float = 0.0
    s: float = 0.0
    g92: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wcs: list[tuple[float, float, float]] = field(default_factory=lambda: [(0.0, 0.0, 0.0)] * 6)

    def clone(self) -> Modal:
        # Faster than dataclasses.replace() on the hot path; the lists are replaced, never mutated.
        new = object.__new__(Modal)
        new.__dict__.update(self.__dict__)
        return new

    def wco(self) -> tuple[float, float, float]:
        c = self.wcs[self.coord]
        return (c[0] + self.g92[0], c[1] + self.g92[1], c[2] + self.g92[2])

    def gc_line(self) -> str:
        names: dict[float, str] = {0: "G0", 1: "G1", 2: "G2", 3: "G3", 80: "G80"}
        motion = names.get(self.motion, f"G{self.motion}")
        coolant = (" M7" if self.mist else "") + (" M8" if self.flood else "")
        return (
            f"[GC:{motion} G{54 + self.coord} G{self.plane} {'G20' if self.inches else 'G21'} "
            f"{'G91' if self.relative else 'G90'} {'G93' if self.inverse_time else 'G94'} M{self.spindle}"
            f"{coolant or ' M9'} T{self.tool} F{self.feed:.0f} S{self.s:.0f}]"
        )


@dataclass
class Action:
    """What one checked block asks of the machine; `modal` is the state after it."""

    modal: Modal
    targets: list[tuple[float, float, float]] = field(default_factory=list)  # machine coordinates
    length: float = 0.0  # path length (mm), arcs by their arc length
    rapid: bool = False
    feed: float = 0.0  # mm/min (0 for rapids)
    dwell_s: float = 0.0
    sync: bool = False  # spindle/coolant change, dwell, program end: the planner empties first
    program: int | None = None  # 0/1 pause, 2/30 end
    new_wcs: bool = False


class GcodeError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def parse(text: str, modal: Modal, pos: tuple[float, float, float], s_max: float, m7: bool) -> Action:
    """gc_execute_line() steps 1–3: check one stripped, upper-case block against the modal state."""
    pairs = _WORD.findall(text)
    if pairs and sum(len(a) + len(b) for a, b in pairs) == len(text):
        act = _simple(pairs, modal, pos, s_max)
        if act is not None:
            return act
    return _parse(text, modal, pos, s_max, m7)


def _simple(
    pairs: list[tuple[str, str]], modal: Modal, pos: tuple[float, float, float], s_max: float
) -> Action | None:
    """The common raster/vector line (`G1X10.4S200`, absolute mm): the same checks, fewer steps.

    None sends the line to the general path, which also finds every error.
    """
    vals: dict[str, float] = {}
    for letter, num in pairs:
        if letter in vals or letter not in "GXYZFS":
            return None
        vals[letter] = float(num)
    mode = modal.motion
    if "G" in vals:
        mode = vals["G"]
        if mode != 0 and mode != 1:
            return None
        mode = int(mode)
    if mode not in (0, 1) or modal.inches or modal.relative or modal.inverse_time:
        return None
    feed = vals.get("F", modal.feed)
    s = vals.get("S", modal.s)
    if feed < 0 or s < 0:
        return None
    s = min(s, s_max)
    if mode == modal.motion and feed == modal.feed and s == modal.s:
        new = modal
    else:
        new = modal.clone()
        new.motion, new.feed, new.s = mode, feed, s
    if "X" not in vals and "Y" not in vals and "Z" not in vals:
        return Action(new)
    if mode == 1 and feed <= 0:
        return None
    wco = modal.wco()
    target = (
        vals["X"] + wco[0] if "X" in vals else pos[0],
        vals["Y"] + wco[1] if "Y" in vals else pos[1],
        vals["Z"] + wco[2] if "Z" in vals else pos[2],
    )
    length = math.dist(pos, target)
    return Action(new, [target], length, rapid=mode == 0, feed=0.0 if mode == 0 else feed)


def _parse(text: str, modal: Modal, pos: tuple[float, float, float], s_max: float, m7: bool) -> Action:
    words: dict[str, float] = {}
    gs: list[float] = []
    ms: list[int] = []
    groups: set[tuple[str, int]] = set()
    i = 0
    n = len(text)
    while i < n:
        letter = text[i]
        if not ("A" <= letter <= "Z"):
            raise GcodeError(codes.EXPECTED_COMMAND_LETTER)
        m = _NUMBER.match(text, i + 1)
        if m is None:
            raise GcodeError(codes.BAD_NUMBER_FORMAT)
        value = float(m.group())
        i = m.end()
        if letter == "G":
            g = round(value, 1) if value != int(value) else int(value)
            group = _G_GROUP.get(g)
            if group is None:
                raise GcodeError(codes.UNSUPPORTED_COMMAND)
            if ("G", group) in groups:
                raise GcodeError(codes.MODAL_GROUP_VIOLATION)
            groups.add(("G", group))
            gs.append(g)
        elif letter == "M":
            if value != int(value) or int(value) not in _M_GROUP or (int(value) == 7 and not m7):
                raise GcodeError(codes.UNSUPPORTED_COMMAND)
            group = _M_GROUP[int(value)]
            if ("M", group) in groups:
                raise GcodeError(codes.MODAL_GROUP_VIOLATION)
            groups.add(("M", group))
            ms.append(int(value))
        elif letter in _VALUE_LETTERS:
            if letter in words:
                raise GcodeError(codes.WORD_REPEATED)
            if value < 0 and letter in "FNPST":
                raise GcodeError(codes.NEGATIVE_VALUE)
            if letter in "NLT" and value != int(value):
                raise GcodeError(codes.COMMAND_VALUE_NOT_INTEGER)
            if letter == "N" and value > 9999999:
                raise GcodeError(codes.INVALID_LINE_NUMBER)
            words[letter] = value
        else:
            raise GcodeError(codes.UNSUPPORTED_COMMAND)
    return _execute(words, gs, ms, modal, pos, s_max)


def _execute(
    words: dict[str, float],
    gs: list[float],
    ms: list[int],
    old: Modal,
    pos: tuple[float, float, float],
    s_max: float,
) -> Action:
    modal = old.clone()
    act = Action(modal)
    used = {"N", "F", "S", "T"}
    # Order of execution, gcode.c step 3: feed mode, feed, spindle speed, tool, spindle, coolant, dwell,
    # plane, units, distance, coordinate system, non-modal, motion, program flow.
    for g in gs:
        if g in (93, 94):
            modal.inverse_time = g == 93
        elif g in (17, 18, 19):
            modal.plane = int(g)
        elif g in (20, 21):
            modal.inches = g == 20
        elif g in (90, 91):
            modal.relative = g == 91
        elif 54 <= g <= 59:
            modal.coord = int(g) - 54
            act.new_wcs = act.new_wcs or modal.coord != old.coord
    scale = 25.4 if modal.inches else 1.0
    if "F" in words:
        modal.feed = words["F"] * scale
    elif modal.inverse_time and any(g in (1, 2, 3) for g in gs):
        raise GcodeError(codes.UNDEFINED_FEED_RATE)
    if "S" in words:
        modal.s = min(words["S"], s_max)  # spindle_compute_pwm_value() clamps to $30
    if "T" in words:
        if words["T"] > 255:
            raise GcodeError(38)  # STATUS_GCODE_MAX_VALUE_EXCEEDED
        modal.tool = int(words["T"])
    for m in ms:
        if m in (3, 4, 5):
            act.sync = act.sync or m != old.spindle  # spindle_sync(): even in laser mode
            modal.spindle = m
        elif m == 7:
            act.sync, modal.mist = True, True
        elif m == 8:
            act.sync, modal.flood = True, True
        elif m == 9:
            act.sync, modal.mist, modal.flood = True, False, False
        else:
            act.program = m
    non_modal = [g for g in gs if _G_GROUP[g] == 0]
    motion_words = [g for g in gs if _G_GROUP[g] == 1]
    axis = {a: words[a] * scale for a in _AXES if a in words}
    if non_modal and non_modal[0] in (10, 28, 30, 92) and axis and motion_words:
        raise GcodeError(codes.AXIS_COMMAND_CONFLICT)
    machine_coords = 53 in non_modal
    wco = modal.wco()

    def target_of(src: tuple[float, float, float]) -> tuple[float, float, float]:
        out = list(src)
        for k, a in enumerate(_AXES):
            if a in axis:
                if modal.relative:
                    out[k] = src[k] + axis[a]
                elif machine_coords:
                    out[k] = axis[a]
                else:
                    out[k] = axis[a] + wco[k]
        return (out[0], out[1], out[2])

    for g in non_modal:
        if g == 4:
            if "P" not in words:
                raise GcodeError(codes.VALUE_WORD_MISSING)
            used.add("P")
            act.dwell_s, act.sync = words["P"], True
        elif g == 10:
            used |= {"L", "P"}
            if "L" not in words or "P" not in words:
                raise GcodeError(codes.VALUE_WORD_MISSING)
            p, lv = int(words["P"]), int(words["L"])
            if p > 6 or lv not in (2, 20):
                raise GcodeError(29 if p > 6 else codes.UNSUPPORTED_COMMAND)
            idx = modal.coord if p == 0 else p - 1
            cur = list(modal.wcs[idx])
            for k, a in enumerate(_AXES):
                if a in axis:
                    cur[k] = axis[a] if lv == 2 else pos[k] - modal.g92[k] - axis[a]
            modal.wcs = list(modal.wcs)
            modal.wcs[idx] = (cur[0], cur[1], cur[2])
            act.new_wcs, axis = True, {}
        elif g == 92:
            if not axis:
                raise GcodeError(codes.NO_AXIS_WORDS)
            c = modal.wcs[modal.coord]
            off = list(modal.g92)
            for k, a in enumerate(_AXES):
                if a in axis:
                    off[k] = pos[k] - c[k] - axis[a]
            modal.g92 = (off[0], off[1], off[2])
            act.new_wcs, axis = True, {}
        elif g == 92.1:
            modal.g92, act.new_wcs = (0.0, 0.0, 0.0), True
        elif g in (28, 30):
            via = target_of(pos) if axis else pos
            act.targets = [via, (0.0, 0.0, 0.0)] if axis else [(0.0, 0.0, 0.0)]
            act.rapid, axis = True, {}
        elif g in (28.1, 30.1):
            pass
    if motion_words:
        modal.motion = motion_words[0]
    if axis:
        mode = modal.motion
        if mode == 80:
            raise GcodeError(31)  # STATUS_GCODE_AXIS_WORDS_EXIST
        if mode not in (0, 1, 2, 3):
            raise GcodeError(codes.UNSUPPORTED_COMMAND)  # probing is not simulated
        target = target_of(pos)
        if mode != 0 and modal.feed <= 0:
            raise GcodeError(codes.UNDEFINED_FEED_RATE)
        act.rapid = mode == 0
        act.feed = 0.0 if mode == 0 else modal.feed
        act.targets = [target]
        if mode in (2, 3):
            used |= {"I", "J", "K", "R"}
            act.length = _arc_length(words, scale, pos, target, clockwise=mode == 2)
        else:
            act.length = math.dist(pos, target)
    elif motion_words and motion_words[0] in (2, 3):
        raise GcodeError(codes.NO_AXIS_WORDS)
    elif act.targets:
        prev = pos
        for t in act.targets:
            act.length += math.dist(prev, t)
            prev = t
    unused = set(words) - used - set(_AXES)
    if unused:
        raise GcodeError(codes.UNUSED_WORDS)
    if act.program in (2, 30):
        # Program end resets these modes (gcode.c, "[21. Program flow ]").
        modal.motion, modal.plane, modal.relative, modal.inverse_time = 1, 17, False, False
        modal.coord, modal.spindle, modal.mist, modal.flood = 0, 5, False, False
        act.sync = True
    elif act.program is not None:
        act.sync = True
    return act


def _arc_length(
    words: dict[str, float],
    scale: float,
    start: tuple[float, float, float],
    end: tuple[float, float, float],
    *,
    clockwise: bool,
) -> float:
    """Arc length in the XY plane with gcode.c's radius checks (errors 33, 34, 35)."""
    x, y = end[0] - start[0], end[1] - start[1]
    if "R" in words:
        r = words["R"] * scale
        if x == 0 and y == 0:
            raise GcodeError(codes.INVALID_TARGET)
        d = math.hypot(x, y)
        if abs(r) < d / 2 - 1e-9:
            raise GcodeError(codes.ARC_RADIUS_ERROR)
        half = math.asin(min(1.0, d / (2 * abs(r))))
        angle = 2 * half if r > 0 else 2 * math.pi - 2 * half
        return abs(r) * angle
    if "I" not in words and "J" not in words:
        raise GcodeError(codes.NO_OFFSETS_IN_PLANE)
    i, j = words.get("I", 0.0) * scale, words.get("J", 0.0) * scale
    r = math.hypot(i, j)
    r_end = math.hypot(x - i, y - j)
    delta = abs(r_end - r)
    if delta > 0.005 and (delta > 0.5 or delta > 0.001 * r):
        raise GcodeError(codes.INVALID_TARGET)
    a0 = math.atan2(-j, -i)
    a1 = math.atan2(y - j, x - i)
    sweep = (a0 - a1) if clockwise else (a1 - a0)
    if sweep <= 1e-9:
        sweep += 2 * math.pi
    return r * sweep + abs(end[2] - start[2])
