"""The contract's edges against a real Mosquitto: a reboot in the middle of a download, commands that
expire or come from before a reboot, malformed commands, a device that never answers, what a status
is, and the technician's `reset` after an emergency stop."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from drivers.base import ConnectionChanged, DriverError, DriverState, JobEnded, NotReady, StatusChanged
from drivers.mqtt import MqttDriver
from drivers.mqtt.commands import CommandFailed
from drivers.mqtt.contract import dumps
from drivers.profiles import get_profile
from tests.mqtt.broker import Mosquitto
from tests.mqtt.conftest import Recorder, SlowServer
from tests.mqtt.test_mqtt_driver import Rig, validate
from tests.support import wait_until

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture
def rig(broker: Mosquitto, file_server: tuple[Path, str]) -> Iterator[Rig]:
    r = Rig(broker, file_server)
    yield r
    r.close()


@pytest.fixture
def slow_rig(broker: Mosquitto, slow_files: SlowServer) -> Iterator[Rig]:
    r = Rig(broker, (slow_files.root, slow_files.base))
    yield r
    r.close()


def send(recorder: Recorder, rig: Rig, payload: dict[str, Any] | str) -> None:
    """A command straight onto the device's `cmd` topic, as any client could publish it."""
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    recorder.client.publish(f"{rig.device.prefix}/cmd", raw, qos=1).wait_for_publish(5)


def answer(recorder: Recorder, cmd_id: str, timeout: float = 10) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((r for r in recorder.on("cmd/result") if r.get("id") == cmd_id), None)

    result = wait_until(found, timeout, what=f"the answer to {cmd_id}")
    assert result is not None
    validate("cmd/result", result)
    return result


def start_command(rig: Rig, cmd_id: str, path: Path, *, expires_in: float = 30.0) -> dict[str, Any]:
    return {
        "v": 1,
        "id": cmd_id,
        "ts": time.time(),
        "expires_at": time.time() + expires_in,
        "job_id": f"job-{cmd_id}",
        "command": "start",
        "args": {
            "url": f"{rig.base}/{path.name}",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "size": path.stat().st_size,
            "lines_total": None,
        },
    }


# -- a reboot while the file is still downloading ------------------------------------------------------


def test_reboot_mid_download_never_runs_the_job(
    slow_rig: Rig, slow_files: SlowServer, recorder: Recorder
) -> None:
    rig = slow_rig
    failures: list[BaseException] = []

    def start() -> None:
        try:
            rig.driver.start_job("j1", rig.job_file(500))
        except DriverError as exc:
            failures.append(exc)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    wait_until(slow_files.started.is_set, 5, what="the download to begin")
    assert rig.device.state == "downloading"
    rig.device.reboot()
    # start_job fails at once (not after start_timeout_s of resending): the job ended with the
    # device's connection, so there is nothing left to start.
    starter.join(5)
    assert not starter.is_alive(), "start_job still resends a start for a job that ended"
    assert len(failures) == 1 and isinstance(failures[0], NotReady), failures
    assert "interrupted" in str(failures[0])
    assert any(isinstance(e, ConnectionChanged) and not e.online for e in rig.events)
    # The start's end is start_job's failure, reported once: no JobEnded besides it.
    assert rig.ended() == []
    assert rig.driver._job is None
    wait_until(rig.device.connected.is_set, 5, what="the device back online")
    # The old download completes now; the rebooted device must not run it, and nobody asks it again.
    slow_files.release()
    time.sleep(2 * rig.driver.resend_s + 1.0)
    assert rig.device.executed == []
    assert rig.device.state == "idle" and rig.device.job is None
    assert len(slow_files.requests) == 1, slow_files.requests
    assert not [e for e in recorder.on("events") if e["type"] == "job_started"]
    assert not [s for s in recorder.on("status") if s["state"] == "running"]


def test_a_start_whose_download_outlives_its_expiry_is_not_run(
    slow_rig: Rig, slow_files: SlowServer, recorder: Recorder
) -> None:
    rig = slow_rig
    cmd = start_command(rig, "late", rig.job_file(300), expires_in=1.0)
    send(recorder, rig, cmd)
    wait_until(slow_files.started.is_set, 5, what="the download to begin")
    time.sleep(max(0.0, cmd["expires_at"] - time.time()) + 0.2)
    slow_files.release()
    result = answer(recorder, "late")
    assert (result["ok"], result["code"]) == (False, "expired")
    assert rig.device.executed == [] and rig.device.state == "idle" and rig.device.job is None


def test_a_command_from_before_a_reboot_is_refused(rig: Rig, recorder: Recorder) -> None:
    cmd = start_command(rig, "before-reboot", rig.job_file(200))
    time.sleep(0.05)
    rig.device.reboot()
    assert rig.device.connected.wait(5)
    # Still within its expires_at, but issued before this boot: the device forgot what it saw before,
    # so it cannot know whether it ran it.
    send(recorder, rig, cmd)
    result = answer(recorder, "before-reboot")
    assert (result["ok"], result["code"]) == (False, "expired")
    assert rig.device.executed == []


# -- malformed commands -------------------------------------------------------------------------------


def test_malformed_commands_are_answered_invalid(rig: Rig, recorder: Recorder) -> None:
    now = time.time()
    base: dict[str, Any] = {"v": 1, "ts": now, "expires_at": now + 30, "job_id": None, "args": {}}
    good_start = start_command(rig, "x", rig.job_file(100))
    malformed: dict[str, tuple[dict[str, Any], str]] = {
        "exp-text": ({**base, "command": "estop", "expires_at": "soon"}, "expires_at"),
        "ts-missing": ({k: v for k, v in base.items() if k != "ts"} | {"command": "estop"}, "ts"),
        "no-command": (base, "command"),
        "args-list": ({**base, "command": "pause", "job_id": "j1", "args": [1]}, "args"),
        "start-no-job": ({**good_start, "job_id": None}, "job_id"),
        "bad-sha": ({**good_start, "args": {**good_start["args"], "sha256": "abc"}}, "sha256"),
        "no-url": ({**good_start, "args": {"sha256": good_start["args"]["sha256"]}}, "url"),
    }
    for cmd_id, (payload, _) in malformed.items():
        send(recorder, rig, {**payload, "id": cmd_id})
    for cmd_id, (_, field) in malformed.items():
        result = answer(recorder, cmd_id)
        assert (result["ok"], result["code"]) == (False, "invalid"), result
        assert field in (result["message"] or ""), result
    # Nothing ran (the estop whose expires_at is a word least of all), and the device still listens.
    assert rig.device.executed == [] and rig.device.state == "idle"
    rig.driver.start_job("j1", rig.job_file(100))
    assert wait_until(rig.ended, 10, what="a job after the malformed ones")[0].outcome == "completed"


# -- a device that never answers ------------------------------------------------------------------------


class MuteDevice:
    """Online (retained availability and a status with a running job), subscribed to its `cmd` topic,
    and never answering: a device whose firmware hangs behind a live network stack."""

    def __init__(self, port: int, prefix: str) -> None:
        self.commands: list[tuple[float, bytes | bytearray]] = []
        self.prefix = prefix
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

        def on_connect(client: mqtt.Client, *args: Any) -> None:
            client.subscribe(f"{prefix}/cmd", qos=1)
            client.publish(
                f"{prefix}/availability", dumps({"state": "online", "boot": 7}), qos=1, retain=True
            )
            status = {
                "boot": 7,
                "kind": "printer",
                "state": "running",
                "job": {"id": "j1", "lines_done": 10, "lines_total": 1000},
            }
            client.publish(f"{prefix}/status", dumps(status), qos=1, retain=True)
            ready.set()

        self.client.on_connect = on_connect
        self.client.on_message = lambda c, u, msg: self.commands.append((time.time(), msg.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_command_nobody_answers_times_out(broker: Mosquitto) -> None:
    mute = MuteDevice(broker.port, "fabzone/v1/t/mute")
    driver = MqttDriver(get_profile("prusa-mk3s"), f"{broker.url}/t/mute", ack_timeout_s=1.0, resend_s=0.2)
    try:
        driver.connect(5)
        assert driver.status.state == DriverState.RUNNING and driver.status.job_id == "j1"
        sent_at = time.time()
        with pytest.raises(DriverError, match="no answer") as failure:
            driver.pause()
        gave_up = time.time()
        assert not isinstance(failure.value, CommandFailed)
        assert 1.0 <= gave_up - sent_at < 4.0
        time.sleep(0.6)  # nothing more goes out once the driver gave up
        copies = list(mute.commands)
        payloads = [json.loads(raw) for _, raw in copies]
        # Sent again, same id and same bytes, while the device might still take it...
        assert len(copies) >= 3 and len({raw for _, raw in copies}) == 1
        assert payloads[0]["command"] == "pause" and payloads[0]["job_id"] == "j1"
        validate("cmd", payloads[0])
        # ...and it expires before the driver reports it unanswered: a copy that reaches the device
        # later can never carry out what the hub already reported as failed.
        expires_at = payloads[0]["expires_at"]
        assert expires_at <= gave_up
        assert all(at <= expires_at + 0.1 for at, _ in copies)
    finally:
        driver.close()
        mute.close()


# -- what a status is --------------------------------------------------------------------------------


def test_a_status_is_always_a_full_snapshot(rig: Rig) -> None:
    """docs/mqtt.md: every status is the complete retained snapshot with the schema's required keys;
    there are no partial updates, and a payload without those keys is not a status."""
    topic = f"{rig.device.prefix}/status"
    boot = rig.device.boot
    hot = {"hotend": {"actual": 999.0, "target": 0.0}}
    not_statuses: list[dict[str, Any]] = [
        {"partial": True, "boot": boot, "temperatures": hot},  # the old "partial update"
        {"boot": boot, "kind": "printer", "temperatures": hot},  # no state
        {"kind": "printer", "state": "error", "message": "no boot"},  # no boot
        {"boot": boot, "state": "error", "message": "no kind"},  # no kind
    ]
    for payload in not_statuses:
        with pytest.raises(jsonschema.ValidationError):
            validate("status", json.loads(dumps(payload)))
        rig.device._client.publish(topic, dumps(payload), qos=1)  # type: ignore[union-attr]
    time.sleep(0.3)  # nothing should happen: give the messages time to arrive
    assert rig.driver.status.state == DriverState.IDLE and rig.driver.status.message is None
    # A snapshot replaces the one before it whole: what it leaves out is gone.
    snapshot = {
        "boot": boot,
        "kind": "printer",
        "state": "idle",
        "message": "hello",
        "temperatures": {"bed": {"actual": 30.0, "target": 0.0}},
    }
    validate("status", json.loads(dumps(snapshot)))
    rig.device._client.publish(topic, dumps(snapshot), qos=1)  # type: ignore[union-attr]
    wait_until(lambda: rig.driver.status.message == "hello", 5, what="the snapshot")
    assert set(rig.driver.status.temperatures) == {"B"}
    # Checked once the snapshot published after them has arrived (one publisher, one topic: in order),
    # so the payloads that are not statuses have surely been handled, not merely not yet delivered.
    statuses = [e.status for e in rig.events if isinstance(e, StatusChanged)]
    assert not [
        s
        for s in statuses
        if s.state == DriverState.ERROR or ("T" in s.temperatures and s.temperatures["T"].actual == 999.0)
    ]


# -- reset after an emergency stop ---------------------------------------------------------------------


def test_reset_after_an_emergency_stop(rig: Rig, recorder: Recorder) -> None:
    rig.driver.start_job("j1", rig.job_file(50_000))
    rig.driver.emergency_stop()
    wait_until(lambda: rig.driver.status.state == DriverState.ERROR, 5, what="error")
    assert [e.outcome for e in wait_until(rig.ended, 5, what="end")] == ["cancelled"]
    assert rig.device.state == "error"
    rig.driver.unlock()  # what the hub's unlock calls: the contract's `reset`
    # The device's own status says idle by the time unlock returns (the hub's next job may follow).
    assert rig.driver.status.state == DriverState.IDLE and rig.driver.status.message is None
    assert rig.device.state == "idle" and rig.device.message is None
    rig.driver.start_job("j2", rig.job_file(20_000))
    # A reset never throws a running job away: the driver refuses, and so does the device.
    with pytest.raises(NotReady):
        rig.driver.unlock()
    now = time.time()
    send(
        recorder,
        rig,
        {
            "v": 1,
            "id": "r2",
            "ts": now,
            "expires_at": now + 30,
            "job_id": None,
            "command": "reset",
            "args": {},
        },
    )
    assert answer(recorder, "r2")["code"] == "bad_state"
    assert rig.device.state == "running"
    rig.driver.cancel()
    wait_until(lambda: len(rig.ended()) == 2, 10, what="the second job to end")
    ended = rig.ended()
    assert ended[1] == JobEnded("j2", "cancelled", ended[1].lines_acked, "cancelled by the hub")
    assert [name for _, name in rig.device.executed] == ["start", "estop", "reset", "start", "cancel"]
    resets = [c for c in recorder.on("cmd") if c["command"] == "reset"]
    for cmd in resets:
        validate("cmd", cmd)
