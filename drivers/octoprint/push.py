"""OctoPrint's push socket (`/sockjs/websocket`): passive login, `current` and `event` messages, re-login."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from drivers.base import DriverError
from drivers.octoprint.client import OctoPrintClient

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 5.0
# Without any message for this long the socket counts as dead: OctoPrint sends `current` about every
# 0.5 s (docs: api/push, "throttle" 1 = every 500 ms).
SILENCE_S = 5.0
Message = dict[str, Any]


class PushSocket:
    """A thread that keeps one push connection up and hands each message to `on_message`.

    `connected` is true while messages flow; the driver polls the REST API otherwise. On
    `reauthRequired` (OctoPrint's session ended, e.g. its user changed) it logs in again.
    """

    def __init__(
        self,
        client: OctoPrintClient,
        on_message: Callable[[Message], None],
        on_connected: Callable[[bool], None] | None = None,
        *,
        retry_s: float = 1.0,
    ) -> None:
        self._client = client
        self._on_message = on_message
        self._on_connected = on_connected
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._ws: Any = None
        self._thread = threading.Thread(target=self._run, name="octoprint-push", daemon=True)
        self.connected = False
        url = client.base_url
        self.url = (
            "wss://" + url[8:] if url.startswith("https://") else "ws://" + url.split("://", 1)[-1]
        ) + ("/sockjs/websocket")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            ws.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _set_connected(self, value: bool) -> None:
        if value != self.connected:
            self.connected = value
            if self._on_connected is not None:
                self._on_connected(value)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except (OSError, TimeoutError, WebSocketException, DriverError, ValueError) as exc:
                log.debug("push socket %s down: %s", self.url, exc)
            self._set_connected(False)
            self._stop.wait(self._retry_s)

    def _session(self) -> None:
        # The session of a passive login is what the socket's `auth` message carries (docs: api/push).
        name, session = self._client.login_passive()
        with connect(self.url, open_timeout=OPEN_TIMEOUT_S, close_timeout=1) as ws:
            self._ws = ws
            try:
                ws.send(json.dumps({"auth": f"{name}:{session}"}))
                # Logs and plugin messages are of no use to the hub and are the bulk of the traffic.
                ws.send(
                    json.dumps({"subscribe": {"state": {"logs": False}, "events": True, "plugins": False}})
                )
                while not self._stop.is_set():
                    raw = ws.recv(timeout=SILENCE_S)
                    message = json.loads(raw)
                    if not isinstance(message, dict):
                        continue
                    if "reauthRequired" in message:
                        log.info("OctoPrint asks for a new login on the push socket")
                        return
                    if "current" in message or "history" in message:
                        self._set_connected(True)
                    self._on_message(message)
            finally:
                self._ws = None
