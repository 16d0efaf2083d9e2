"""Driver test rigs: a simulator on a pty, a driver connected to it, and a recorder of the driver's events."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from drivers.base import Driver, DriverEvent, DriverState, JobEnded, StatusChanged
from drivers.profiles import Profile


class Recorder:
    """Collects driver events; tests wait on conditions over them (no bare sleeps)."""

    def __init__(self, timeout: float) -> None:
        self.events: list[DriverEvent] = []
        self._cond = threading.Condition()
        self.timeout = timeout  # the default wait: each protocol's suite has its own

    def __call__(self, event: DriverEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait(self, pred: Callable[[list[DriverEvent]], object], timeout: float | None = None) -> object:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while not (result := pred(self.events)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; last events: {self.events[-5:]}")
                self._cond.wait(left)
            return result

    def job_end(self, timeout: float | None = None) -> JobEnded:
        found = self.wait(lambda evs: next((e for e in evs if isinstance(e, JobEnded)), None), timeout)
        assert isinstance(found, JobEnded)
        return found

    def state(self, state: DriverState, timeout: float | None = None) -> None:
        self.wait(
            lambda evs: any(isinstance(e, StatusChanged) and e.status.state is state for e in evs), timeout
        )


class Simulator(Protocol):
    def start(self) -> str: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Simulator)
D = TypeVar("D", bound=Driver)


class Rigs(Generic[S, D]):
    """Makes rigs for one protocol and takes every one down at the end of the test."""

    def __init__(
        self,
        simulator: Callable[..., S],
        driver: type[D],
        profile: Profile,
        timeout: float,
    ) -> None:
        self._simulator = simulator
        self._driver = driver
        self._profile = profile
        self._timeout = timeout
        self._made: list[tuple[S, D]] = []

    def __call__(
        self, profile: Profile | None = None, connect: bool = True, **sim_kw: Any
    ) -> tuple[S, D, Recorder]:
        """A simulator (`motion=False` unless said) and a driver on its pty, connected unless said."""
        profile = self._profile if profile is None else profile
        sim_kw.setdefault("motion", False)
        sim = self._simulator(profile, **sim_kw)
        port = sim.start()
        rec = Recorder(self._timeout)
        driver = self._driver(profile, port, on_event=rec)
        self._made.append((sim, driver))
        if connect:
            driver.connect(timeout=10)
        return sim, driver, rec

    def close(self) -> None:
        for sim, driver in self._made:
            driver.close()
            sim.stop()


def rigs(
    simulator: Callable[..., S],
    driver: type[D],
    profile: Profile,
    timeout: float,
) -> Iterator[Rigs[S, D]]:
    """The body of a `rig_factory` fixture: `yield from rigs(...)`."""
    made = Rigs(simulator, driver, profile, timeout)
    yield made
    made.close()
