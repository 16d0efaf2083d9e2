"""The hub with an MQTT machine: signed file URLs, a job end to end, the hub's own topics and Home
Assistant discovery, all through a private Mosquitto."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from drivers.sim.mqtt import MqttDevice
from fabzone import signing
from tests.e2e.inprocess import serve_hub
from tests.gcode_samples import prusa_mk3s, write
from tests.mqtt.broker import Mosquitto
from tests.mqtt.conftest import Recorder
from tests.mqtt.test_mqtt_driver import SCHEMA
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.timeout(90)]


def test_signatures() -> None:
    key = b"k" * 32
    sha = "a" * 64
    query = dict(p.split("=") for p in signing.signed_query(key, sha, ttl_s=60, now=1000).split("&"))
    assert signing.verify(key, sha, int(query["exp"]), query["sig"], now=1000)
    assert not signing.verify(key, sha, int(query["exp"]), query["sig"], now=1061)  # expired
    assert not signing.verify(key, "b" * 64, int(query["exp"]), query["sig"], now=1000)  # another file
    assert not signing.verify(b"x" * 32, sha, int(query["exp"]), query["sig"], now=1000)  # another hub


def test_mqtt_machine_in_the_hub(broker: Mosquitto, tmp_path: Path) -> None:
    device = MqttDevice(broker.url, "hall", "mq-1", lines_per_s=2000, report_hz=5)
    device.start()
    assert device.connected.wait(5)
    home_assistant = Recorder(broker.port)
    port = free_port()
    home_assistant.client.subscribe("homeassistant/#", qos=1)
    config = {
        "hub": {
            "site": "hall",
            "port": port,  # the device downloads its job from the hub: it must know the port
            "data_dir": str(tmp_path / "data"),
            "mqtt_url": broker.url,
            "mqtt_publish": True,
            "mqtt_discovery": True,
        },
        "machines": [{"id": "mq-1", "name": "MQTT printer", "driver": "mqtt", "profile": "prusa-mk3s"}],
    }
    try:
        with serve_hub(config) as client:
            wait_until(lambda: client.get("/api/machines").json()[0]["state"] == "idle", 15, what="online")
            path = write(tmp_path, "cube.gcode", prusa_mk3s(layers=20))
            with path.open("rb") as fh:
                job = client.post(
                    "/api/jobs", files={"file": ("cube.gcode", fh)}, data={"name": "cube"}
                ).json()
            done = wait_until(
                lambda: client.get(f"/api/jobs/{job['id']}").json()["state"] in ("completed", "interrupted"),
                30,
                what="the job to end",
            )
            final = client.get(f"/api/jobs/{job['id']}").json()
            assert done and final["state"] == "completed", final
            assert [name for _, name in device.executed] == ["start"]
            # Without a valid signature the file is not served (and its existence not revealed).
            sha = final.get("sha256") or job.get("sha256")
            assert client.get(f"/api/files/{sha}?exp={int(time.time()) + 60}&sig=00").status_code == 403
            assert client.get(f"/api/files/{sha}").status_code == 422
            # The hub's own topics: the machine's state (retained) and the job's events.
            state_topic = "fabzone/v1/hall/hub/machines/mq-1/state"
            states = wait_until(
                lambda: [p for t, p, _ in home_assistant.messages if t == state_topic and p.get("state")],
                5,
                what="hub state",
            )
            assert states[-1]["v"] == 1 and states[-1]["machine_id"] == "mq-1"
            events = wait_until(lambda: home_assistant.on("hub/events"), 5, what="hub job events")
            assert {e["data"]["state"] for e in events} >= {"running", "completed"}
            for payload in states:
                jsonschema.validate(payload, {**SCHEMA, "$ref": "#/$defs/hub_state"})
            for payload in events:
                jsonschema.validate(payload, {**SCHEMA, "$ref": "#/$defs/hub_event"})
            discovery = wait_until(
                lambda: [p for t, p, _ in home_assistant.messages if t.startswith("homeassistant/")],
                5,
                what="discovery",
            )
            assert {d["state_topic"] for d in discovery} == {state_topic}
        # A late subscriber gets the retained state and the hub's own availability (offline after stop).
        late = Recorder(broker.port)
        got = wait_until(lambda: late.on("hub/availability") and late.on("state"), 5, what="retained")
        assert got and json.dumps(late.on("hub/availability")[-1]) == '{"raw": "offline"}'
        late.close()
    finally:
        home_assistant.close()
        device.stop()


def test_file_endpoint_serves_signed_urls(tmp_path: Path) -> None:
    config = {"hub": {"data_dir": str(tmp_path / "data")}, "machines": []}
    with serve_hub(config) as client:
        hub_key = signing.load_or_create_key(tmp_path / "data")
        sha = "c" * 64
        url = f"/api/files/{sha}?{signing.signed_query(hub_key, sha)}"
        assert client.get(url).status_code == 404  # signed, but no such file


@pytest.mark.parametrize("ends_while_away", [False, True])
def test_job_survives_a_hub_restart(broker: Mosquitto, tmp_path: Path, ends_while_away: bool) -> None:
    """The device holds its job: a hub that stops and comes back follows it again, or learns from the
    retained status how it ended meanwhile; the job is never started twice."""
    device = MqttDevice(broker.url, "hall", "mq-1", lines_per_s=400, report_hz=5)
    device.start()
    assert device.connected.wait(5)
    config = {
        "hub": {
            "site": "hall",
            "port": free_port(),
            "data_dir": str(tmp_path / "data"),
            "mqtt_url": broker.url,
        },
        "machines": [{"id": "mq-1", "name": "MQTT printer", "driver": "mqtt", "profile": "prusa-mk3s"}],
    }
    try:
        with serve_hub(config) as client:
            wait_until(lambda: client.get("/api/machines").json()[0]["state"] == "idle", 15, what="online")
            # ~330 lines (under a second) or ~2,200 (about five seconds: still printing when the hub is back).
            path = write(tmp_path, "cube.gcode", prusa_mk3s(layers=30 if ends_while_away else 200))
            with path.open("rb") as fh:
                job = client.post("/api/jobs", files={"file": ("cube.gcode", fh)}, data={"name": "c"}).json()
            wait_until(lambda: device.job and device.job["lines_done"] > 0, 15, what="printing")
        # The hub is gone; the device prints on.
        assert device.state == "running"
        if ends_while_away:
            wait_until(
                lambda: device.last_job and device.last_job["id"] == job["id"], 30, what="the job to end"
            )
        with serve_hub(config) as client:
            # Reattached while the device still prints (or after it ended, in the other case).
            assert (device.job is None) == ends_while_away

            def ended() -> dict[str, Any] | None:
                j: dict[str, Any] = client.get(f"/api/jobs/{job['id']}").json()
                return j if j["state"] in ("completed", "interrupted") else None

            final = wait_until(ended, 30, what="the job to end in the hub")
            assert final is not None and final["state"] == "completed", final
            assert [name for _, name in device.executed] == ["start"]
            machine = client.get("/api/machines").json()[0]
            assert machine["state"] == "awaiting_clear", machine
    finally:
        device.stop()
