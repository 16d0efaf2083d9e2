"""The simulated mechanics of a GRBL laser: the planner's blocks in simulated time, position and the beam."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Vec = tuple[float, float, float]


@dataclass(slots=True)
class Block:
    """One planner block: a straight move (arcs keep their arc length, so their time is right)."""

    start: Vec
    end: Vec
    duration: float  # simulated seconds at 100 % override
    rapid: bool
    feed: float  # mm/min programmed (0 for rapids)
    power: float  # S the laser uses while this block runs (0: beam off)
    dynamic: bool  # M4


def move_time(start: Vec, end: Vec, length: float, feed: float, rapid: bool, rates: Vec) -> float:
    """Simulated seconds for a move: distance / feed, no axis faster than its $11x rate (planner.c)."""
    axis_min = 0.0
    for k in range(3):
        d = abs(end[k] - start[k])
        if d > 0:
            axis_min = max(axis_min, d / (rates[k] / 60.0))
    if rapid or feed <= 0:
        return axis_min
    return max(length / (feed / 60.0), axis_min)


class Beam:
    """What the laser did: a log of (time, power) changes and the time it was on."""

    def __init__(self, now: float) -> None:
        self.power = 0.0
        self.log: list[tuple[float, float]] = [(now, 0.0)]
        self.on_time_s = 0.0
        self._since = now

    def set(self, power: float, at: float) -> None:
        if power == self.power:
            return
        if self.power > 0:
            self.on_time_s += max(0.0, at - self._since)
        self._since = at
        self.power = power
        self.log.append((at, power))

    def on_time(self, now: float) -> float:
        extra = max(0.0, now - self._since) if self.power > 0 else 0.0
        return self.on_time_s + extra


class Planner:
    """Up to `capacity` blocks; the head one runs while `running`, in real seconds scaled by `speed`."""

    def __init__(self, capacity: int, speed: float, now: float) -> None:
        self.capacity = capacity
        self.speed = speed
        self.blocks: deque[Block] = deque()
        self.done = 0.0  # fraction of the head block already travelled
        self.running = False
        self.position: Vec = (0.0, 0.0, 0.0)  # where the head block started / the machine stands
        self.feed_ovr = 100
        self.rapid_ovr = 100
        self.moves = 0
        self.move_time_s = 0.0  # real seconds the planned moves need at 100 % (the bench's yardstick)
        self.idle_s = 0.0
        self._t = now
        self._drained_at: float | None = None  # when the planner ran dry while streaming

    @property
    def free(self) -> int:
        return self.capacity - len(self.blocks)

    def add(self, block: Block, now: float) -> None:
        if self._drained_at is not None and not self.blocks:
            # The planner ran dry between two moves: the host did not keep it fed.
            self.idle_s += max(0.0, now - self._drained_at)
        self._drained_at = None
        self.moves += 1
        self.move_time_s += block.duration / self.speed
        if not self.blocks:
            self._t = now
            self.done = 0.0
        self.blocks.append(block)

    def pause_accounting(self) -> None:
        """A sync (M5, dwell, program end) empties the planner on purpose: not starvation."""
        self._drained_at = None

    def rate(self, block: Block) -> float:
        """Fraction of `block` travelled per real second."""
        if block.duration <= 0:
            return math.inf
        ovr = self.rapid_ovr if block.rapid else self.feed_ovr
        return self.speed * ovr / 100.0 / block.duration

    def advance(self, now: float, on_block: Callable[[Block | None, float], None]) -> int:
        """Run blocks up to `now`; `on_block(next_block_or_None, at)` at each boundary. Blocks finished."""
        finished = 0
        t = self._t
        self._t = now
        if not self.running:
            return 0
        while self.blocks:
            head = self.blocks[0]
            rate = self.rate(head)
            end_at = t + (1.0 - self.done) / rate if rate != math.inf else t
            if end_at > now:
                self.done += (now - t) * rate
                return finished
            self.blocks.popleft()
            self.position = head.end
            self.done = 0.0
            t = end_at
            finished += 1
            on_block(self.blocks[0] if self.blocks else None, t)
        self._drained_at = t
        return finished

    def next_boundary(self, now: float) -> float | None:
        if not self.running or not self.blocks:
            return None
        rate = self.rate(self.blocks[0])
        return now if rate == math.inf else now + (1.0 - self.done) / rate

    def where(self) -> Vec:
        if not self.blocks:
            return self.position
        head, f = self.blocks[0], min(1.0, self.done)
        s, e = head.start, head.end
        return (s[0] + (e[0] - s[0]) * f, s[1] + (e[1] - s[1]) * f, s[2] + (e[2] - s[2]) * f)

    def current_feed(self) -> float:
        """mm/min the head moves at now (status `FS:`), 0 when stopped."""
        if not self.running or not self.blocks:
            return 0.0
        head = self.blocks[0]
        if head.duration <= 0:
            return 0.0
        length = math.dist(head.start, head.end)
        return length / head.duration * 60.0 * (self.rapid_ovr if head.rapid else self.feed_ovr) / 100.0

    def clear(self, now: float) -> None:
        """Reset: every block dropped where it stands (position is kept: GRBL keeps sys_position)."""
        self.position = self.where()
        self.blocks.clear()
        self.done = 0.0
        self.running = False
        self._t = now
        self._drained_at = None
