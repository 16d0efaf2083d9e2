"""The one Driver base class every protocol implements, its status snapshot, events and exceptions."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Literal

from drivers.profiles import Profile


class DriverState(StrEnum):
    """What the driver knows of the machine. The hub maps this onto its own machine states."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    ERROR = "error"  # the firmware stopped (kill, thermal runaway, alarm); needs a technician


@dataclass(frozen=True)
class Temperature:
    actual: float
    target: float


@dataclass(frozen=True)
class DriverStatus:
    """A snapshot; drivers replace it whole, so readers on other threads never see it half-written."""

    state: DriverState = DriverState.DISCONNECTED
    job_id: str | None = None
    lines_acked: int = 0  # job commands the firmware acknowledged (`ok`)
    lines_total: int | None = None
    temperatures: dict[str, Temperature] = field(default_factory=dict)
    message: str | None = None  # the firmware's own words on an error
    firmware: str | None = None  # e.g. M115 FIRMWARE_NAME
    # Protocol-specific live facts the hub may show (GRBL: position, feed, laser power, buffers);
    # JSON-friendly values, empty for drivers that have none.
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def progress(self) -> float | None:
        if not self.lines_total:
            return None
        return min(1.0, self.lines_acked / self.lines_total)


JobOutcome = Literal["completed", "failed", "cancelled", "interrupted"]


@dataclass(frozen=True)
class StatusChanged:
    status: DriverStatus


@dataclass(frozen=True)
class JobEnded:
    """The job left the machine. `interrupted`: the firmware reset or the link dropped mid-job."""

    job_id: str
    outcome: JobOutcome
    lines_acked: int
    reason: str | None = None


@dataclass(frozen=True)
class ConnectionChanged:
    online: bool
    reason: str | None = None


DriverEvent = StatusChanged | JobEnded | ConnectionChanged
EventCallback = Callable[[DriverEvent], None]


class DriverError(Exception):
    """Base of every driver error; the message is meant for a technician."""


class ConnectionFailed(DriverError):
    """The port/URL could not be opened or the link dropped."""


class HandshakeFailed(DriverError):
    """The peer answered, but not like the firmware the profile describes."""


class NotReady(DriverError):
    """The command does not fit the driver's state (start while running, resume while idle...)."""


class Driver(ABC):
    """One machine behind one connection.

    Methods are thread-safe and return quickly; a driver does its I/O on its own thread(s) and
    reports through `on_event`, which is called from those threads (the hub's coordinator hops
    onto its event loop). `close()` is idempotent. Usable alone::

        d = MarlinDriver(get_profile("prusa-mk3s"), "/dev/pts/5", on_event=print)
        d.connect(); d.start_job("j1", Path("cube.gcode"))
    """

    protocol: ClassVar[str]

    def __init__(self, profile: Profile, connection: str, *, on_event: EventCallback | None = None) -> None:
        self.profile = profile
        self.connection = connection
        self._on_event = on_event
        self._status = DriverStatus()
        self._status_lock = threading.Lock()

    @property
    def status(self) -> DriverStatus:
        return self._status

    def _set_status(self, **changes: object) -> DriverStatus:
        with self._status_lock:
            self._status = replace(self._status, **changes)  # type: ignore[arg-type]
            status = self._status
        self._emit(StatusChanged(status))
        return status

    def _emit(self, event: DriverEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    @abstractmethod
    def connect(self, timeout: float = 10.0) -> None:
        """Open the link and handshake; raises ConnectionFailed / HandshakeFailed."""

    @abstractmethod
    def start_job(self, job_id: str, path: Path, total_lines: int | None = None) -> None:
        """Begin streaming `path` (read from disk as it goes). Raises NotReady unless idle."""

    @abstractmethod
    def pause(self) -> None: ...

    @abstractmethod
    def resume(self) -> None: ...

    @abstractmethod
    def cancel(self) -> None:
        """Stop the job; the machine stays usable (heaters off per the profile's cancel commands)."""

    @abstractmethod
    def emergency_stop(self) -> None:
        """Stop now, bypassing every queue and window (Marlin M112, GRBL 0x18)."""

    @abstractmethod
    def close(self) -> None:
        """Release the link; idempotent. A job still running ends as `interrupted`."""

    def reset_after_error(self) -> None:
        """A technician dealt with an error or an emergency stop: what the device itself needs to take
        jobs again. Nothing by default: a halted Marlin is reset by reconnecting (DTR), and a GRBL alarm
        is lifted only by its own explicit unlock (`$X`), a safety decision of its own."""
        return None
