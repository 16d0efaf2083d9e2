"""Laser safety end to end: approval, the arming gate (no byte before arming), timeout, cancel, unlock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from drivers.profiles import get_profile
from drivers.sim.grbl import GrblSimulator
from tests.e2e.inprocess import one_machine, serve_hub
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
LASER_FILE = ROOT / "tests" / "data" / "gcode" / "lightburn_grbl_350x250.gcode"


@pytest.fixture
def laser(tmp_path: Path) -> Iterator[tuple[httpx.Client, GrblSimulator]]:
    sim = GrblSimulator(get_profile("grbl-laser-400"), speed=500.0)
    port = sim.start()
    config = one_machine(tmp_path, "laser-1", "grbl", port, "grbl-laser-400", arm_timeout_s=2.0)
    try:
        with serve_hub(config) as hub:
            wait_until(
                lambda: hub.get("/api/machines/laser-1").json()["state"] == "idle", 30, what="laser online"
            )
            yield hub, sim
    finally:
        sim.stop()


def job_lines_sent(sim: GrblSimulator) -> list[str]:
    """What the simulator executed that came from a job (motion or laser commands)."""
    return [line for line in sim.executed if line[:1] in "GMXYS" and not line.startswith("$")]


def submit(hub: httpx.Client, name: str = "coaster") -> dict[str, Any]:
    with LASER_FILE.open("rb") as fh:
        resp = hub.post(
            "/api/jobs", files={"file": (LASER_FILE.name, fh)}, data={"kind": "laser", "name": name}
        )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def state(hub: httpx.Client, job_id: str) -> str:
    return hub.get(f"/api/jobs/{job_id}").json()["state"]  # type: ignore[no-any-return]


def test_nothing_reaches_an_unarmed_laser(laser: tuple[httpx.Client, GrblSimulator]) -> None:
    hub, sim = laser
    job = submit(hub)
    assert job["state"] == "pending_approval"
    assert hub.get("/api/machines/laser-1").json()["state"] == "idle"  # not queued before approval

    assert hub.post(f"/api/jobs/{job['id']}/approve").status_code == 200
    machine = wait_until(
        lambda: (m := hub.get("/api/machines/laser-1").json())["live"]["arming"] and m,
        20,
        what="waiting to arm",
    )
    assert machine["state"] == "starting" and machine["live"]["arming"]["job_id"] == job["id"]
    assert state(hub, job["id"]) == "starting"
    before = len(sim.executed)

    # Not armed in time: back to the queue (keeping its place), then offered to the laser again.
    def requeued() -> bool:
        events = [e["to_state"] for e in hub.get(f"/api/jobs/{job['id']}/events").json()]
        return events.count("queued") >= 2

    wait_until(requeued, 20, what="the arming timeout")
    assert job_lines_sent(sim) == [] and len(sim.executed) == before, "an unarmed laser received job bytes"

    wait_until(lambda: hub.get("/api/machines/laser-1").json()["live"]["arming"], 20, what="offered again")
    assert hub.post("/api/machines/laser-1/arm").status_code == 200
    done = wait_until(
        lambda: (j := hub.get(f"/api/jobs/{job['id']}").json())["state"] in {"completed", "failed"} and j,
        60,
        what="the cut",
    )
    assert done["state"] == "completed", done
    commands = [
        line for line in (ln.split(";")[0].strip() for ln in LASER_FILE.read_text().splitlines()) if line
    ]
    assert len(job_lines_sent(sim)) >= len([c for c in commands if c[:1] in "GMXYS"]) - 2
    assert hub.get("/api/machines/laser-1").json()["state"] == "awaiting_clear"
    assert sim.laser_power == 0


def test_reject_cancel_while_waiting_and_arm_needs_a_waiting_job(
    laser: tuple[httpx.Client, GrblSimulator],
) -> None:
    hub, sim = laser
    assert hub.post("/api/machines/laser-1/arm").json()["detail"]["code"] == "machine.not_awaiting_arm"

    rejected = submit(hub, "too big for the material")
    resp = hub.post(f"/api/jobs/{rejected['id']}/reject", json={"reason": "plywood only, no acrylic"})
    assert resp.status_code == 200
    ticket = hub.get(f"/api/jobs/{rejected['ticket']}").json()
    assert ticket["state"] == "rejected" and ticket["error"] == "plywood only, no acrylic"

    job = submit(hub, "cancel me")
    hub.post(f"/api/jobs/{job['id']}/approve")
    wait_until(lambda: hub.get("/api/machines/laser-1").json()["live"]["arming"], 20, what="waiting to arm")
    assert hub.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    wait_until(lambda: state(hub, job["id"]) == "cancelled", 10, what="cancelled")
    machine = hub.get("/api/machines/laser-1").json()
    assert machine["state"] == "idle" and machine["live"]["arming"] is None  # nothing was made: bed clear
    assert job_lines_sent(sim) == []


def test_alarm_mid_job_fails_it_until_a_technician_unlocks(laser: tuple[httpx.Client, GrblSimulator]) -> None:
    hub, sim = laser
    job = submit(hub)
    hub.post(f"/api/jobs/{job['id']}/approve")
    wait_until(lambda: hub.get("/api/machines/laser-1").json()["live"]["arming"], 20, what="waiting to arm")
    hub.post("/api/machines/laser-1/arm")
    wait_until(lambda: len(job_lines_sent(sim)) > 20, 20, what="cutting")
    sim.alarm(1)  # hard limit
    failed = wait_until(
        lambda: (j := hub.get(f"/api/jobs/{job['id']}").json())["state"] == "failed" and j, 20, what="failed"
    )
    assert "limit" in (failed["error"] or "").lower()
    machine = wait_until(
        lambda: (m := hub.get("/api/machines/laser-1").json())["state"] == "error" and m, 20, what="error"
    )
    assert machine["state_reason"]
    # A hard limit needs a soft reset before $X (GRBL's critical loop): the unlock does both, the
    # technician only presses it.
    assert hub.post("/api/machines/laser-1/unlock").status_code == 200
    wait_until(
        lambda: hub.get("/api/machines/laser-1").json()["state"] == "awaiting_clear", 20, what="unlocked"
    )
    assert sim.wait_for(lambda s: s.state == "Idle", timeout=10)  # the board takes commands again


def test_door_opened_mid_cut_pauses_the_job_until_resumed(laser: tuple[httpx.Client, GrblSimulator]) -> None:
    hub, sim = laser
    job = submit(hub)
    hub.post(f"/api/jobs/{job['id']}/approve")
    wait_until(lambda: hub.get("/api/machines/laser-1").json()["live"]["arming"], 20, what="waiting to arm")
    hub.post("/api/machines/laser-1/arm")
    wait_until(lambda: len(job_lines_sent(sim)) > 20, 20, what="cutting")
    sim.open_door()
    wait_until(lambda: state(hub, job["id"]) == "paused", 20, what="the job paused by the door")
    machine = hub.get("/api/machines/laser-1").json()
    assert machine["state"] == "paused" and "door" in (machine["live"]["message"] or "").lower()
    assert sim.laser_power == 0
    sim.close_door()
    # The driver refuses to resume while it still sees the door open; it tells when it is closed.
    wait_until(
        lambda: "closed" in (hub.get("/api/machines/laser-1").json()["live"]["message"] or ""),
        20,
        what="door closed",
    )
    resp = hub.post(f"/api/jobs/{job['id']}/resume")
    assert resp.status_code == 200, resp.text
    wait_until(lambda: state(hub, job["id"]) in {"running", "completed"}, 20, what="resumed")
    done = wait_until(
        lambda: (j := hub.get(f"/api/jobs/{job['id']}").json())["state"] in {"completed", "failed"} and j,
        60,
        what="the cut",
    )
    assert done["state"] == "completed", done


def test_pages_hear_that_the_job_left_the_queue_while_the_laser_waits_to_be_armed(
    laser: tuple[httpx.Client, GrblSimulator],
) -> None:
    hub, _sim = laser
    job = submit(hub)
    url = str(hub.base_url).replace("http://", "ws://") + "/api/events"
    with connect(url, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        assert hub.post(f"/api/jobs/{job['id']}/approve").status_code == 200

        def job_events() -> list[dict[str, Any]]:
            seen = []
            while True:
                try:
                    event = json.loads(ws.recv(timeout=0.2))
                except TimeoutError:
                    return seen
                if event.get("type") == "job" and event["data"]["id"] == job["id"]:
                    seen.append(event["data"])

        found: list[dict[str, Any]] = []
        wait_until(
            lambda: found.extend(job_events()) or any(j["state"] == "starting" for j in found),
            20,
            what="a job event: starting, on the laser",
        )
        starting = next(j for j in found if j["state"] == "starting")
        assert starting["machine_id"] == "laser-1"
    assert hub.get("/api/machines/laser-1").json()["live"]["arming"]["job_id"] == job["id"]
