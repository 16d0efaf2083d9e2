"""Print-time estimate from the moves: trapezoidal speed profile per move, per machine motion config.

Why per config inside the scan: the time of a move depends non-linearly on the acceleration and on
the per-axis feed clamp of the machine, and a 100 MB file cannot keep its moves for later. So
`scan_file` runs one small planner lane per distinct motion config it is given (`validate` passes
every candidate profile), plus `REFERENCE` (Marlin 2.1 defaults) for a profile it was not given.

The model, simpler than Marlin's planner but close for slicer output:
- cruise speed = F, clamped to the machine's max feed and each axis' max feed (Marlin
  `DEFAULT_MAX_FEEDRATE`, `limit_and_warn` in planner.cpp);
- corner (junction) speed from classic jerk: the speed at which the velocity jump across the corner
  is `JERK_MM_S` (Marlin `DEFAULT_XJERK` 10 mm/s; junction deviation 0.013 mm gives similar corner
  speeds), never above either move's cruise speed, 0 next to an extruder-only move;
- a forward pass only (the entry speed of a move is limited by what the previous move could reach);
  the backward pass of Marlin's planner is approximated by decelerating as late as possible.
Slicer header comments (`;TIME:6666`, `; estimated printing time`) are never read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drivers.profiles import Profile

JERK_MM_S = 10.0
# Fixed allowances for commands whose duration the file cannot tell (heating from the current
# temperature, homing, probing). Deliberately modest: most jobs start on a machine already warm
# from the previous one.
ALLOWANCE_S = {
    "M109": 30.0,  # wait for hotend
    "M190": 45.0,  # wait for bed
    "G28": 10.0,  # homing
    "G29": 60.0,  # bed probing (Marlin)
    "G80": 60.0,  # mesh bed leveling (Prusa firmware)
}
_INF = math.inf


@dataclass(frozen=True, slots=True)
class MotionConfig:
    """What the estimate needs from a profile: acceleration and speed limits (mm/s², mm/s)."""

    acceleration: float
    max_x: float = _INF
    max_y: float = _INF
    max_z: float = _INF
    max_e: float = _INF
    max_feed: float = _INF

    @classmethod
    def of(cls, profile: Profile) -> MotionConfig:
        axis = {k.upper(): v for k, v in profile.motion.max_feed_mm_s.items()}
        return cls(
            acceleration=profile.motion.acceleration_mm_s2,
            max_x=axis.get("X", _INF),
            max_y=axis.get("Y", _INF),
            max_z=axis.get("Z", _INF),
            max_e=axis.get("E", _INF),
            max_feed=profile.limits.feed_max_mm_min / 60.0,
        )


# Marlin 2.1 Configuration.h: DEFAULT_ACCELERATION 3000, DEFAULT_MAX_FEEDRATE {300, 300, 5, 25}.
REFERENCE = MotionConfig(3000.0, 300.0, 300.0, 5.0, 25.0, 300.0)


def segment_time(d: float, vi: float, vc: float, vo: float, a: float) -> float:
    """Time to travel `d` mm entering at `vi`, cruising at most at `vc`, leaving at `vo` (mm/s)."""
    vi = min(vi, vc)
    vo = min(vo, vc)
    if (2.0 * vc * vc - vi * vi - vo * vo) <= 2.0 * a * d:
        # Accelerate, cruise, decelerate: d/vc plus the time lost on each ramp, (Δv)²/(2·a·vc).
        return d / vc + ((vc - vi) ** 2 + (vc - vo) ** 2) / (2.0 * a * vc)
    peak = math.sqrt(a * d + 0.5 * (vi * vi + vo * vo))
    if peak >= vi and peak >= vo:
        return (2.0 * peak - vi - vo) / a
    return 2.0 * d / (vi + vo)  # entry and exit too far apart for `d`: a straight ramp


class _Lane:
    """One planner lane: one motion config's running total and the move not yet finished."""

    __slots__ = ("a", "cfg", "d", "entry", "fmax", "safe", "total", "vc", "ve", "vx", "vy", "vz")

    def __init__(self, cfg: MotionConfig) -> None:
        self.cfg = cfg
        self.a = cfg.acceleration
        self.vx, self.vy, self.vz, self.ve, self.fmax = (
            cfg.max_x,
            cfg.max_y,
            cfg.max_z,
            cfg.max_e,
            cfg.max_feed,
        )
        # Below this speed no X/Y clamp can bind (an axis' share of the speed is at most all of it).
        self.safe = min(cfg.max_feed, cfg.max_x, cfg.max_y)
        self.total = 0.0
        self.d = 0.0  # pending move: length (0: none), cruise speed, entry speed
        self.vc = 0.0
        self.entry = 0.0

    def clamp(self, d: float, v: float, ax: float, ay: float, az: float, ae: float) -> float:
        """Cruise speed: F limited by the machine's max feed and each axis' max feed."""
        if v > self.fmax:
            v = self.fmax
        if ax * v > self.vx * d:
            v = self.vx * d / ax
        if ay * v > self.vy * d:
            v = self.vy * d / ay
        if az * v > self.vz * d:
            v = self.vz * d / az
        if ae * v > self.ve * d:
            v = self.ve * d / ae
        return v


class Estimator:
    """Feed it the moves in order; `totals()` gives seconds per motion config."""

    def __init__(self, configs: list[MotionConfig]) -> None:
        unique = list(dict.fromkeys([REFERENCE, *configs]))
        self.lanes = [_Lane(c) for c in unique]
        self.fixed_s = 0.0  # dwell and allowances: the same for every config
        self._ux = self._uy = self._uz = 0.0
        self._has_dir = False

    def move(self, d: float, v: float, dx: float, dy: float, dz: float, ae: float, xyz: bool) -> None:
        """A move of length `d` mm at requested `v` mm/s; `dx, dy, dz` are the signed Δ per axis,
        `ae` is |ΔE|; `xyz` is False for an extruder-only move (then `d` is |ΔE|, as Marlin's
        planner.cpp computes `millimeters`). Finishes the previous move, now that its exit
        (this corner) is known."""
        if d <= 0.0 or v <= 0.0:
            return
        if xyz:
            inv = 1.0 / d
            ux, uy, uz = dx * inv, dy * inv, dz * inv
            if self._has_dir:
                jx, jy, jz = ux - self._ux, uy - self._uy, uz - self._uz
                # Velocity jump across the corner per unit of speed is |u2 - u1|.
                jump2 = jx * jx + jy * jy + jz * jz
                corner = JERK_MM_S / math.sqrt(jump2) if jump2 > 1e-18 else _INF
            else:
                corner = 0.0
            self._ux, self._uy, self._uz = ux, uy, uz
            self._has_dir = True
            az = -dz if dz < 0.0 else dz
        else:
            corner = 0.0
            az = 0.0
            self._has_dir = False
        for lane in self.lanes:
            vc = v
            if vc > lane.safe or az or ae * vc > lane.ve * d or not xyz:
                vc = lane.clamp(d, v, abs(dx), abs(dy), az, ae)
            pd = lane.d
            if pd > 0.0:
                pvc = lane.vc
                vj = corner if corner < vc else vc
                if vj > pvc:
                    vj = pvc
                vi = lane.entry
                a = lane.a
                reach2 = vi * vi + 2.0 * a * pd
                if vj * vj > reach2:  # the previous move could not speed up that much
                    vj = math.sqrt(reach2)
                if 2.0 * pvc * pvc - vi * vi - vj * vj <= 2.0 * a * pd:
                    # Inline of segment_time's common branch (the hot path of the whole scan).
                    ri, ro = pvc - vi, pvc - vj
                    lane.total += pd / pvc + (ri * ri + ro * ro) / (2.0 * a * pvc)
                else:
                    lane.total += segment_time(pd, vi, pvc, vj, a)
                lane.entry = vj
            else:
                lane.entry = 0.0
            lane.d = d
            lane.vc = vc

    def stop(self) -> None:
        """The machine comes to rest (dwell, heating, homing, end of file): finish the pending move."""
        for lane in self.lanes:
            if lane.d > 0.0:
                lane.total += segment_time(lane.d, lane.entry, lane.vc, 0.0, lane.a)
                lane.d = 0.0
        self._has_dir = False

    def wait(self, seconds: float) -> None:
        self.stop()
        if seconds > 0:
            self.fixed_s += seconds

    def totals(self) -> dict[MotionConfig, float]:
        self.stop()
        return {lane.cfg: lane.total + self.fixed_s for lane in self.lanes}
