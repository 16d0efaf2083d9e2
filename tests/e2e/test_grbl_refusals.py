"""A laser the GRBL driver refuses (laser mode off, a work offset) is `error` with the driver's reason in
the hub, takes no job, and an unlock answers 409 with that reason (not "offline")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import serial

from drivers.profiles import get_profile
from drivers.sim.grbl import GrblSimulator
from tests.e2e.inprocess import one_machine, serve_hub
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
LASER_FILE = ROOT / "tests" / "data" / "gcode" / "lightburn_grbl_350x250.gcode"


def set_g54(port: str, x: float) -> None:
    """A technician sets G54 with another program before the hub connects (G10 L2 P1: EEPROM)."""
    with serial.serial_for_url(port, baudrate=115200, timeout=0.05) as link:
        link.write(f"G10 L2 P1 X{x:g}\n".encode("ascii"))
        buf = b""
        deadline = time.monotonic() + 5
        while b"ok" not in buf:
            assert time.monotonic() < deadline, buf
            buf += link.read(64)


@pytest.fixture
def refused_laser(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[httpx.Client, GrblSimulator]]:
    settings: dict[int, float] = request.param.get("settings", {})
    sim = GrblSimulator(get_profile("grbl-laser-400"), speed=500.0, settings=settings)
    port = sim.start()
    if "g54_x" in request.param:
        set_g54(port, request.param["g54_x"])
    config = one_machine(tmp_path, "laser-1", "grbl", port, "grbl-laser-400", arm_timeout_s=2.0)
    try:
        with serve_hub(config) as hub:
            yield hub, sim
    finally:
        sim.stop()


def job_lines_sent(sim: GrblSimulator) -> list[str]:
    return [line for line in sim.executed if line[:1] in "GMXYS" and not line.startswith("G10")]


def submit_and_approve(hub: httpx.Client) -> dict[str, Any]:
    with LASER_FILE.open("rb") as fh:
        resp = hub.post("/api/jobs", files={"file": (LASER_FILE.name, fh)}, data={"kind": "laser"})
    assert resp.status_code == 201, resp.text
    job: dict[str, Any] = resp.json()
    assert hub.post(f"/api/jobs/{job['id']}/approve").status_code == 200
    return job


@pytest.mark.parametrize(
    ("refused_laser", "words"),
    [({"settings": {32: 0}}, "$32=0"), ({"g54_x": 12.5}, "G54 X12.5")],
    indirect=["refused_laser"],
    ids=["laser-mode-off", "g54-offset"],
)
def test_refused_laser_is_in_error_with_the_reason_and_gets_no_job(
    refused_laser: tuple[httpx.Client, GrblSimulator], words: str
) -> None:
    hub, sim = refused_laser
    machine = wait_until(
        lambda: (m := hub.get("/api/machines/laser-1").json())["state"] == "error" and m, 30, what="error"
    )
    assert words in (machine["state_reason"] or ""), machine
    assert words in (machine["live"]["message"] or ""), machine["live"]

    job = submit_and_approve(hub)
    time.sleep(3.0)  # longer than the arm timeout: a job handed out would have shown by now
    got = hub.get(f"/api/jobs/{job['id']}").json()
    assert got["state"] == "queued" and got["machine_id"] is None, got
    machine = hub.get("/api/machines/laser-1").json()
    assert machine["state"] == "error" and machine["live"]["arming"] is None, machine
    assert job_lines_sent(sim) == []

    # Unlocking cannot help: the technician reads why, in their language, instead of "not connected".
    resp = hub.post("/api/machines/laser-1/unlock", headers={"Accept-Language": "it"})
    assert resp.status_code == 409, resp.text
    detail = resp.json()["detail"]
    assert detail["code"] == "machine.not_ready"
    assert words in detail["params"]["reason"] and words in detail["message"]
    assert detail["message"].startswith("La macchina laser-1")
    assert hub.get("/api/machines/laser-1").json()["state"] == "error"
