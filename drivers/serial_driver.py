"""SerialDriver: the port, the reader thread, the handshake, lost links, close and status batching of serial drivers."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from abc import abstractmethod
from typing import ClassVar, Generic, TypeVar

import serial

from drivers.base import (
    ConnectionChanged,
    ConnectionFailed,
    Driver,
    DriverError,
    DriverState,
    EventCallback,
    HandshakeFailed,
    JobEnded,
    JobOutcome,
    NotReady,
)
from drivers.profiles import Profile
from drivers.serial_link import open_serial

R = TypeVar("R")  # what the reader parses a line into
L = TypeVar("L")  # what the handshake's queue gets when the link drops
F = TypeVar("F")  # what the handshake learns about the firmware

STATUS_MIN_INTERVAL_S = 0.1  # progress snapshots at most 10 per second


class SerialDriver(Driver, Generic[R, L, F]):
    """A driver on one serial link, with a reader thread (started by `connect()`) and a sender thread
    (started once the handshake succeeded). The protocol subclass parses lines (`_parse_reply`), acts on
    them (`_on_reply`), runs the handshake and the sender, and says what its status snapshots carry.

    Until the handshake is over, replies go to `_handshake_replies` instead of `_on_reply`.
    """

    encoding: ClassVar[str] = "utf-8"  # how the firmware's lines are decoded

    def __init__(self, profile: Profile, connection: str, *, on_event: EventCallback | None = None) -> None:
        super().__init__(profile, connection, on_event=on_event)
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)  # the sender sleeps on it
        self._ser: serial.SerialBase | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._handshake_replies: queue.Queue[R | L] | None = None
        self._online = False
        # coalesced status
        self._dirty = False
        self._last_status = 0.0
        # the job
        self._job_id: str | None = None
        self._job_acked = 0

    # -- what the protocol provides ------------------------------------------------------------

    @abstractmethod
    def _parse_reply(self, text: str) -> R:
        """One stripped, non-empty line from the firmware."""

    @abstractmethod
    def _on_reply(self, reply: R) -> None:
        """Called on the reader thread with the lock held, once the handshake is over."""

    @abstractmethod
    def _handshake(self, deadline: float) -> F:
        """Run the handshake over `_handshake_replies` and `_write`; raises HandshakeFailed."""

    @abstractmethod
    def _connected(self, facts: F) -> None:
        """With the lock held, after the handshake: set up flow control and the status."""

    @abstractmethod
    def _send_loop(self) -> None:
        """The sender thread."""

    @abstractmethod
    def _lost_reply(self, text: str) -> L:
        """What a handshake waiting for a reply gets when the link drops."""

    @abstractmethod
    def _progress(self) -> dict[str, object]:
        """The status fields, besides `lines_acked`, that a coalesced snapshot refreshes."""

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    # -- connect and close ---------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._ser is not None:
                raise NotReady("already connected")
            self._set_status(state=DriverState.CONNECTING, message=None)
        try:
            ser = open_serial(self.connection, self.profile.baud)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._set_status(state=DriverState.DISCONNECTED, message=str(exc))
            raise ConnectionFailed(f"cannot open {self.connection}: {exc}") from exc
        self._stop.clear()
        self._ser = ser
        self._handshake_replies = queue.Queue()
        reader = threading.Thread(
            target=self._read_loop, name=f"{self.protocol}-read {self.connection}", daemon=True
        )
        self._threads = [reader]
        reader.start()
        try:
            facts = self._handshake(time.monotonic() + timeout)
        except (HandshakeFailed, ConnectionFailed) as exc:
            self._shutdown()
            self._handshake_failed(exc)
            raise
        except (serial.SerialException, OSError) as exc:
            self._shutdown()
            self._set_status(state=DriverState.DISCONNECTED, message=str(exc))
            raise ConnectionFailed(f"{self.connection}: {exc}") from exc
        with self._lock:
            self._handshake_replies = None
            self._online = True
            self._connected(facts)
            self._emit(ConnectionChanged(True))
        sender = threading.Thread(
            target=self._send_loop, name=f"{self.protocol}-send {self.connection}", daemon=True
        )
        self._threads.append(sender)
        sender.start()

    def _handshake_failed(self, exc: DriverError) -> None:
        self._set_status(state=DriverState.DISCONNECTED, message=str(exc))

    def close(self) -> None:
        with self._lock:
            if self._ser is None:
                return
            if self._job_id is not None:
                self._abandon_job()
                self._end_job("interrupted", "driver closed", DriverState.DISCONNECTED)
        self._shutdown()
        with self._lock:
            if self._online:
                self._online = False
                self._emit(ConnectionChanged(False, "closed"))
            self._set_status(state=DriverState.DISCONNECTED)

    def _abandon_job(self) -> None:
        """With the lock held, as `close()` interrupts a running job (nothing more by default)."""
        return None

    def _shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            self._wake.notify_all()
            ser, self._ser = self._ser, None
            self._stopped(lost=False)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads = []
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def _stopped(self, lost: bool) -> None:
        """With the lock held, once the link is gone (`lost`, or closed): wake whoever waits on it."""
        return None

    def _link_lost(self, reason: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            if self._job_id is not None:
                self._end_job("interrupted", f"link lost: {reason}", DriverState.DISCONNECTED)
            was_online, self._online = self._online, False
            self._stopped(lost=True)
            self._set_status(state=DriverState.DISCONNECTED, message=f"link lost: {reason}")
            if was_online:
                self._emit(ConnectionChanged(False, reason))
            self._wake.notify_all()
            if self._handshake_replies is not None:
                self._handshake_replies.put(self._lost_reply(f"link lost: {reason}"))
            ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    # -- reader thread -------------------------------------------------------------------------

    def _read_loop(self) -> None:
        ser = self._ser
        assert ser is not None
        encoding = self.encoding
        parse = self._parse_reply
        pending = b""
        try:
            while not self._stop.is_set():
                chunk = ser.read(max(1, ser.in_waiting))
                if not chunk:
                    continue
                pending += chunk
                if b"\n" not in pending:
                    continue
                *lines, pending = pending.split(b"\n")
                replies = [parse(t) for raw in lines if (t := raw.decode(encoding, "replace").strip())]
                # One lock hold and one wake-up per chunk: the sender then refills the window with
                # every slot these answers freed in a single write.
                with self._lock:
                    for reply in replies:
                        if self._handshake_replies is not None:
                            self._handshake_replies.put(reply)
                        else:
                            self._on_reply(reply)
                    self._wake.notify()
        except (serial.SerialException, OSError, TypeError) as exc:
            # pyserial raises TypeError/AttributeError-ish errors when closed under a read.
            if not self._stop.is_set():
                self._link_lost(str(exc) or type(exc).__name__)

    # -- the job's end and coalesced status ----------------------------------------------------

    def _end_job(
        self, outcome: JobOutcome, reason: str | None, state: DriverState, message: str | None = None
    ) -> None:
        """With the lock held. `message` defaults to `reason` for a failure, an interruption or ERROR."""
        job_id = self._job_id
        assert job_id is not None
        self._job_id = None
        self._forget_job()
        acked = self._job_acked
        if message is None and (outcome in ("failed", "interrupted") or state is DriverState.ERROR):
            message = reason
        self._set_status(state=state, job_id=None, lines_acked=acked, message=message, **self._progress())
        self._last_status = time.monotonic()
        self._dirty = False
        self._emit(JobEnded(job_id, outcome, acked, reason))

    def _forget_job(self) -> None:
        """With the lock held, as the job ends: drop what the sender kept of it."""
        return None

    def _flush_status(self, now: float) -> float | None:
        """Publish progress if it changed and the last snapshot is old enough; returns when to try
        again, None if nothing is waiting."""
        if not self._dirty:
            return None
        due = self._last_status + STATUS_MIN_INTERVAL_S
        if now < due:
            return due
        self._dirty = False
        self._last_status = now
        self._set_status(lines_acked=self._job_acked, **self._progress())
        return None
