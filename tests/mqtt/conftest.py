"""Fixtures for the MQTT tests: a Mosquitto of our own, a file server, a recorder of every payload."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.mqtt.broker import MOSQUITTO, Mosquitto


def require_mosquitto() -> None:
    """Per test, not per module: the tests that need no broker (signatures, the demo's embedded amqtt)
    run without one. In CI (env CI set) a missing broker is a broken setup and fails."""
    if not Path(MOSQUITTO).exists():
        missing = f"{MOSQUITTO} missing: apt-get install mosquitto (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    require_mosquitto()
    b = Mosquitto(tmp_path).start()
    yield b
    b.kill()


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory and the http:// base it is served at (stands in for the hub's /api/files)."""
    root = tmp_path / "files"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


class SlowServer:
    """A slow link to the files: each answer sends its headers and the first half of the body at once,
    then holds the rest until `release()`, so a device stays mid-download for as long as a test
    wants. Serves `root` (like `file_server`), or, with `upstream`, forwards to that base URL (a
    slow path to the hub's own /api/files, named by the hub's `public_url`)."""

    def __init__(self, root: Path, upstream: str | None = None) -> None:
        self.root = root
        self.upstream = upstream
        self.requests: list[str] = []
        self.started = threading.Event()  # a download has its first half
        self._gate = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                status, body = outer._fetch(self.path)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                outer.started.set()
                outer._gate.wait(30)
                with contextlib.suppress(OSError):  # the device may have given up on the download
                    self.wfile.write(body[half:])

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _fetch(self, path: str) -> tuple[int, bytes]:
        if self.upstream is None:
            file = self.root / path.lstrip("/").split("?")[0]
            return (200, file.read_bytes()) if file.is_file() else (404, b"")
        try:
            with urllib.request.urlopen(self.upstream + path, timeout=10) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def release(self) -> None:
        self._gate.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def slow_files(tmp_path: Path) -> Iterator[SlowServer]:
    root = tmp_path / "slow-files"
    root.mkdir()
    server = SlowServer(root)
    yield server
    server.close()


class Recorder:
    """Subscribes to everything under fabzone/v1/# and keeps (topic, payload) pairs."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe("fabzone/v1/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            payload = {"raw": msg.payload.decode(errors="replace")}
        with self._lock:
            self.messages.append((msg.topic, payload, bool(msg.retain)))

    def on(self, suffix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith("/" + suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def recorder(broker: Mosquitto) -> Iterator[Recorder]:
    r = Recorder(broker.port)
    yield r
    r.close()
