"""A second client of the real OctoPrint's push socket, the tests' witness of what OctoPrint did."""

from __future__ import annotations

import json
import threading
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from drivers.octoprint.client import OctoPrintClient
from drivers.octoprint.push import push_url
from tests.octoprint.server import OctoPrintServer
from tests.support import wait_until

EVENTS = ["Upload", "PrintStarted", "PrintDone", "PrintFailed", "PrintCancelled"]


class OctoPrintEvents:
    """Every print event OctoPrint fires while the block runs, as OctoPrint saw it (a job file deleted
    afterwards is still counted). No keepalive ping and no receive timeout: the TCP connection
    outlives a SIGSTOP of OctoPrint, so nothing fired around an outage is missed. `dropped` says the
    connection ended early anyway; a test that counts asserts it did not."""

    def __init__(self, op: OctoPrintServer) -> None:
        self._op = op
        self._ws: Connection | None = None
        self._logged_in = threading.Event()
        self._stopping = False
        self.dropped = False
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._thread = threading.Thread(target=self._run, name="octoprint-events", daemon=True)

    def __enter__(self) -> OctoPrintEvents:
        self._thread.start()
        wait_until(self._logged_in.is_set, 20, 0.05, "the test's own push socket to log in")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        if self._ws is not None:
            self._ws.close()
        self._thread.join(timeout=5)

    def count(self, kind: str, name: str) -> int:
        return sum(1 for k, payload in self.seen if k == kind and payload.get("name") == name)

    def _run(self) -> None:
        client = OctoPrintClient(self._op.url, self._op.api_key)
        try:
            user, session = client.login_passive()
        finally:
            client.close()
        try:
            with connect(push_url(self._op.url), ping_interval=None, close_timeout=1) as ws:
                self._ws = ws
                ws.send(json.dumps({"auth": f"{user}:{session}"}))
                ws.send(
                    json.dumps({"subscribe": {"state": {"logs": False, "messages": False}, "events": EVENTS}})
                )
                while True:
                    message = json.loads(ws.recv())
                    if "history" in message or "current" in message:
                        self._logged_in.set()  # OctoPrint sends status only to a logged-in socket
                    event = message.get("event")
                    if isinstance(event, dict):
                        self.seen.append((str(event.get("type")), event.get("payload") or {}))
        except (ConnectionClosed, OSError):
            self.dropped = not self._stopping
