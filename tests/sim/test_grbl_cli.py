"""`python -m drivers.sim grbl` as a person runs it: faults injected from the command line reach the wire."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from tests.support import SimProcess

pytestmark = pytest.mark.timeout(60)


class GrblProcess(SimProcess):
    """The GRBL simulator in a subprocess, with `link`, a pyserial port on the pty it printed."""

    def __init__(self, tmp: Path, *options: str) -> None:
        super().__init__("grbl-laser-400", tmp, "grbl-sim", *options, protocol="grbl")
        self.link = serial.serial_for_url(self.port, baudrate=115200, timeout=0.05)
        self._buf = b""

    def send(self, line: str) -> None:
        self.link.write(line.encode("ascii") + b"\n")

    def until(self, wanted: str, timeout: float) -> list[str]:
        """Lines read up to and including the first that starts with `wanted`."""
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._buf:
                raw, self._buf = self._buf.split(b"\n", 1)
                got.append(raw.decode("latin-1").rstrip("\r"))
                if got[-1].startswith(wanted):
                    return got
            assert time.monotonic() < deadline, f"no {wanted!r} within {timeout} s; got {got!r}"
            self._buf += self.link.read(256)

    def stop(self) -> None:
        self.link.close()
        super().stop()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., GrblProcess]]:
    made: list[GrblProcess] = []

    def started(*options: str) -> GrblProcess:
        made.append(GrblProcess(tmp_path, *options))
        return made[-1]

    yield started
    for proc in made:
        proc.stop()


def test_alarm_after_arrives_on_the_wire_during_the_job(start: Callable[..., GrblProcess]) -> None:
    sim = start("--sim-speed", "5", "--alarm-after", "0.5")
    sim.send("$$")  # a driver's handshake: no G-code yet, so the clock has not started
    sim.until("ok", 5)
    time.sleep(0.8)
    assert sim.link.in_waiting == 0, "the alarm came before any G-code line"
    sim.send("M4 S500")
    sent = time.monotonic()
    sim.send("G1 X300 F600")  # 30 s of cutting, 6 s at --sim-speed 5: the alarm lands mid-move
    lines = sim.until("ALARM:1", 5)
    took = time.monotonic() - sent
    assert 0.4 < took < 3.0, took
    assert lines[:2] == ["ok", "ok"]
    # A hard limit (protocol.c): nothing but a reset is processed, which leaves the machine locked.
    sim.until("[MSG:Reset to continue]", 2)
    sim.link.write(b"\x18")
    sim.until("[MSG:'$H'|'$X' to unlock]", 5)
    sim.link.write(b"?")
    assert sim.until("<", 2)[-1].startswith("<Alarm|")


def test_door_and_error_from_the_command_line(start: Callable[..., GrblProcess]) -> None:
    sim = start("--no-motion", "--error-after", "0.1", "--error-code", "33", "--door-after", "0.4",
                "--door-close-after", "0.4")  # fmt: skip
    sim.send("G0 X1")
    assert sim.until("ok", 5) == ["ok"]
    time.sleep(0.25)  # the error is armed 0.1 s after that first line: the next line gets it
    sim.send("G0 X2")
    assert sim.until("error:", 2) == ["error:33"]
    sim.until("[MSG:Check Door]", 2)  # at 0.4 s
    sim.link.write(b"?")
    assert sim.until("<", 2)[-1].startswith("<Door:")
    time.sleep(0.6)  # closed 0.4 s after it opened: ready to resume
    sim.link.write(b"?")
    assert sim.until("<", 2)[-1].startswith("<Door:0|")
