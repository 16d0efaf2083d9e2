"""What every simulator does around its I/O-free core: the pty, the wire's baud, the threads, start/stop."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Generic, Self, TypeVar

from drivers.sim.pty_link import LinkClosed, PtyLink

P = TypeVar("P")  # what the firmware thread writes once it has let go of the lock


class Wire:
    """One direction of a UART at `baud` (10 bits a byte): when the bytes queued now have arrived."""

    def __init__(self, baud: int | None) -> None:
        self.rate = baud / 10.0 if baud else None
        self._free_at = 0.0

    def arrival(self, nbytes: int, now: float, *, back_to_back: bool = False) -> float:
        """Time at which `nbytes` sent now (after what is already on the wire) have arrived.

        `back_to_back`: these bytes were already waiting, so the wire never went idle (the time this
        thread overslept must not be lost, or the simulated wire would run slower than its baud).
        """
        if self.rate is None:
            return now
        start = self._free_at if back_to_back else max(self._free_at, now)
        self._free_at = start + nbytes / self.rate
        return self._free_at

    def chunk(self) -> int:
        # Read about 2 ms of wire at a time, so bytes reach the RX buffer in a realistic trickle.
        return 4096 if self.rate is None else max(1, int(self.rate * 0.002))


class SimTransport(ABC, Generic[P]):
    """A simulator's link to its host: subclasses feed the firmware core in `_received` and run it.

    One lock guards the firmware state; two conditions on it so a waiting test (`_changed`) never
    steals the wake-up meant for the firmware thread (`_wake`).
    """

    thread_prefix: ClassVar[str]  # threads are named `<prefix>-rx`, `<prefix>-fw`...

    def __init__(self, baud: int | None) -> None:
        self.baud = baud
        self._lock = threading.RLock()  # `stats` may be read inside wait_for()
        self._wake = threading.Condition(self._lock)
        self._changed = threading.Condition(self._lock)
        self._write_lock = threading.Lock()
        self._rx = Wire(baud)
        self._tx = Wire(baud)
        self._link: PtyLink | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._fw_deadline: float | None = None  # when the sleeping firmware thread wakes by itself
        self.port: str | None = None

    def wait_for(self, predicate: Callable[[Self], bool], timeout: float) -> bool:
        """Wait until `predicate(sim)` holds (checked on every change, and every 50 ms)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
            return True

    # -- life cycle ------------------------------------------------------------------------------------

    def _open_link(self) -> str:
        if self._link is not None:
            raise RuntimeError("simulator already started")
        self._link = PtyLink()
        self.port = self._link.path
        return self.port

    def _start_threads(self, targets: list[tuple[Callable[[], None], str]]) -> None:
        for target, name in targets:
            thread = threading.Thread(target=target, name=f"{self.thread_prefix}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads and close the pty (idempotent)."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            self._changed.notify_all()
        self._wake_others()
        if self._link is not None:
            self._link.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        self._threads.clear()

    def _wake_others(self) -> None:
        """Wake threads that sleep on something other than the firmware lock (none by default)."""
        return None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @abstractmethod
    def start(self) -> str:
        """Open the pty, start the threads, boot the firmware; returns the path a host opens."""

    def disconnect(self) -> None:
        """Close the pty, like pulling the USB cable: the driver's next read or write fails."""
        if self._link is not None:
            self._link.close()

    # -- the reader thread -----------------------------------------------------------------------------

    def _read_loop(self) -> None:
        """Reads the pty all the time, paced by the wire; each chunk goes to `_received`."""
        link = self._link
        assert link is not None
        wire = self._rx
        size = wire.chunk()
        full = False
        while not self._stopping:
            try:
                chunk = link.read(size)
            except LinkClosed:
                return
            if not chunk:
                continue
            if wire.rate is not None:
                # The bytes reach the board only after their time on the wire.
                arrive = wire.arrival(len(chunk), time.monotonic(), back_to_back=full)
                delay = arrive - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            full = len(chunk) == size
            self._received(chunk)

    @abstractmethod
    def _received(self, chunk: bytes) -> None:
        """Bytes that reached the board (called on the reader thread, without the lock)."""

    # -- the firmware thread ---------------------------------------------------------------------------

    def _firmware_loop(self) -> None:
        """Runs the core whenever it has work (`_wake`) or a deadline passes; writes outside the lock."""
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = time.monotonic()
                out, deadline = self._step(now)
                self._changed.notify_all()
                if out is None:
                    self._fw_deadline = deadline
                    self._wake.wait(None if deadline is None else max(0.0, deadline - now))
                    self._fw_deadline = None
                    continue
            self._write_out(out)

    @abstractmethod
    def _step(self, now: float) -> tuple[P | None, float | None]:
        """With the lock held: run the core; what to write (None: nothing) and when to run it next."""

    @abstractmethod
    def _write_out(self, out: P) -> None:
        """Write what `_step` produced (on the firmware thread, without the lock)."""
