"""MQTT machines driven through the hub's API, as technicians and makers use them: cancel, a laser's
approval and arming, an emergency stop and the reset after it, a reboot in the middle of a download."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.sim.mqtt import MqttDevice
from tests.e2e.inprocess import serve_hub
from tests.gcode_samples import prusa_mk3s, write
from tests.mqtt.broker import Mosquitto
from tests.mqtt.conftest import Recorder, SlowServer
from tests.support import ROOT, free_port, wait_until

pytestmark = [pytest.mark.timeout(120)]
LASER_FILE = ROOT / "tests" / "data" / "gcode" / "lightburn_grbl_350x250.gcode"
ENDED = {"completed", "failed", "cancelled", "interrupted"}


@contextmanager
def hall(
    broker: Mosquitto,
    tmp_path: Path,
    kind: str = "printer",
    *,
    lines_per_s: float = 300.0,
    port: int | None = None,
    public_url: str | None = None,
) -> Iterator[tuple[httpx.Client, MqttDevice]]:
    """A hub with one simulated MQTT machine `mq-1` (a printer or a laser), online and idle."""
    device = MqttDevice(broker.url, "hall", "mq-1", kind, lines_per_s=lines_per_s, report_hz=5)
    device.start()
    assert device.connected.wait(5)
    hub: dict[str, Any] = {
        "site": "hall",
        "port": port or free_port(),  # the device downloads its job from the hub: it must know the port
        "data_dir": str(tmp_path / "data"),
        "mqtt_url": broker.url,
    }
    if public_url:
        hub["public_url"] = public_url
    profile = "grbl-laser-400" if kind == "laser" else "prusa-mk3s"
    config = {"hub": hub, "machines": [{"id": "mq-1", "name": "MQTT", "driver": "mqtt", "profile": profile}]}
    try:
        with serve_hub(config) as client:
            wait_until(lambda: machine(client)["state"] == "idle", 15, what="the machine online")
            yield client, device
    finally:
        device.stop()


def machine(client: httpx.Client) -> dict[str, Any]:
    return client.get("/api/machines/mq-1").json()  # type: ignore[no-any-return]


def job_state(client: httpx.Client, job_id: str) -> dict[str, Any]:
    return client.get(f"/api/jobs/{job_id}").json()  # type: ignore[no-any-return]


def submit(client: httpx.Client, path: Path, **data: str) -> dict[str, Any]:
    with path.open("rb") as fh:
        resp = client.post("/api/jobs", files={"file": (path.name, fh)}, data={"name": path.stem, **data})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def wait_ended(client: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job = job_state(client, job_id)
        return job if job["state"] in ENDED else None

    job = wait_until(ended, timeout, what=f"job {job_id} to end")
    assert job is not None
    return job


def test_cancel_from_the_hub_stops_the_mqtt_printer(broker: Mosquitto, tmp_path: Path) -> None:
    with hall(broker, tmp_path) as (client, device):
        job = submit(client, write(tmp_path, "cube.gcode", prusa_mk3s(layers=200)))
        wait_until(lambda: device.job and device.job["lines_done"] > 0, 15, what="printing")
        wait_until(lambda: job_state(client, job["id"])["state"] == "running", 10, what="running in the hub")
        resp = client.post(f"/api/jobs/{job['id']}/cancel")
        assert resp.status_code == 200, resp.text
        final = wait_ended(client, job["id"], 10)
        assert final["state"] == "cancelled", final
        # The device stopped: no job, nothing more printed, and it says how the job ended.
        assert device.state == "idle" and device.job is None
        assert device.last_job is not None and device.last_job["id"] == job["id"]
        assert device.last_job["outcome"] == "cancelled"
        assert [name for _, name in device.executed] == ["start", "cancel"]
        assert final["lines_acked"] < (final["lines_total"] or 0)
        assert machine(client)["state"] == "awaiting_clear"


def test_mqtt_laser_needs_approval_and_arming(broker: Mosquitto, tmp_path: Path, recorder: Recorder) -> None:
    with hall(broker, tmp_path, "laser", lines_per_s=5000) as (client, device):
        assert machine(client)["kind"] == "laser"
        job = submit(client, LASER_FILE, kind="laser")
        assert job["state"] == "pending_approval"
        assert client.post(f"/api/jobs/{job['id']}/approve").status_code == 200
        waiting = wait_until(
            lambda: (m := machine(client))["live"]["arming"] and m, 20, what="waiting to arm"
        )
        assert waiting["live"]["arming"]["job_id"] == job["id"]
        assert job_state(client, job["id"])["state"] == "starting"
        time.sleep(0.3)
        # Not armed: not one command reached the laser.
        assert recorder.on("cmd") == [] and device.executed == [] and device.state == "idle"
        assert client.post("/api/machines/mq-1/arm").status_code == 200
        final = wait_ended(client, job["id"], 30)
        assert final["state"] == "completed", final
        assert [name for _, name in device.executed] == ["start"]
        assert device.last_job is not None and device.last_job["outcome"] == "completed"
        assert machine(client)["state"] == "awaiting_clear"


@pytest.mark.parametrize("action", ["unlock", "reset"])
def test_emergency_stop_then_unlock_takes_jobs_again(broker: Mosquitto, tmp_path: Path, action: str) -> None:
    with hall(broker, tmp_path) as (client, device):
        job = submit(client, write(tmp_path, "cube.gcode", prusa_mk3s(layers=200)))
        wait_until(lambda: device.job and device.job["lines_done"] > 0, 15, what="printing")
        assert client.post("/api/machines/mq-1/estop").status_code == 200
        assert wait_ended(client, job["id"], 10)["state"] == "cancelled"
        wait_until(lambda: machine(client)["state"] == "error", 10, what="the machine in error")
        assert device.state == "error"
        # The technician looked at the machine: unlock, or the tech page's reset, sends the contract's
        # `reset` (the page shows unlock to lasers only; reset to every machine in error).
        resp = client.post(f"/api/machines/mq-1/{action}")
        assert resp.status_code == 200, resp.text
        assert device.state == "idle"
        wait_until(lambda: machine(client)["state"] == "awaiting_clear", 10, what="unlocked")
        assert client.post("/api/machines/mq-1/clear").status_code == 200
        again = submit(client, write(tmp_path, "small.gcode", prusa_mk3s(layers=10)))
        final = wait_ended(client, again["id"], 30)
        assert final["state"] == "completed", final
        assert [name for _, name in device.executed] == ["start", "estop", "reset", "start"]


def test_reboot_mid_download_interrupts_the_job_for_good(
    broker: Mosquitto, tmp_path: Path, recorder: Recorder
) -> None:
    port = free_port()
    # The device fetches its file through a slow link to the hub (the hub's public_url).
    link = SlowServer(tmp_path, upstream=f"http://127.0.0.1:{port}")
    try:
        with hall(broker, tmp_path, port=port, public_url=link.base) as (client, device):
            job = submit(client, write(tmp_path, "cube.gcode", prusa_mk3s(layers=30)))
            wait_until(link.started.is_set, 15, what="the download to begin")
            assert device.state == "downloading"
            device.reboot()
            final = wait_ended(client, job["id"], 15)
            assert final["state"] == "interrupted", final
            # The download the device had begun completes now; the rebooted device drops it.
            link.release()
            time.sleep(3.0)
            assert device.executed == [] and device.state == "idle" and device.job is None
            assert len(link.requests) == 1, link.requests
            assert not [e for e in recorder.on("events") if e["type"] == "job_started"]
            assert job_state(client, job["id"])["state"] == "interrupted"
            wait_until(lambda: machine(client)["live"]["online"], 15, what="the machine back online")
            assert machine(client)["current_job_id"] is None
    finally:
        link.close()
