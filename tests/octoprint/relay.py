"""A TCP relay in front of the real OctoPrint that can cut and refuse its push socket, REST untouched."""

from __future__ import annotations

import contextlib
import socket
import threading


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class PushCutter:
    """Every byte goes to and comes from OctoPrint (no fake): REST passes; the push socket
    (`/sockjs/…`) can be cut (`cut()`: open sockets closed, new ones refused) and let through again
    (`restore()`). What a network dropping long-lived connections, or a reverse proxy without
    WebSocket support, does to a hub."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._refuse = threading.Event()
        self._lock = threading.Lock()
        self._push: set[socket.socket] = set()
        self._open: set[socket.socket] = set()
        self.refused = 0  # push sockets turned away while cut

    def __enter__(self) -> PushCutter:
        threading.Thread(target=self._accept, name="push-cutter", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._open:
                _shut(sock)

    def cut(self) -> None:
        self._refuse.set()
        with self._lock:
            for sock in self._push:
                _shut(sock)

    def restore(self) -> None:
        self._refuse.clear()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        head = b""
        with conn:
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk or len(head) > 65536:
                    return
                head += chunk
            parts = head.split(b" ", 2)
            push = len(parts) > 1 and parts[1].startswith(b"/sockjs")
            if push and self._refuse.is_set():
                self.refused += 1
                return
            with socket.create_connection(self._upstream, timeout=5) as upstream:
                upstream.settimeout(None)
                upstream.sendall(head)
                pair = {conn, upstream}
                with self._lock:
                    self._open |= pair
                    if push:
                        self._push |= pair
                back = threading.Thread(target=self._pump, args=(upstream, conn), daemon=True)
                back.start()
                self._pump(conn, upstream)
                back.join()
                with self._lock:
                    self._open -= pair
                    self._push -= pair

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shut(src)
            _shut(dst)
