"""The hub's side of an MQTT machine (docs/mqtt.md) on paho-mqtt 2.x's threaded loop."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as mqtt

from drivers.base import (
    ConnectionChanged,
    ConnectionFailed,
    Driver,
    DriverError,
    DriverState,
    EventCallback,
    JobEnded,
    JobOutcome,
    NotReady,
    Temperature,
)
from drivers.mqtt import contract
from drivers.mqtt.commands import Commands
from drivers.profiles import Profile

log = logging.getLogger(__name__)

# The contract names heaters in words (docs/mqtt.md); the hub's status uses Marlin's letters, as the
# serial drivers report them, so pages and charts read every printer the same way.
_HEATER_KEYS = {"hotend": "T", "bed": "B", "chamber": "C"}
_STATES = {
    "idle": DriverState.IDLE,
    "downloading": DriverState.RUNNING,
    "running": DriverState.RUNNING,
    "paused": DriverState.PAUSED,
    "error": DriverState.ERROR,
}
_OUTCOMES = {"completed", "failed", "cancelled", "interrupted"}


def _ended(snap: dict[str, Any], job_id: str | None) -> dict[str, Any] | None:
    """The retained `status.last_job` if it tells how `job_id` ended."""
    last = snap.get("last_job") or {}
    return (
        last if job_id is not None and last.get("id") == job_id and last.get("outcome") in _OUTCOMES else None
    )


class MqttDriver(Driver):
    """`connection` is `mqtt://[user@]host:port/<site>/<machine>[?version=3.1.1]`.

    `file_url(path)` gives the signed URL the device downloads a job from (the hub's
    `/api/files/...`). A broker outage shorter than `broker_grace_s` is ridden out: paho reconnects
    with backoff, the persistent session keeps what the device said meanwhile, and the retained
    status brings the snapshot back; only a device's last will (or a longer outage) is "offline".
    """

    protocol = "mqtt"
    # The device holds its job itself: a hub restart or a long broker outage does not end it; the
    # coordinator calls `reattach` when the device is reachable again (as for OctoPrint).
    survives_host_restart: ClassVar[bool] = True

    def __init__(
        self,
        profile: Profile,
        connection: str,
        *,
        on_event: EventCallback | None = None,
        file_url: Callable[[Path], str] | None = None,
        client_id: str | None = None,
        ack_timeout_s: float = 10.0,
        start_timeout_s: float = 60.0,
        broker_grace_s: float = 30.0,
        resend_s: float = 1.0,
    ) -> None:
        super().__init__(profile, connection, on_event=on_event)
        self.url = contract.BrokerUrl.parse(connection)
        self.prefix = self.url.topic_prefix
        self._file_url = file_url
        self._client_id = client_id or f"fabzone-hub-{self.url.site}-{self.url.machine}"
        self.ack_timeout_s = ack_timeout_s
        self.start_timeout_s = start_timeout_s
        self.broker_grace_s = broker_grace_s
        self._lock = threading.Lock()
        self._commands = Commands(self.prefix, self._lock, resend_s=resend_s, closed=lambda: self._closed)
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._device_online = threading.Event()
        self._have_status = threading.Event()
        self._boot = -1  # highest boot counter seen (docs/mqtt.md: a lower one's will is stale)
        self._snapshot: dict[str, Any] = {}
        self._job: str | None = None  # the job this driver started and has not seen end
        # The job whose `start` the device has not yet answered `ok`. If it ends meanwhile (the device
        # went offline or rebooted mid-download), start_job fails with that end instead of a JobEnded
        # event: the caller ends the job it could not start, and it must be ended only once.
        self._unconfirmed: str | None = None
        self._ended: set[str] = set()
        self._status_seen = threading.Condition()
        self._warned_snapshot = False
        self._grace_timer: threading.Timer | None = None
        self._closed = False
        self._up = False  # ConnectionChanged(True) was reported

    # -- lifecycle ---------------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        self._set_status(state=DriverState.CONNECTING, message=None)
        client = contract.make_client(self.url, self._client_id, persistent=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        contract.connect_async(client, self.url, persistent=True)
        client.loop_start()
        deadline = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            raise ConnectionFailed(f"no answer from the MQTT broker {self.url.host}:{self.url.port}")
        # The retained availability/status arrive right after SUBACK (MQTT 5 §3.3.1.3).
        if not self._device_online.wait(max(0.0, deadline - time.monotonic())):
            raise ConnectionFailed(f"device {self.prefix} is not online")
        if not self._have_status.wait(max(0.0, deadline - time.monotonic())):
            raise ConnectionFailed(f"device {self.prefix} published no status")
        self._up = True
        self._emit(ConnectionChanged(True))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._commands.abort("the driver was closed")
        self._cancel_grace()
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        # A job still on the device goes on there; the next driver reattaches to it.
        self._set_status(state=DriverState.DISCONNECTED)
        if self._up:
            self._emit(ConnectionChanged(False, "closed"))

    # -- paho callbacks (paho's loop thread) --------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused the connection: %s", self.prefix, reason)
            return
        # Subscribe on every connect, session present or not: cheap, and a broker that lost its
        # state (restarted without persistence) would otherwise leave us deaf.
        client.subscribe([(f"{self.prefix}/{t}", contract.QOS) for t in contract.TOPICS if t != "cmd"])
        self._cancel_grace()
        self._connected.set()
        if self.status.message == "broker unreachable":
            self._set_status(message=None)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        if self._closed:
            return
        log.warning("%s: lost the broker (%s); paho reconnects", self.prefix, reason)
        self._set_status(message="broker unreachable")
        with self._lock:
            if self._grace_timer is None:
                self._grace_timer = threading.Timer(self.broker_grace_s, self._broker_gone)
                self._grace_timer.daemon = True
                self._grace_timer.start()

    def _cancel_grace(self) -> None:
        with self._lock:
            timer, self._grace_timer = self._grace_timer, None
        if timer is not None:
            timer.cancel()

    def _broker_gone(self) -> None:
        # The device may well print on: its job is reattached once the broker is back.
        self._device_lost(f"MQTT broker unreachable for {self.broker_grace_s:.0f} s", end_job=False)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        data = contract.loads(msg.payload)
        if data is None:
            return
        topic = msg.topic[len(self.prefix) + 1 :]
        try:
            if topic == "availability":
                self._on_availability(data)
            elif topic == "status":
                self._on_status(data)
            elif topic == "events":
                self._on_device_event(data)
            elif topic == "cmd/result":
                self._on_result(data)
        except Exception:  # one bad payload must not kill paho's loop thread
            log.exception("%s: cannot handle %s", self.prefix, msg.topic)

    def _on_availability(self, data: dict[str, Any]) -> None:
        boot = int(data.get("boot", 0))
        if boot < self._boot:
            return  # a will from an older connection, delivered late (docs/mqtt.md)
        rebooted = self._boot >= 0 and boot > self._boot
        self._boot = boot
        if data.get("state") == "online":
            if rebooted and self._job is not None:
                self._job_ended(self._job, "interrupted", "the device rebooted")
            self._device_online.set()
        else:
            self._device_lost("device offline (last will)" if data.get("state") == "offline" else "unknown")
        if rebooted:
            # A restarted device forgot the commands it saw (and any download it was doing): a
            # command sent again now would run a second time, or run for a job that has ended.
            self._commands.abort("the device restarted")

    def _device_lost(self, reason: str, *, end_job: bool = True) -> None:
        self._device_online.clear()
        if self._closed:
            return
        if end_job:
            if self._job is not None:
                self._job_ended(self._job, "interrupted", reason)
            # Its connection died: whatever it was doing for us, the hub has stopped waiting for it.
            self._commands.abort(f"the device went offline ({reason})")
        self._set_status(state=DriverState.DISCONNECTED, message=reason)
        if self._up:
            self._up = False
            self._emit(ConnectionChanged(False, reason))

    def _on_status(self, data: dict[str, Any]) -> None:
        if not contract.is_status_snapshot(data):
            # Once per driver: a device that keeps sending them would otherwise fill the log at 2 Hz.
            level = logging.DEBUG if self._warned_snapshot else logging.WARNING
            self._warned_snapshot = True
            log.log(
                level, "%s: ignored a status that is not a complete snapshot: %s", self.prefix, sorted(data)
            )
            return
        if data["boot"] < self._boot:
            return
        # Every status replaces the last one whole (docs/mqtt.md: there are no partial updates).
        self._snapshot = snap = data
        job = snap.get("job") or {}
        temps = {
            _HEATER_KEYS.get(name, name): Temperature(float(t.get("actual", 0)), float(t.get("target", 0)))
            for name, t in (snap.get("temperatures") or {}).items()
        }
        state = _STATES.get(str(snap.get("state")), DriverState.ERROR)
        self._set_status(
            state=state,
            job_id=job.get("id"),
            lines_acked=int(job.get("lines_done") or 0),
            lines_total=job.get("lines_total") or None,
            temperatures=temps,
            message=snap.get("message"),
            firmware=snap.get("firmware"),
            # `reported_at`: the device's own publish time, so a page (or the benchmark) sees the delay.
            extra={
                **(snap.get("extra") or {}),
                "device_state": snap.get("state"),
                "reported_at": snap.get("ts"),
            },
        )
        self._have_status.set()
        with self._status_seen:
            self._status_seen.notify_all()
        if (last := _ended(snap, self._job)) is not None:
            self._job_ended(last["id"], last["outcome"], last.get("reason"), int(job.get("lines_done") or 0))

    def _on_device_event(self, data: dict[str, Any]) -> None:
        if data.get("type") == "job_ended" and data.get("job_id") == self._job and self._job:
            outcome = data.get("outcome")
            if outcome in _OUTCOMES:
                self._job_ended(self._job, outcome, data.get("reason"), int(data.get("lines_done") or 0))

    def _on_result(self, data: dict[str, Any]) -> None:
        with self._lock:
            pending = self._commands.answer(data)
            if pending is None:
                return
            if pending.command == "start" and data.get("ok") and self._unconfirmed == pending.job_id:
                # Confirmed here, on paho's thread, before any later message: a job_ended that follows
                # at once (a tiny job) is then reported as the job's end, not as a failed start.
                self._unconfirmed = None
        pending.done.set()

    def _job_ended(
        self, job_id: str, outcome: JobOutcome, reason: str | None, lines: int | None = None
    ) -> None:
        with self._lock:
            if job_id in self._ended:
                return  # once, whether the event, the snapshot or the will said it first
            self._ended.add(job_id)
            if self._job == job_id:
                self._job = None
            unconfirmed = self._unconfirmed == job_id
        # Its commands are moot, and a `start` still waiting fails with this end (see _unconfirmed). Not
        # a `cancel`: the end is what it asked for, and its answer follows.
        self._commands.abort(f"job {job_id} ended ({outcome}: {reason})", job_id, keep="cancel")
        if unconfirmed:
            return
        done = lines if lines is not None else self.status.lines_acked
        self._emit(JobEnded(job_id, outcome, done, reason))

    # -- commands ------------------------------------------------------------------------------------

    @property
    def resend_s(self) -> float:
        """How often an unanswered command is sent again."""
        return self._commands.resend_s

    def _command(
        self, command: str, job_id: str | None, args: dict[str, Any] | None = None, *, wait: float | None
    ) -> dict[str, Any] | None:
        client = self._client
        if client is None:
            raise NotReady("not connected")
        return self._commands.send(client, command, job_id, args, wait=wait)

    def start_job(self, job_id: str, path: Path, total_lines: int | None = None) -> None:
        if self.status.state != DriverState.IDLE or self._job is not None:
            raise NotReady(f"cannot start: machine is {self.status.state.value}")
        if self._file_url is None:
            raise DriverError("no file URL source: the hub serves job files to MQTT machines")
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256")
        args = {
            "url": self._file_url(path),
            "sha256": digest.hexdigest(),
            "size": path.stat().st_size,
            "lines_total": total_lines,
        }
        with self._lock:
            self._job = job_id
            self._unconfirmed = job_id
            self._ended.discard(job_id)
        try:
            self._command("start", job_id, args, wait=self.start_timeout_s)
        except DriverError:
            with self._lock:
                self._unconfirmed = None
                if self._job == job_id:
                    self._job = None
            raise

    def reattach(self, job_id: str, total_lines: int | None = None) -> None:
        """Follow a job a previous driver (or hub) started: still on the device, it is followed again;
        ended meanwhile, its outcome comes from the retained `status.last_job`; gone (the device
        rebooted while nobody watched), it is `interrupted`."""
        with self._lock:
            self._job = job_id
            self._ended.discard(job_id)
        snap = self._snapshot
        if (snap.get("job") or {}).get("id") == job_id:
            return
        if (last := _ended(snap, job_id)) is not None:
            done = (total_lines or 0) if last["outcome"] == "completed" else self.status.lines_acked
            self._job_ended(job_id, last["outcome"], last.get("reason"), done)
        else:
            self._job_ended(job_id, "interrupted", "the device no longer has the job (it restarted)")

    def _require_job(self) -> str:
        job = self._job or self.status.job_id
        if job is None:
            raise NotReady("no job on the machine")
        return job

    def pause(self) -> None:
        self._command("pause", self._require_job(), wait=self.ack_timeout_s)

    def resume(self) -> None:
        self._command("resume", self._require_job(), wait=self.ack_timeout_s)

    def cancel(self) -> None:
        self._command("cancel", self._require_job(), wait=self.ack_timeout_s)

    def emergency_stop(self) -> None:
        # Never waits: the caller must get control back at once (the device answers all the same).
        self._command("estop", None, wait=None)

    def reset_after_error(self) -> None:
        self.unlock()

    def unlock(self) -> None:
        """A technician dealt with an emergency stop or an error (the hub's unlock): the contract's
        `reset` takes the device from `error` back to `idle`. Returns once the device's own status
        says so, so the hub never gives a job to a machine whose last word is still `error`."""
        if self._job is not None:
            raise NotReady("a job is on the machine: cancel it, a reset does not")
        self._command("reset", None, wait=self.ack_timeout_s)
        deadline = time.monotonic() + self.ack_timeout_s
        with self._status_seen:
            while self.status.state == DriverState.ERROR:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DriverError(f"reset: the device still reports an error: {self.status.message}")
                self._status_seen.wait(left)
