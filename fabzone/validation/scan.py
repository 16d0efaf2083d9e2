"""One streaming pass over a G-code file: a small interpreter that collects machine-independent Facts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fabzone.validation.estimate import MotionConfig
from fabzone.validation.geometry import AxisTrack
from fabzone.validation.grbl import LONG_COMMAND
from fabzone.validation.interpreter import NUMERIC, Stat, count
from fabzone.validation.lines import LineInterpreter
from fabzone.validation.model import MAX_PER_CODE, Box, Reason
from fabzone.validation.reader import Reader

if TYPE_CHECKING:
    from drivers.profiles import Profile


@dataclass(slots=True)
class Facts:
    """What one pass over a file found, independent of any machine; `check` judges it per profile."""

    kind: str
    sha256: str
    file_bytes: int
    file_lines: int
    lines: int  # commands (lines that send something to the firmware)
    ends_with_newline: bool
    heaters_off_at_end: bool
    # File-level problems: every profile gets them.
    file_reasons: list[Reason]
    # Normalised command length (bytes) -> (count, first lines).
    lengths: dict[int, Stat] = field(default_factory=dict)
    # Command word (`M104`, `G1`) -> (count, first lines).
    words: dict[str, Stat] = field(default_factory=dict)
    # Heater target (°C) -> (count, first lines), S and R of M104/M109 and M140/M190.
    hotend_targets: dict[float, Stat] = field(default_factory=dict)
    bed_targets: dict[float, Stat] = field(default_factory=dict)
    axes: dict[str, AxisTrack] = field(default_factory=dict)
    bbox: Box | None = None
    extrude_bbox: Box | None = None
    max_hotend_c: float | None = None
    max_bed_c: float | None = None
    filament_mm: float = 0.0
    estimates: dict[MotionConfig, float] = field(default_factory=dict)
    # Cleaned length (GRBL counts no spaces, no comments) of commands longer than LONG_COMMAND.
    clean_lengths: dict[int, Stat] = field(default_factory=dict)
    e_words: Stat = (0, [])  # lines with an E word
    z_words: Stat = (0, [])  # lines with a Z word
    paren_lines: Stat = (0, [])  # lines with a ( ) comment: GRBL drops it, Marlin reads through it
    system: tuple[int, list[tuple[int, str]]] = (0, [])  # `$` lines: count, first (line, text)
    power: AxisTrack = field(default_factory=AxisTrack)  # every laser power S
    burn_bbox: Box | None = None

    @property
    def readable(self) -> bool:
        """False when the file is not G-code at all (empty, binary, …): no analysis is possible."""
        return not any(r.code in _FATAL for r in self.file_reasons)


_FATAL = frozenset(
    {"gcode.empty", "gcode.no_commands", "gcode.binary", "gcode.too_large", "gcode.line_endless"}
)


def _box(x: AxisTrack, y: AxisTrack, z: AxisTrack) -> Box | None:
    def lo(t: AxisTrack) -> float | None:
        return round(t.lo, 4) if t.reached else None

    def hi(t: AxisTrack) -> float | None:
        return round(t.hi, 4) if t.reached else None

    if not (x.reached or y.reached or z.reached):
        return None
    return Box(lo(x), lo(y), lo(z), hi(x), hi(y), hi(z))


class _Scanner(LineInterpreter):
    """The interpreter plus the hot loop and the summary into Facts."""

    def run(self, reader: Reader) -> None:
        """The loop over every line. Plain `G0`/`G1` in absolute XYZ millimetres with a known
        position (nearly every line of a slicer file) are interpreted inline on local variables;
        anything else goes through `_other`, with the state synced to `self` around the call."""
        lengths = self.lengths
        other = self._other
        est_move = self.est.move
        numeric = NUMERIC
        sqrt = math.sqrt
        tx, ty, tz = self.tx, self.ty, self.tz
        g0_lines: list[int] = []
        g1_lines: list[int] = []
        e_lines: list[int] = []
        z_lines: list[int] = []
        n_g0 = n_g1 = n_e = n_z = 0
        last = b"G1"  # the motion word of the last fast line (the modal mode for the careful path)
        commands = 0
        # Local copies of the hot state (written back before, read again after, `_other`).
        px, py, pz, pe, feed, filament = self.px or 0.0, self.py or 0.0, self.pz or 0.0, 0.0, 0.0, 0.0
        extruding = rel_e = fast = False
        elx = ely = elz = ehx = ehy = ehz = 0.0
        hx = hy = hz = lx = ly = lz = 0.0
        ox = oy = oz = 0.0
        synced = True
        for start, block in reader.blocks():
            ln = start
            for raw in block:
                ln += 1
                cut = raw.find(b";")
                if cut >= 0:
                    raw = raw[:cut]
                cmd = raw.strip()
                if not cmd:
                    continue
                commands += 1
                ucmd = cmd.upper()
                parts = ucmd.split()
                word = parts[0]
                if (
                    fast
                    and (word == b"G1" or word == b"G0")
                    and len(ucmd.translate(None, numeric)) == len(parts)
                ):
                    x = y = z = e = f = None
                    try:
                        for tok in parts[1:]:
                            c = tok[0]
                            if c == 88:
                                x = float(tok[1:])
                            elif c == 89:
                                y = float(tok[1:])
                            elif c == 69:
                                e = float(tok[1:])
                            elif c == 90:
                                z = float(tok[1:])
                            elif c == 70:
                                f = float(tok[1:])
                            elif c == 83:  # S: laser power, the careful path records it
                                raise ValueError
                    except ValueError:  # a letter without a value (`G1 X`): the careful path
                        x = y = z = e = f = None
                        word = b""
                    if word:
                        synced = False
                        last = word
                        n = len(cmd)
                        if n > LONG_COMMAND:
                            count(self.clean_lengths, len(b"".join(parts)), ln)
                        entry = lengths.get(n)
                        if entry is None:
                            lengths[n] = [1, [ln]]
                        else:
                            entry[0] += 1
                            if entry[0] <= MAX_PER_CODE:
                                entry[1].append(ln)
                        if word == b"G1":
                            n_g1 += 1
                            if n_g1 <= MAX_PER_CODE:
                                g1_lines.append(ln)
                        else:
                            n_g0 += 1
                            if n_g0 <= MAX_PER_CODE:
                                g0_lines.append(ln)
                        if f is not None and f > 0.0:
                            feed = f / 60.0
                        dx = dy = dz = 0.0
                        if x is not None:
                            x += ox
                            dx = x - px
                            px = x
                            if x > hx:
                                hx = x
                                tx.push_hi(x, ln)
                            if x < lx:
                                lx = x
                                tx.push_lo(x, ln)
                        if y is not None:
                            y += oy
                            dy = y - py
                            py = y
                            if y > hy:
                                hy = y
                                ty.push_hi(y, ln)
                            if y < ly:
                                ly = y
                                ty.push_lo(y, ln)
                        if z is not None:
                            n_z += 1
                            if n_z <= MAX_PER_CODE:
                                z_lines.append(ln)
                            z += oz
                            dz = z - pz
                            pz = z
                            if z > hz:
                                hz = z
                                tz.push_hi(z, ln)
                            if z < lz:
                                lz = z
                                tz.push_lo(z, ln)
                        de = 0.0
                        if e is not None:
                            n_e += 1
                            if n_e <= MAX_PER_CODE:
                                e_lines.append(ln)
                            if rel_e:
                                de = e
                                pe += e
                            else:
                                de = e - pe
                                pe = e
                            filament += de
                        if de > 0.0:
                            if not extruding:  # the start point of an extruding run
                                extruding = True
                                sx, sy, sz = px - dx, py - dy, pz - dz
                                elx, ely, elz = min(elx, sx), min(ely, sy), min(elz, sz)
                                ehx, ehy, ehz = max(ehx, sx), max(ehy, sy), max(ehz, sz)
                            if px < elx:
                                elx = px
                            elif px > ehx:
                                ehx = px
                            if py < ely:
                                ely = py
                            elif py > ehy:
                                ehy = py
                            if pz < elz:
                                elz = pz
                            elif pz > ehz:
                                ehz = pz
                        else:
                            extruding = False
                        d = sqrt(dx * dx + dy * dy + dz * dz)
                        if d > 0.0:
                            est_move(d, feed, dx, dy, dz, de if de >= 0.0 else -de, True)
                        elif de:
                            de = de if de >= 0.0 else -de
                            est_move(de, feed, 0.0, 0.0, 0.0, de, False)
                        continue
                # The careful path: sync the local state out, interpret, read it back.
                if not synced:
                    self.px, self.py, self.pz, self.pe, self.feed = px, py, pz, pe, feed
                    self.filament, self.extruding, self.mode = filament, extruding, last.decode()
                    self.elx, self.ely, self.elz, self.ehx, self.ehy, self.ehz = elx, ely, elz, ehx, ehy, ehz
                    synced = True
                other(ucmd, cmd, ln)
                fast = (
                    not self.rel
                    and self.unit == 1.0
                    and not self.unrecorded
                    and self.px is not None
                    and self.py is not None
                    and self.pz is not None
                    and not self.laser_on  # burning moves go the careful way (laser.py)
                )
                if fast:
                    px, py, pz, pe, feed = self.px, self.py, self.pz, self.pe, self.feed  # type: ignore[assignment]
                    filament, extruding, rel_e = self.filament, self.extruding, self.rel_e
                    elx, ely, elz, ehx, ehy, ehz = self.elx, self.ely, self.elz, self.ehx, self.ehy, self.ehz
                    hx, hy, hz, lx, ly, lz = tx.hi, ty.hi, tz.hi, tx.lo, ty.lo, tz.lo
                    ox, oy, oz = self.ox, self.oy, self.oz
        if not synced:
            self.px, self.py, self.pz, self.pe, self.feed = px, py, pz, pe, feed
            self.filament, self.extruding = filament, extruding
            self.elx, self.ely, self.elz, self.ehx, self.ehy, self.ehz = elx, ely, elz, ehx, ehy, ehz
        self.commands += commands
        for name, n, first in (("G0", n_g0, g0_lines), ("G1", n_g1, g1_lines)):
            if n:
                entry = self.words.setdefault(name, [0, []])
                entry[0] += n
                entry[1] = sorted(entry[1] + first)[:MAX_PER_CODE]
        for stat, n, first in ((self.e_words, n_e, e_lines), (self.z_words, n_z, z_lines)):
            stat[0] += n
            stat[1] = sorted(stat[1] + first)[:MAX_PER_CODE]

    def facts(self, reader: Reader) -> Facts:
        log = self.log
        heaters_off = self.bed_last == 0.0 and all(v == 0.0 for v in self.hot_last.values())
        if not reader.stopped and reader.file_bytes > 0:
            bad_lines = log.has("gcode.not_gcode") or reader.reasons.has("gcode.not_utf8")
            if self.commands == 0 and not bad_lines:
                log.add("gcode.empty" if _blank(reader.path) else "gcode.no_commands")
            elif not reader.ends_with_newline and not heaters_off:
                # Cut off mid-upload: a complete slicer file ends with heaters off and a newline.
                log.add("gcode.truncated", reader.file_lines)
        elif reader.file_bytes == 0:
            log.add("gcode.empty")
        estimates = self.est.totals()
        hot = [v for v in self.hot_targets if v is not None]
        bed = [v for v in self.bed_targets if v is not None]
        return Facts(
            kind=self.file_kind(),
            sha256=reader.sha.hexdigest(),
            file_bytes=reader.file_bytes,
            file_lines=reader.file_lines,
            lines=self.commands,
            ends_with_newline=reader.ends_with_newline,
            heaters_off_at_end=heaters_off,
            file_reasons=reader.reasons.reasons() + log.reasons(),
            lengths={k: (v[0], v[1]) for k, v in self.lengths.items()},
            words={k: (v[0], v[1]) for k, v in self.words.items()},
            hotend_targets={k: (v[0], v[1]) for k, v in self.hot_targets.items()},
            bed_targets={k: (v[0], v[1]) for k, v in self.bed_targets.items()},
            axes={"x": self.tx, "y": self.ty, "z": self.tz},
            bbox=_box(self.tx, self.ty, self.tz),
            extrude_bbox=_extrude_box(self),
            max_hotend_c=max(hot) if hot else None,
            max_bed_c=max(bed) if bed else None,
            filament_mm=round(max(self.filament, 0.0), 3),
            estimates=estimates,
            clean_lengths={k: (v[0], v[1]) for k, v in self.clean_lengths.items()},
            e_words=(self.e_words[0], self.e_words[1]),
            z_words=(self.z_words[0], self.z_words[1]),
            paren_lines=(self.paren_lines[0], self.paren_lines[1]),
            system=(self.system[0], self.system[1]),
            power=self.ts,
            burn_bbox=_burn_box(self),
        )


def _extrude_box(s: _Scanner) -> Box | None:
    def r(v: float) -> float | None:
        return round(v, 4) if math.isfinite(v) else None

    if not any(math.isfinite(v) for v in (s.ehx, s.ehy, s.ehz)):
        return None
    return Box(r(s.elx), r(s.ely), r(s.elz), r(s.ehx), r(s.ehy), r(s.ehz))


def _burn_box(s: _Scanner) -> Box | None:
    box = s.burn_box()
    if box is None:
        return None
    lx, ly, hx, hy = (round(v, 4) if math.isfinite(v) else None for v in box)
    return Box(min_x=lx, min_y=ly, max_x=hx, max_y=hy)


def _blank(path: Path) -> bool:
    """Only whitespace (and a BOM) in the file? Read again, in blocks: this is the rare case."""
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            if block.replace(b"\xef\xbb\xbf", b"").strip():
                return False
    return True


def scan_file(path: Path, *, max_bytes: int | None = None, profiles: Sequence[Profile] = ()) -> Facts:
    """Read `path` once, line by line, and return its Facts.

    `profiles` only tells the time estimate which motion configs to compute (see estimate.py);
    every other fact is machine-independent. `validate` passes its profiles; `check` with any other
    profile falls back to the estimate for Marlin's default motion settings.
    """
    scanner = _Scanner([MotionConfig.of(p) for p in profiles])
    reader = Reader(Path(path), max_bytes)
    scanner.run(reader)
    return scanner.facts(reader)
