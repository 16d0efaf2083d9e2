"""Submissions while many pages read: nothing waits for SQLite's write lock on the event loop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.inprocess import serve_hub
from tests.gcode_samples import prusa_mk3s

pytestmark = pytest.mark.timeout(120)


def test_submissions_under_a_hall_of_readers(tmp_path: Path) -> None:
    # A kiosk submits while a dozen pages poll the lists. Before submissions wrote from a worker
    # thread, the hub froze for busy_timeout (15 s) and answered 500 "database is locked".
    gcode = prusa_mk3s(layers=3).encode()
    config = {
        "hub": {"data_dir": str(tmp_path / "data"), "submit_per_minute": 0},
        "machines": [
            {"id": "p", "name": "P", "port": str(tmp_path / "no-such-port"), "profile": "prusa-mk3s"}
        ],
    }
    with serve_hub(config) as hub:
        stop = threading.Event()
        failures: list[int] = []

        def page() -> None:
            with httpx.Client(base_url=hub.base_url, timeout=60) as client:
                while not stop.is_set():
                    for path in ("/api/jobs", "/api/machines"):
                        status = client.get(path).status_code
                        if status != 200:
                            failures.append(status)

        readers = [threading.Thread(target=page, daemon=True) for _ in range(12)]
        for reader in readers:
            reader.start()
        try:
            slowest, answers = 0.0, []
            for i in range(30):
                started = time.monotonic()
                resp = hub.post("/api/jobs", files={"file": ("c.gcode", gcode)}, data={"name": f"job {i}"})
                answers.append(resp.status_code)
                slowest = max(slowest, time.monotonic() - started)
        finally:
            stop.set()
            for reader in readers:
                reader.join(timeout=30)
        assert answers == [201] * 30
        assert failures == []
        assert slowest < 5, f"a submission took {slowest:.1f} s"
        assert len(hub.get("/api/jobs", params={"limit": 100}).json()) == 30
