"""Firmware faults mid-print, seen from the hub: a thermal runaway, a reboot. The hub runs in this process
(uvicorn in a thread) with a simulated MK3S on a pty, so the test can make the firmware fail."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.profiles import get_profile
from drivers.sim.marlin import MarlinSimulator
from tests.e2e.inprocess import one_machine, serve_hub
from tests.gcode_samples import prusa_mk3s, write
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
MACHINE = "/api/machines/printer-1"


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[tuple[httpx.Client, MarlinSimulator]]:
    # Speed 40: heating takes ~2 s and the 40 layers ~4 s, so there is time to fail in the middle.
    sim = MarlinSimulator(get_profile("prusa-mk3s"), speed=40.0)
    port = sim.start()
    config = one_machine(tmp_path, "printer-1", "marlin", port, "prusa-mk3s")
    try:
        with serve_hub(config) as client:
            wait_until(lambda: client.get(MACHINE).json()["state"] == "idle", 30, what="online")
            yield client, sim
    finally:
        sim.stop()


def submit(client: httpx.Client, path: Path, name: str) -> dict[str, Any]:
    with path.open("rb") as fh:
        resp = client.post("/api/jobs", files={"file": (path.name, fh)}, data={"name": name})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    return client.get(f"/api/jobs/{job_id}").json()  # type: ignore[no-any-return]


def wait_job_leaves(client: httpx.Client, job_id: str, states: set[str], timeout: float) -> dict[str, Any]:
    """The job once it is in none of `states`."""

    def left() -> dict[str, Any]:
        j = job(client, job_id)
        return {} if j["state"] in states else j

    return wait_until(left, timeout, 0.1, f"job {job_id} to leave {states}")


def printing(client: httpx.Client, sim: MarlinSimulator, job_id: str) -> None:
    """Wait until the job's moves are under way: heated, homed, some layers printed, progress stored."""
    assert sim.wait_for(lambda s: sum(c.startswith("G1 X") for c in s.executed) > 40, timeout=30)
    wait_until(lambda: job(client, job_id)["lines_acked"] > 0, 10, what="progress in the database")
    assert job(client, job_id)["state"] == "running"


def stays(client: httpx.Client, job_id: str, state: str, seconds: float = 1.5) -> None:
    """The job keeps `state` for `seconds`: the scheduler gives it to no machine meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert job(client, job_id)["state"] == state
        time.sleep(0.1)


def test_thermal_runaway_mid_print_fails_the_job_and_stops_the_machine(
    printer: tuple[httpx.Client, MarlinSimulator], tmp_path: Path
) -> None:
    client, sim = printer
    first = submit(client, write(tmp_path, "cubo.gcode", prusa_mk3s(layers=40)), "cubo")
    second = submit(client, write(tmp_path, "small.gcode", prusa_mk3s(layers=2)), "small")
    printing(client, sim, first["id"])
    sim.thermal_runaway()

    ended = wait_job_leaves(client, first["id"], {"running"}, 30)
    assert ended["state"] == "failed", ended
    # The firmware's own words, not a generic "machine error".
    assert ended["error"] == "Thermal Runaway, system stopped! Heater_ID: 0", ended
    assert 0 < ended["lines_acked"] < ended["lines_total"]
    wait_until(lambda: client.get(MACHINE).json()["state"] == "error", 10, what="the machine in error")
    machine = client.get(MACHINE).json()
    assert machine["state_reason"] is not None and "Thermal Runaway" in machine["state_reason"], machine
    assert machine["live"]["driver_state"] == "error"
    # A machine that stopped itself takes no job: the next one waits in the queue.
    stays(client, second["id"], "queued")
    assert client.get(MACHINE).json()["state"] == "error"
    assert sim.halted


def test_firmware_reboot_mid_print_interrupts_and_waits_for_the_bed(
    printer: tuple[httpx.Client, MarlinSimulator], tmp_path: Path
) -> None:
    client, sim = printer
    first = submit(client, write(tmp_path, "cubo.gcode", prusa_mk3s(layers=40)), "cubo")
    second = submit(client, write(tmp_path, "small.gcode", prusa_mk3s(layers=2)), "small")
    printing(client, sim, first["id"])
    sim.reset()  # watchdog or reset button: `start` and the boot lines, queue and line number lost

    ended = wait_job_leaves(client, first["id"], {"running"}, 30)
    assert ended["state"] == "interrupted", ended
    assert ended["error"] == "the firmware restarted mid-job", ended
    assert 0 < ended["lines_acked"] < ended["lines_total"]
    machine = client.get(MACHINE).json()
    assert machine["state"] == "awaiting_clear", machine
    assert machine["bed_clear"] is False
    assert machine["live"]["driver_state"] == "idle"  # the firmware is up again, but the bed is not empty
    # Half a part is on the bed: nothing starts until a technician clears it.
    stays(client, second["id"], "queued")
    assert client.get(MACHINE).json()["state"] == "awaiting_clear"

    assert client.post(f"{MACHINE}/clear", json={"result": "bad"}).status_code == 200
    done = wait_job_leaves(client, second["id"], {"queued", "starting", "running"}, 60)
    # The driver numbers from N1 again after the reboot: the next job runs to its end.
    assert done["state"] == "completed", done
    assert done["lines_acked"] == done["lines_total"]
