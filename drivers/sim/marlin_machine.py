"""The simulated mechanics of a Marlin printer: a 16-block planner in simulated time, heaters, position."""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

BLOCK_BUFFER_SIZE = 16  # Configuration_adv.h default
AMBIENT_C = 25.0
STEPS_PER_MM = {"X": 80.0, "Y": 80.0, "Z": 400.0, "E": 93.0}  # DEFAULT_AXIS_STEPS_PER_UNIT


class Planner:
    """Blocks each end at a known time; a block starts when the previous one ends.

    Times are real seconds (`time.monotonic()` scale): a move's simulated duration is already
    divided by the speed factor. No acceleration is modelled: distance / feed rate.
    """

    def __init__(self, capacity: int = BLOCK_BUFFER_SIZE) -> None:
        self.capacity = capacity
        self._ends: deque[float] = deque()
        self.last_end = 0.0
        self.idle_s = 0.0
        self.moves = 0
        self._counting = False

    def _expire(self, now: float) -> None:
        ends = self._ends
        while ends and ends[0] <= now:
            ends.popleft()

    def has_room(self, now: float) -> bool:
        self._expire(now)
        return len(self._ends) < self.capacity

    def next_free(self, now: float) -> float:
        """When a slot frees up (now if there is room)."""
        self._expire(now)
        return now if len(self._ends) < self.capacity else self._ends[0]

    def is_empty(self, now: float) -> bool:
        self._expire(now)
        return not self._ends

    def drained_at(self, now: float) -> float:
        return max(now, self.last_end)

    def add(self, duration: float, now: float) -> None:
        """Queue a block (the caller checked `has_room`)."""
        self.moves += 1
        if duration <= 0:
            return
        if self._counting and now > self.last_end:
            # The planner ran dry between two moves: the host did not keep it fed.
            self.idle_s += now - self.last_end
        self._counting = True
        start = max(now, self.last_end)
        self.last_end = start + duration
        self._ends.append(self.last_end)

    def pause_accounting(self) -> None:
        """A command that drains the planner on purpose (M400, G28, G4, M109...) is not starvation."""
        self._counting = False

    def clear(self, now: float) -> None:
        """M410 quickstop / reset: every block is dropped."""
        self._ends.clear()
        self.last_end = now
        self._counting = False


@dataclass
class Heater:
    """First-order-free heating model: a fixed rate towards the target, cooling towards ambient."""

    heat_rate: float  # °C per simulated second
    cool_rate: float
    temp: float = AMBIENT_C
    target: float = 0.0
    _t: float = 0.0

    def update(self, now: float, speed: float) -> float:
        dt = max(0.0, now - self._t) * speed
        self._t = now
        goal = self.target if self.target > 0 else AMBIENT_C
        if self.temp < goal:
            self.temp = min(goal, self.temp + self.heat_rate * dt) if self.target > 0 else self.temp
        elif self.temp > goal:
            self.temp = max(goal, self.temp - self.cool_rate * dt)
        return self.temp

    def set_target(self, target: float, now: float, speed: float) -> None:
        self.update(now, speed)
        self.target = max(0.0, target)

    def reached(self, now: float, speed: float, *, cooling_too: bool) -> bool:
        """temperature.cpp wait_for_hotend(): within TEMP_WINDOW (1 °C) of the target."""
        temp = self.update(now, speed)
        if cooling_too:
            return abs(temp - self.target) <= 1.0
        return temp >= self.target - 1.0

    def time_to_reach(self, now: float, speed: float) -> float:
        """Real seconds until `reached` can become true."""
        temp = self.update(now, speed)
        if temp < self.target:
            return max(0.0, (self.target - 1.0 - temp) / (self.heat_rate * speed))
        return max(0.0, (temp - max(self.target, AMBIENT_C) - 1.0) / (self.cool_rate * speed))

    def power(self) -> int:
        if self.target <= 0:
            return 0
        return 127 if self.temp < self.target - 0.5 else 32


@dataclass
class Position:
    """Logical position, absolute/relative modes, modal feed rate (mm/min)."""

    axes: dict[str, float] = field(default_factory=lambda: {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0})
    relative: bool = False
    relative_e: bool = False
    feed_mm_min: float = 1500.0  # Marlin's default feedrate_mm_s 25 mm/s

    def move(self, params: dict[str, float]) -> float:
        """Apply a G0/G1 and return its length in mm (XYZ, or |E| for an extrude-only move)."""
        if "F" in params and params["F"] > 0:
            self.feed_mm_min = params["F"]
        deltas: dict[str, float] = {}
        for axis in ("X", "Y", "Z", "E"):
            if axis not in params:
                continue
            rel = self.relative or (axis == "E" and self.relative_e)
            new = self.axes[axis] + params[axis] if rel else params[axis]
            deltas[axis] = new - self.axes[axis]
            self.axes[axis] = new
        xyz = math.hypot(deltas.get("X", 0.0), deltas.get("Y", 0.0), deltas.get("Z", 0.0))
        return xyz if xyz > 0 else abs(deltas.get("E", 0.0))

    def set(self, params: dict[str, float]) -> None:
        """G92: set the current position without moving."""
        for axis in ("X", "Y", "Z", "E"):
            if axis in params:
                self.axes[axis] = params[axis]

    def report(self) -> str:
        """M114: `X:.. Y:.. Z:.. E:.. Count X:.. Y:.. Z:..` (motion/M114.cpp report_current_position)."""
        a = self.axes
        counts = " ".join(f"{k}:{round(a[k] * STEPS_PER_MM[k])}" for k in "XYZ")
        return f"X:{a['X']:.2f} Y:{a['Y']:.2f} Z:{a['Z']:.2f} E:{a['E']:.2f} Count {counts}"


_WORD = re.compile(r"^\s*[A-Za-z]\s*[0-9]*(?:\.[0-9]+)?")
_PARAM = re.compile(r"([A-Za-z])\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))?")


def parse_params(command: str) -> dict[str, float]:
    """Letter/number pairs after the command word: `G1 X10 Y-2.5 F3000` -> {X:10, Y:-2.5, F:3000}.

    `G1X10Y5` (no spaces) parses too; a letter without a number counts as 0 (`G28 X`).
    """
    word = _WORD.match(command)
    rest = command[word.end() :] if word else command
    return {k.upper(): float(v) if v else 0.0 for k, v in _PARAM.findall(rest)}
