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
# The wait before a new socket after one failed (see PushSocket._run).
RETRY_S = 1.0
MAX_RETRY_S = 10.0
Message = dict[str, Any]


def push_url(base_url: str) -> str:
    """OctoPrint's push socket for its base URL (http -> ws, https -> wss)."""
    host = base_url.rstrip("/").split("://", 1)[-1]
    return ("wss://" if base_url.startswith("https://") else "ws://") + host + "/sockjs/websocket"


class PushSocket:
    """A thread that keeps one push connection up and hands each message to `on_message`.

    `connected` is true while messages flow; the driver polls the REST API otherwise. OctoPrint sends
    `history` and `current` only to a socket whose user has the STATUS permission (anonymous ones
    get nothing), so `connected` also means logged in. On `reauthRequired` (OctoPrint sends it when
    the socket's user was modified — password, groups, permissions —, logged out or its session went
    stale) it opens a new socket with a new passive login at once.
    """

    def __init__(self, client: OctoPrintClient, on_message: Callable[[Message], None]) -> None:
        self._client = client
        self._on_message = on_message
        self._stop = threading.Event()
        self._ws: Any = None
        self._thread = threading.Thread(target=self._run, name="octoprint-push", daemon=True)
        self.connected = False
        # Read-only counters for the driver's `following` (and its tests): sockets that logged in,
        # `reauthRequired` messages and the last one's reason.
        self.logins = 0
        self.reauths = 0
        self.last_reauth_reason: str | None = None
        self.url = push_url(client.base_url)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            ws.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # Each attempt is a passive login (a session and a login event on OctoPrint): behind a proxy
        # that refuses WebSockets, a try a second would fill OctoPrint's log. The wait doubles up to
        # 10 s while the socket keeps failing (the driver polls meanwhile) and resets once it works.
        wait = RETRY_S
        while not self._stop.is_set():
            again_now = False
            logins = self.logins
            try:
                again_now = self._session()
            except (OSError, TimeoutError, WebSocketException, DriverError, ValueError) as exc:
                log.debug("push socket %s down: %s", self.url, exc)
            self.connected = False
            wait = RETRY_S if self.logins != logins else min(wait * 2, MAX_RETRY_S)
            if not again_now:
                self._stop.wait(wait)

    def _session(self) -> bool:
        """One socket, from login to its end; True: OctoPrint asked for a new login (do it now)."""
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
                logged_in = False
                while not self._stop.is_set():
                    raw = ws.recv(timeout=SILENCE_S)
                    message = json.loads(raw)
                    if not isinstance(message, dict):
                        continue
                    if "reauthRequired" in message:
                        payload = message["reauthRequired"]
                        reason = payload.get("reason") if isinstance(payload, dict) else None
                        self.reauths += 1
                        self.last_reauth_reason = str(reason) if reason else None
                        log.info("OctoPrint asks for a new login on the push socket (%s)", reason)
                        # Before any data on this socket the login itself was refused (a stale
                        # session): retry after the usual pause, not in a tight loop.
                        return logged_in
                    if "current" in message or "history" in message:
                        if not logged_in:
                            logged_in = True
                            self.logins += 1
                        self.connected = True
                    self._on_message(message)
                return False
            finally:
                self._ws = None
