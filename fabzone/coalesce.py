"""Rate limiting on the event loop: at most one call per interval, and never a last value left unsent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Coalescer:
    """Calls `fn` at most once per `interval` on the event loop, on the leading edge and once more at
    the end of the interval if triggered meanwhile — so the last value is never left unsent."""

    def __init__(self, interval: float, fn: Callable[[], None]) -> None:
        self.interval = interval
        self.fn = fn
        self._last = -interval
        self._handle: asyncio.TimerHandle | None = None

    def trigger(self) -> None:
        if self._handle is not None:
            return
        wait = self._last + self.interval - time.monotonic()
        if wait <= 0:
            self._fire()
        else:
            self._handle = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._last = time.monotonic()
        self.fn()
