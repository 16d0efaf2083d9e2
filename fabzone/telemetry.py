"""Recent temperatures of one machine: a ring buffer sampled at most once a second (the dashboard's chart)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol


class _Reading(Protocol):
    @property
    def actual(self) -> float: ...
    @property
    def target(self) -> float: ...


class TemperatureHistory:
    """The last `keep_s` seconds of temperatures, one sample per `interval_s` at most.

    Filled from the driver's status updates (so a machine that reports nothing adds nothing); 600
    samples of a few heaters each is a few hundred kB for a whole hall."""

    def __init__(self, keep_s: float = 600.0, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._samples: deque[dict[str, Any]] = deque(maxlen=int(keep_s / interval_s))
        self._last = float("-inf")

    def add(self, temperatures: Mapping[str, _Reading], now: float | None = None) -> bool:
        """Record a sample unless one was taken less than `interval_s` ago; True if recorded."""
        if not temperatures:
            return False
        now = time.time() if now is None else now
        if now - self._last < self.interval_s:
            return False
        self._last = now
        sample: dict[str, Any] = {"t": round(now, 3)}
        for name, reading in temperatures.items():
            sample[name] = {"actual": reading.actual, "target": reading.target}
        self._samples.append(sample)
        return True

    def since(self, seconds: float, now: float | None = None) -> list[dict[str, Any]]:
        """Samples of the last `seconds`, oldest first: `[{"t": unix, "T": {"actual", "target"}, …}]`."""
        cutoff = (time.time() if now is None else now) - seconds
        return [s for s in self._samples if s["t"] >= cutoff]
