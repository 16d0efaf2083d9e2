"""Geometry for the scan: per-axis extremes with the lines that set them, and the real extent of arcs."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right

_INF = math.inf
_TWO_PI = 2.0 * math.pi
# A new record is kept only when it beats the previous kept one by this much (mm): enough to name
# the first line past any limit to the micron, while a spiral-vase Z that rises on every one of
# 3 million moves keeps a bounded list. Past `_DENSE` records the step grows.
_STEP = 0.001
_DENSE = 50_000
_COARSE_STEP = 0.1


class AxisTrack:
    """Lowest and highest position reached on one axis, and the records that led there.

    `first_above(limit)` is exact because the first move past a limit is always a new record.
    """

    __slots__ = ("hi", "hi_line", "hi_lines", "hi_values", "lo", "lo_line", "lo_lines", "lo_values")

    def __init__(self) -> None:
        self.lo = _INF
        self.hi = -_INF
        self.lo_line = 0
        self.hi_line = 0
        self.hi_values = array("d")
        self.hi_lines = array("q")
        self.lo_values = array("d")  # negated, so that the array rises and bisect works
        self.lo_lines = array("q")

    @property
    def reached(self) -> bool:
        return self.hi >= self.lo

    def push_hi(self, value: float, line: int) -> None:
        self.hi = value
        self.hi_line = line
        values = self.hi_values
        step = _STEP if len(values) < _DENSE else _COARSE_STEP
        if not values or value > values[-1] + step:
            values.append(value)
            self.hi_lines.append(line)

    def push_lo(self, value: float, line: int) -> None:
        self.lo = value
        self.lo_line = line
        values = self.lo_values
        step = _STEP if len(values) < _DENSE else _COARSE_STEP
        if not values or -value > values[-1] + step:
            values.append(-value)
            self.lo_lines.append(line)

    def first_above(self, limit: float) -> tuple[int, float] | None:
        """(line, value) of the first position above `limit`, or None."""
        i = bisect_right(self.hi_values, limit)
        if i < len(self.hi_values):
            return self.hi_lines[i], self.hi_values[i]
        return (self.hi_line, self.hi) if self.hi > limit else None

    def first_below(self, limit: float) -> tuple[int, float] | None:
        i = bisect_right(self.lo_values, -limit)
        if i < len(self.lo_values):
            return self.lo_lines[i], -self.lo_values[i]
        return (self.lo_line, self.lo) if self.lo < limit else None


def arc_center_from_radius(
    x0: float, y0: float, x1: float, y1: float, r: float, clockwise: bool
) -> tuple[float, float] | None:
    """Centre of an `R` arc as Marlin computes it (gcode/motion/G2_G3.cpp): R > 0 takes the short
    way, R < 0 the long way. None when start and end coincide (Marlin ignores such an arc)."""
    dx, dy = x1 - x0, y1 - y0
    d = math.hypot(dx, dy)
    if d == 0.0 or r == 0.0:
        return None
    # A radius too small for the chord: Marlin 2.1 takes h = 0, the half circle through both points.
    h = math.sqrt(max(r * r - (d * 0.5) ** 2, 0.0))
    e = -1.0 if clockwise != (r < 0) else 1.0
    mx, my = (x0 + x1) * 0.5, (y0 + y1) * 0.5
    sx, sy = -dy / d, dx / d
    return mx + e * h * sx, my + e * h * sy


def arc_sweep(x0: float, y0: float, x1: float, y1: float, cx: float, cy: float, clockwise: bool) -> float:
    """Signed angle (radians, CCW positive) swept from start to end, as Marlin's plan_arc: a full
    circle when the end equals the start."""
    ax, ay = x0 - cx, y0 - cy
    bx, by = x1 - cx, y1 - cy
    sweep = math.atan2(ax * by - ay * bx, ax * bx + ay * by)
    if sweep < 0.0:
        sweep += _TWO_PI
    if clockwise:
        sweep -= _TWO_PI
    # Marlin (plan_arc): same start and end point -> a full circle.
    if abs(x1 - x0) < 1e-9 and abs(y1 - y0) < 1e-9:
        sweep = -_TWO_PI if clockwise else _TWO_PI
    return sweep


def arc_extremes(x0: float, y0: float, cx: float, cy: float, sweep: float) -> list[tuple[float, float]]:
    """The points where the arc crosses a quadrant boundary (0°, 90°, 180°, 270° about the centre):
    with the endpoints, they bound the arc's extent."""
    radius = math.hypot(x0 - cx, y0 - cy)
    start = math.atan2(y0 - cy, x0 - cx)
    points = []
    for k in range(4):
        angle = k * (math.pi / 2)
        delta = (angle - start) % _TWO_PI if sweep >= 0 else (start - angle) % _TWO_PI
        if delta <= abs(sweep) + 1e-12:
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points
