"""Live updates against a real demo hub: status coalesced to ≤ 4/s per machine, temperature history,
maintenance, and a WebSocket client that stops reading is dropped while the others are served."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.sync.client import connect

from fabzone.api import create_app
from fabzone.config import build_settings
from tests.api.test_permissions import parse_metrics
from tests.gcode_samples import prusa_mk3s, write
from tests.support import Hub, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def demo(tmp_path: Path) -> Hub:
    args = [
        "demo",
        "--data-dir",
        str(tmp_path / "data"),
        "--printers",
        "2",
        "--lasers",
        "0",
        "--sim-speed",
        "400",
    ]
    return Hub(args, tmp_path).start()


@pytest.fixture
def hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    h = demo(tmp_path)
    yield h
    h.close()


def test_status_events_are_coalesced_per_machine(hub: Hub, tmp_path: Path) -> None:
    job = hub.submit(write(tmp_path, "long.gcode", prusa_mk3s(layers=150)), name="busy").json()
    hub.wait_job(job["id"], {"running"}, timeout=30)
    wait_until(lambda: (hub.job(job["id"])["lines_acked"] or 0) > 0, 20, what="progress")
    status_at: dict[str, list[float]] = defaultdict(list)
    with connect(f"ws://127.0.0.1:{hub.port}/api/events", open_timeout=10) as ws:
        json.loads(ws.recv(timeout=10))  # hello
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                event = json.loads(ws.recv(timeout=1))
            except TimeoutError:
                continue
            if event["type"] == "status":
                status_at[event["data"]["machine_id"]].append(event["at"])
    busy = status_at["printer-1"]
    # The simulated printer reports far more often than this (every acknowledged line moves progress).
    assert len(busy) >= 8, status_at
    for machine, times in status_at.items():
        per_second = Counter(int(t) for t in times)
        assert max(per_second.values()) <= 4, (machine, per_second)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps, default=1) >= 0.2, (machine, gaps)
    assert hub.http.post(f"/api/jobs/{job['id']}/cancel").status_code == 200

    samples = hub.anon.get("/api/machines/printer-1/temperatures?seconds=600").json()
    assert len(samples) >= 2 and {"t", "T", "B"} <= set(samples[-1])
    assert set(samples[-1]["T"]) == {"actual", "target"}
    times = [s["t"] for s in samples]
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(times)), times


def test_machine_in_maintenance_takes_no_job(hub: Hub, tmp_path: Path) -> None:
    assert hub.proc is not None and f"technician token: {hub.tech_token}" in hub.proc.output()
    assert hub.anon.post("/api/machines/printer-1/maintenance", json={"on": True}).status_code == 401
    on = hub.http.post("/api/machines/printer-1/maintenance", json={"on": True})
    assert on.status_code == 200 and on.json()["state"] == "maintenance"
    # Only printer-1 (the MK3S) fits this file.
    job = hub.submit(write(tmp_path, "a.gcode", prusa_mk3s(layers=2)), name="waits").json()
    assert job["profiles"] == ["prusa-mk3s"]
    deadline = time.monotonic() + 2  # bounded look for something that must not happen
    while time.monotonic() < deadline:
        assert hub.job(job["id"])["state"] == "queued"
        time.sleep(0.2)
    off = hub.http.post("/api/machines/printer-1/maintenance", json={"on": False})
    assert off.status_code == 200 and off.json()["state"] == "idle"
    assert hub.wait_job(job["id"], {"running", "completed"}, timeout=30)["machine_id"] == "printer-1"


def stalled_websocket(port: int) -> socket.socket:
    """A real WebSocket client that completes the handshake and then never reads again; a tiny receive
    buffer so the hub's writes back up quickly."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: read the handshake answer and nothing of what follows
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


@contextmanager
def hub_in_thread(tmp_path: Path) -> Iterator[tuple[Any, asyncio.AbstractEventLoop, int]]:
    """A real uvicorn server with the hub (machines whose ports do not exist), on an event loop the test
    can hand work to: publishing big events by the thousand needs no printer."""
    settings = build_settings(
        {
            "hub": {"data_dir": str(tmp_path / "data"), "ws_queue_size": 50},
            "machines": [{"id": "m", "name": "M", "port": "/nonexistent/m", "profile": "prusa-mk3s"}],
        },
        "test",
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, what="the hub to start")
        yield app.state.hub, loop, port
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        loop.close()


def test_slow_client_is_dropped_and_others_are_served(tmp_path: Path) -> None:
    with (
        hub_in_thread(tmp_path) as (hub, loop, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as http,
    ):

        def metric(name: str) -> float:
            return parse_metrics(http.get("/metrics").text)[name]

        async def publish(n: int) -> None:
            for i in range(n):
                hub.bus.publish("test", {"i": i, "pad": "x" * 32_000})
                await asyncio.sleep(0.005)  # a busy hall's pace, not a burst no client could take

        received: list[int] = []
        stop = threading.Event()
        # No keepalive pings: on a loaded test machine a late pong must not end the reading client.
        with connect(f"ws://127.0.0.1:{port}/api/events", open_timeout=10, ping_interval=None) as good:
            first = json.loads(good.recv(timeout=10))["seq"]

            def read_good() -> None:
                while not stop.is_set():
                    try:
                        received.append(json.loads(good.recv(timeout=0.5))["seq"])
                    except TimeoutError:
                        continue

            reader = threading.Thread(target=read_good, daemon=True)
            reader.start()
            slow = stalled_websocket(port)
            wait_until(lambda: metric("fabzone_websocket_clients") == 2, 10, what="both clients subscribed")
            deadline = time.monotonic() + 120
            while metric("fabzone_websocket_dropped_clients_total") < 1:
                assert time.monotonic() < deadline, "the stalled client was never dropped"
                asyncio.run_coroutine_threadsafe(publish(20), loop).result(timeout=60)
                seq = hub.bus.seq
                wait_until(
                    lambda s=seq: received and received[-1] >= s, 60, what="the good client to keep up"
                )
            assert metric("fabzone_websocket_clients") == 1  # the stalled one went, the reader stays
            last = hub.bus.seq
            # The hub still answers, and the reading client gets every event, in order.
            assert http.get("/api/health").status_code == 200
            wait_until(lambda: received and received[-1] >= last, 60, what="the good client to catch up")
            stop.set()
            reader.join(timeout=10)
        assert received[: last - first] == list(range(first + 1, last + 1))
        assert metric("fabzone_events_sent_total") >= last - first
        # Once it reads again, the stalled client finds what was queued and then a close: reconnect.
        data = b""
        deadline = time.monotonic() + 60
        slow.settimeout(2)
        while b"too slow" not in data and time.monotonic() < deadline:
            try:
                chunk = slow.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                break
            data += chunk
        slow.close()
        assert b"too slow" in data
        wait_until(lambda: metric("fabzone_websocket_clients") == 0, 10, what="both clients gone")
