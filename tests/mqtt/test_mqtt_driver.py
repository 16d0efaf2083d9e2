"""The MQTT driver against the simulated devices through a real Mosquitto: jobs, commands, faults."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from drivers.base import ConnectionChanged, DriverEvent, DriverState, JobEnded
from drivers.mqtt import MqttDriver
from drivers.mqtt.commands import CommandFailed
from drivers.mqtt.contract import dumps
from drivers.profiles import get_profile
from drivers.sim.mqtt import MqttDevice
from tests.mqtt.broker import Mosquitto
from tests.mqtt.conftest import Recorder
from tests.support import ROOT, wait_until

SCHEMA = json.loads((ROOT / "docs" / "mqtt.schema.json").read_text())


class Rig:
    def __init__(self, broker: Mosquitto, files: tuple[Path, str], lines_per_s: float = 400.0) -> None:
        self.root, self.base = files
        self.device = MqttDevice(broker.url, "t", "m1", lines_per_s=lines_per_s, report_hz=5)
        self.device.start()
        assert self.device.connected.wait(5)
        self.events: list[DriverEvent] = []
        self.driver = MqttDriver(
            get_profile("prusa-mk3s"),
            self.device.connection,
            on_event=self.events.append,
            file_url=lambda p: f"{self.base}/{p.name}",
            ack_timeout_s=5,
            start_timeout_s=10,
        )
        self.driver.connect(5)

    def job_file(self, lines: int) -> Path:
        path = self.root / f"job-{lines}.gcode"
        path.write_text("G28\n" + "G1 X10 Y10\n" * (lines - 1))
        return path

    def ended(self) -> list[JobEnded]:
        return [e for e in self.events if isinstance(e, JobEnded)]

    def close(self) -> None:
        self.driver.close()
        self.device.stop()


@pytest.fixture
def rig(broker: Mosquitto, file_server: tuple[Path, str]) -> Iterator[Rig]:
    r = Rig(broker, file_server)
    yield r
    r.close()


def validate(topic: str, payload: dict[str, Any]) -> None:
    name = {"cmd/result": "result", "cmd": "command", "events": "event"}.get(topic, topic)
    jsonschema.validate(payload, {**SCHEMA, "$ref": f"#/$defs/{name}"})


def test_job_runs_pauses_resumes_and_completes(rig: Rig, recorder: Recorder) -> None:
    rig.driver.start_job("j1", rig.job_file(2000))
    wait_until(lambda: rig.driver.status.lines_acked > 0, 5, what="progress")
    rig.driver.pause()
    wait_until(lambda: rig.driver.status.state == DriverState.PAUSED, 5, what="paused")
    paused_at = rig.driver.status.lines_acked
    time.sleep(0.3)
    assert rig.device.job is not None and rig.device.job["lines_done"] == paused_at
    rig.driver.resume()
    ended = wait_until(rig.ended, 15, what="the job to end")
    assert ended == [JobEnded("j1", "completed", 2000, None)]
    assert rig.driver.status.state == DriverState.IDLE
    wait_until(lambda: recorder.on("events") and recorder.on("cmd/result"), 5, what="recorded traffic")
    # Every payload that crossed the broker matches the contract's schema.
    topics = {"availability", "status", "events", "cmd", "cmd/result"}
    seen = set()
    for topic, payload, retained in list(recorder.messages):
        suffix = next(t for t in sorted(topics, key=len, reverse=True) if topic.endswith("/" + t))
        validate(suffix, payload)
        seen.add(suffix)
        assert not (suffix == "cmd" and retained)
    assert seen == topics


def test_repeated_and_expired_commands_are_ignored(rig: Rig, recorder: Recorder) -> None:
    rig.driver.start_job("j1", rig.job_file(4000))
    cmd_id = uuid.uuid4().hex
    pause = dumps(
        {"id": cmd_id, "expires_at": time.time() + 30, "job_id": "j1", "command": "pause", "args": {}}
    )
    for _ in range(3):  # the same command three times (QoS 1 is at least once)
        rig.device._client.publish(f"{rig.device.prefix}/cmd", pause, qos=1)  # type: ignore[union-attr]
    stale = dumps(
        {"id": "old", "expires_at": time.time() - 1, "job_id": "j1", "command": "cancel", "args": {}}
    )
    rig.device._client.publish(f"{rig.device.prefix}/cmd", stale, qos=1)  # type: ignore[union-attr]
    answers = wait_until(lambda: len(recorder.on("cmd/result")) >= 5, 5, what="four answers")
    results = [r for r in recorder.on("cmd/result") if r["id"] in (cmd_id, "old")]
    assert [r["duplicate"] for r in results if r["id"] == cmd_id] == [False, True, True]
    assert [r["code"] for r in results if r["id"] == "old"] == ["expired"]
    assert [name for _, name in rig.device.executed] == ["start", "pause"]
    assert rig.device.state == "paused" and answers


def test_wrong_job_is_refused(rig: Rig) -> None:
    rig.driver.start_job("j1", rig.job_file(4000))
    rig.driver._job = "someone-else"
    with pytest.raises(CommandFailed, match="wrong_job"):
        rig.driver.pause()


def test_bad_hash_is_refused(rig: Rig) -> None:
    rig.device.bad_hash = True
    with pytest.raises(CommandFailed, match="bad_hash"):
        rig.driver.start_job("j1", rig.job_file(100))
    assert rig.device.executed == [] and rig.device.state == "idle"
    wait_until(lambda: rig.driver.status.state == DriverState.IDLE, 5, what="idle again")


def test_vanishing_device_goes_offline_by_its_will(rig: Rig) -> None:
    rig.driver.start_job("j1", rig.job_file(50_000))
    wait_until(lambda: rig.driver.status.lines_acked > 0, 5, what="progress")
    rig.device.vanish()
    wait_until(
        lambda: any(isinstance(e, ConnectionChanged) and not e.online for e in rig.events), 5, what="offline"
    )
    ended = rig.ended()
    assert len(ended) == 1 and ended[0].outcome == "interrupted" and "last will" in (ended[0].reason or "")


def test_stale_will_is_ignored(rig: Rig) -> None:
    # A will from an older connection arrives late: the device's current boot is higher.
    stale = dumps({"state": "offline", "boot": rig.device.boot - 1})
    rig.device._client.publish(f"{rig.device.prefix}/availability", stale, qos=1, retain=True)  # type: ignore[union-attr]
    rig.device.publish_status()
    time.sleep(0.3)  # nothing should happen: give the message time to arrive
    assert not any(isinstance(e, ConnectionChanged) and not e.online for e in rig.events)
    assert rig.driver.status.state == DriverState.IDLE


def test_reboot_mid_job_interrupts_it(rig: Rig) -> None:
    rig.driver.start_job("j1", rig.job_file(50_000))
    wait_until(lambda: rig.driver.status.lines_acked > 0, 5, what="progress")
    rig.device.reboot()
    ended = wait_until(rig.ended, 10, what="the job to end")
    assert ended[0].outcome == "interrupted"
    wait_until(lambda: rig.driver.status.state == DriverState.IDLE, 10, what="idle after the reboot")
    rig.driver.start_job("j2", rig.job_file(200))  # usable again
    wait_until(lambda: len(rig.ended()) == 2, 10, what="the second job")


def test_emergency_stop(rig: Rig) -> None:
    rig.driver.start_job("j1", rig.job_file(50_000))
    rig.driver.emergency_stop()
    wait_until(lambda: rig.driver.status.state == DriverState.ERROR, 5, what="error")
    assert [e.outcome for e in wait_until(rig.ended, 5, what="end")] == ["cancelled"]


def test_broker_restart_mid_job(broker: Mosquitto, file_server: tuple[Path, str]) -> None:
    rig = Rig(broker, file_server, lines_per_s=1000)
    try:
        rig.driver.start_job("j1", rig.job_file(6000))
        wait_until(lambda: rig.driver.status.lines_acked > 0, 5, what="progress")
        rig.driver.pause()
        broker.kill()
        wait_until(lambda: rig.driver.status.message == "broker unreachable", 5, what="the driver to notice")
        broker.start()
        restarted = time.monotonic()
        rig.driver.resume()  # sent as soon as the hub is back; at most once on the device
        wait_until(
            lambda: rig.driver.status.state == DriverState.RUNNING and rig.driver.status.message is None,
            5,
            what="status back within 5 s",
        )
        assert time.monotonic() - restarted < 5
        ended = wait_until(rig.ended, 20, what="the job to complete")
        assert ended == [JobEnded("j1", "completed", 6000, None)]
        names = [name for _, name in rig.device.executed]
        assert names == ["start", "pause", "resume"]
        assert not any(isinstance(e, ConnectionChanged) and not e.online for e in rig.events)
    finally:
        rig.close()
