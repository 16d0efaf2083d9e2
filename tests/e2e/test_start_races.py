"""A technician's click in the moment a job is `running` in the database but not yet with the driver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.profiles import get_profile
from drivers.sim.marlin import MarlinSimulator
from fabzone.hub import Hub
from tests.e2e.inprocess import one_machine, serve_hub_and_app
from tests.gcode_samples import prusa_mk3s, write
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[tuple[httpx.Client, Hub, MarlinSimulator]]:
    sim = MarlinSimulator(get_profile("prusa-mk3s"), speed=200.0)
    port = sim.start()
    config = one_machine(tmp_path, "printer-1", "marlin", port, "prusa-mk3s")
    try:
        with serve_hub_and_app(config) as (client, hub):
            wait_until(
                lambda: client.get("/api/machines/printer-1").json()["state"] == "idle", 30, what="online"
            )
            yield client, hub, sim
    finally:
        sim.stop()


def click_while_starting(hub: Hub, action: Any) -> None:
    """Runs `action` (the technician's click) when the coordinator hands the job to the driver, before
    the driver has it: the window the job is already `running` on every page."""
    driver = hub.coordinators["printer-1"].driver
    assert driver is not None
    take_job = driver.start_job

    def start_job(job_id: str, path: Path, total: int | None = None) -> None:
        action()
        take_job(job_id, path, total)

    driver.start_job = start_job  # type: ignore[method-assign]


def submit(client: httpx.Client, tmp_path: Path) -> dict[str, Any]:
    path = write(tmp_path, "cubo.gcode", prusa_mk3s(layers=40))
    with path.open("rb") as fh:
        resp = client.post("/api/jobs", files={"file": (path.name, fh)}, data={"name": "cubo"})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_emergency_stop_before_the_driver_took_the_job_cancels_it(
    printer: tuple[httpx.Client, Hub, MarlinSimulator], tmp_path: Path
) -> None:
    client, hub, sim = printer
    answers: list[int] = []
    click_while_starting(
        hub, lambda: answers.append(client.post("/api/machines/printer-1/estop").status_code)
    )
    job = submit(client, tmp_path)

    ended = wait_until(
        lambda: (
            (j := client.get(f"/api/jobs/{job['id']}").json())["state"]
            not in ("queued", "starting", "running")
            and j
        ),
        30,
        what="the job to end",
    )
    assert answers == [200]
    # Stopped by a person before a line went out: cancelled, not "interrupted" as if the link had failed.
    assert ended["state"] == "cancelled", ended
    assert ended["lines_acked"] == 0
    machine = client.get("/api/machines/printer-1").json()
    assert machine["state"] == "error"  # the firmware is halted until someone resets it
    assert sim.halted
    assert not [line for line in sim.executed if line.startswith(("G1", "M104", "M109"))]


def test_pause_in_that_moment_waits_for_the_start_instead_of_failing(
    printer: tuple[httpx.Client, Hub, MarlinSimulator], tmp_path: Path
) -> None:
    client, hub, _sim = printer
    answers: list[int] = []
    clicked = threading.Event()

    def pause() -> None:
        job_id = hub.coordinators["printer-1"].job_id
        answers.append(client.post(f"/api/jobs/{job_id}/pause").status_code)

    def click() -> None:
        threading.Thread(target=pause, daemon=True).start()
        clicked.wait(0.5)  # the request is in the hub by now, and must wait for the driver

    click_while_starting(hub, click)
    job = submit(client, tmp_path)
    wait_until(lambda: answers, 30, what="the pause to be answered")
    assert answers == [200]
    assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "paused"
    assert client.get("/api/machines/printer-1").json()["state"] == "paused"
