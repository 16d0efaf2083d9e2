"""A minimal host for simulator tests: a pyserial port plus line reading with deadlines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import serial

from drivers.gcode import numbered_line
from drivers.profiles import get_profile


class Host:
    """Opens the simulator's pty with `serial_for_url`, exactly as a driver would."""

    def __init__(self, port: str, baud: int = 250000) -> None:
        self.serial = serial.serial_for_url(port, baudrate=baud, timeout=0.05)
        self._buf = b""
        self.seen: list[str] = []

    def close(self) -> None:
        self.serial.close()

    def send(self, text: str) -> None:
        self.serial.write(text.encode() + b"\n")

    def send_numbered(self, number: int, command: str) -> None:
        self.serial.write(numbered_line(number, command))

    def readline(self, timeout: float = 2.0) -> str | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            if time.monotonic() >= deadline:
                return None
            self._buf += self.serial.read(max(1, self.serial.in_waiting))
        line, self._buf = self._buf.split(b"\n", 1)
        text = line.decode("latin-1")
        self.seen.append(text)
        return text

    def until(self, predicate: Callable[[str], bool], timeout: float = 2.0) -> list[str]:
        """Lines read up to and including the first one matching; AssertionError on timeout."""
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"timed out waiting; got {got!r}")
            got.append(line)
            if predicate(line):
                return got

    def silent_for(self, seconds: float) -> bool:
        """True if nothing at all arrives for `seconds` (used only to check that a halted board is mute)."""
        return self.readline(seconds) is None and not self._buf


class Simulator(Protocol):
    def start(self) -> str: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Simulator)
H = TypeVar("H", bound=Host)


def sim_hosts(
    simulator: Callable[..., S], host: Callable[[str], H], profile: str
) -> Iterator[Callable[..., tuple[S, H]]]:
    """The body of a `make` fixture (`yield from sim_hosts(...)`): a simulator (`motion=False` unless
    said) with a host on its pty; both closed at the end of the test."""
    made: list[tuple[S, H]] = []

    def factory(profile: str = profile, **kwargs: Any) -> tuple[S, H]:
        kwargs.setdefault("motion", False)
        sim = simulator(get_profile(profile), **kwargs)
        made.append((sim, host(sim.start())))
        return made[-1]

    yield factory
    for sim, h in made:
        h.close()
        sim.stop()
