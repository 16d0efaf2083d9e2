"""A pseudo-terminal transport for simulators: the simulator holds the master, a driver opens the slave path."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
import tty


class LinkClosed(Exception):
    """The link was closed (by `close()`, like pulling the USB cable)."""


class PtyLink:
    """A pty pair in raw mode without echo.

    The simulator reads and writes the master; a driver opens `path` (the slave) with
    `serial.serial_for_url(path)` exactly as it would open `/dev/ttyUSB0`. The simulator also keeps
    one slave descriptor open itself, so a driver may close and reopen the port (as a reconnecting
    driver does) without the master seeing a hang-up, and the master never returns EIO before the
    first open. `close()` closes both ends: the driver's next read or write fails, as on a lost cable.
    """

    def __init__(self, *, write_stall_s: float = 1.0) -> None:
        self._master, self._slave = os.openpty()
        # Raw: no echo, no CR/LF translation, no line discipline; pyserial sets the same on open.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        # A self-pipe wakes a reader blocked in poll() when the link is closed.
        self._wake_r, self._wake_w = os.pipe()
        self._closed = False
        self._read_poller = select.poll()  # one reader thread per link
        self._read_poller.register(self._master, select.POLLIN)
        self._read_poller.register(self._wake_r, select.POLLIN)
        self._write_lock = threading.Lock()
        # Bytes a host never reads would fill the pty and block the simulator forever; after this
        # long without room the bytes are dropped, as a UART talking to no one would lose them.
        self._write_stall_s = write_stall_s
        self.bytes_discarded = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def read(self, max_bytes: int = 4096, timeout: float | None = None) -> bytes:
        """Bytes the driver wrote (at most `max_bytes`); b"" on timeout. Raises LinkClosed."""
        poller = self._read_poller
        ms = None if timeout is None else max(0, int(timeout * 1000))
        while True:
            if self._closed:
                raise LinkClosed
            events = poller.poll(ms)
            if self._closed:
                raise LinkClosed
            if not events:
                return b""
            try:
                return os.read(self._master, max_bytes)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    # No slave open at all (cannot happen while we hold one); wait and retry.
                    time.sleep(0.01)
                    continue
                raise LinkClosed from exc

    def write(self, data: bytes) -> None:
        """Write all of `data` towards the driver. Raises LinkClosed."""
        view = memoryview(data)
        with self._write_lock:
            stalled_since: float | None = None
            while view:
                if self._closed:
                    raise LinkClosed
                try:
                    n = os.write(self._master, view)
                    view = view[n:]
                    stalled_since = None
                    continue
                except BlockingIOError:
                    pass
                except OSError as exc:
                    raise LinkClosed from exc
                now = time.monotonic()
                if stalled_since is None:
                    stalled_since = now
                elif now - stalled_since > self._write_stall_s:
                    self.bytes_discarded += len(view)
                    return
                poller = select.poll()
                poller.register(self._master, select.POLLOUT)
                poller.poll(50)

    def close(self) -> None:
        """Close both ends (idempotent); a blocked `read` returns with LinkClosed."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        with self._write_lock:
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __del__(self) -> None:
        # The wake pipe outlives close() so a racing reader never polls a reused descriptor.
        for fd in (getattr(self, "_wake_r", -1), getattr(self, "_wake_w", -1)):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
