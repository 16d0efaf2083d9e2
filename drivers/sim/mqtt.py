"""Simulated MQTT printers and lasers that implement docs/mqtt.md, with faults for the tests."""

from __future__ import annotations

import argparse
import hashlib
import threading
import time
import urllib.request
from collections import OrderedDict
from typing import Any

import paho.mqtt.client as mqtt

from drivers.mqtt import contract

FIRMWARE = "fabzone-sim-mqtt 1.0"


class MqttDevice:
    """One machine on the broker. Runs on paho's loop thread (commands) and one ticker thread
    (simulated time). Faults: `vanish()` (connection dropped, the broker sends the will),
    `reboot()` (vanish, then come back with a higher boot and no job), `bad_hash` (corrupt every
    download, so it is refused)."""

    def __init__(
        self,
        broker: str,
        site: str,
        machine: str,
        kind: str = "printer",
        *,
        lines_per_s: float = 200.0,
        speed: float = 1.0,
        report_hz: float = 1.0,
        bad_hash: bool = False,
        idle_report_s: float = 5.0,
    ) -> None:
        self.url = contract.BrokerUrl.parse(broker)
        self.site, self.machine, self.kind = site, machine, kind
        self.prefix = contract.prefix(site, machine)
        self.lines_per_s = lines_per_s * speed
        self.report_interval = 1.0 / report_hz
        self.bad_hash = bad_hash
        self.idle_report_s = idle_report_s
        self.boot = 0
        self.state = "idle"
        self.job: dict[str, Any] | None = None
        self.last_job: dict[str, Any] | None = None
        self.message: str | None = None
        self.executed: list[tuple[str, str]] = []  # (command id, command) actually run
        self._seen: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._lock = threading.RLock()
        self._client: mqtt.Client | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._temps = {"hotend": [22.0, 0.0], "bed": [22.0, 0.0]} if kind == "printer" else {}
        self.connected = threading.Event()

    @property
    def connection(self) -> str:
        """What the hub's fleet file names as this machine's `url`."""
        return self.url.with_machine(self.site, self.machine)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        # A new boot counter per start (paho's own reconnects keep it, and the job): the start time in
        # ms only ever grows (docs/mqtt.md).
        self.boot = max(self.boot + 1, int(time.time() * 1000))
        # Devices use clean sessions: a stale command queued while away is never delivered.
        client = contract.make_client(self.url, f"fabzone-dev-{self.site}-{self.machine}", persistent=False)
        client.will_set(
            f"{self.prefix}/availability",
            contract.dumps({"state": "offline", "boot": self.boot}),
            qos=contract.QOS,
            retain=True,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *a: self.connected.clear()
        client.on_message = self._on_message
        self._client = client
        contract.connect_async(client, self.url, persistent=False, keepalive=5)
        client.loop_start()
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name=f"sim-{self.machine}", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        """A clean shutdown: says `offline` itself, then DISCONNECT (so no will)."""
        self._stop.set()
        client = self._client
        if client is not None:
            client.publish(
                f"{self.prefix}/availability",
                contract.dumps({"state": "offline", "boot": self.boot}),
                qos=contract.QOS,
                retain=True,
            ).wait_for_publish(2)
            client.disconnect()
            client.loop_stop()
        if self._ticker:
            self._ticker.join(2)

    def vanish(self) -> None:
        """Power cut: the TCP connection just closes, no DISCONNECT, so the broker sends the will."""
        self._stop.set()
        client = self._client
        self._client = None
        if client is not None:
            client.loop_stop()
            sock = client.socket()
            if sock is not None:
                sock.close()
        if self._ticker:
            self._ticker.join(2)
        self.connected.clear()

    def reboot(self) -> None:
        """Vanish mid-job and come back: the job is lost, the boot counter is higher."""
        self.vanish()
        with self._lock:
            self.job, self.state, self.message = None, "idle", None
            self._seen.clear()
        self.start()

    # -- MQTT --------------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            return
        client.subscribe(f"{self.prefix}/cmd", qos=contract.QOS)
        self._publish("availability", {"state": "online", "boot": self.boot}, retain=True)
        self.publish_status()
        self.connected.set()

    def _publish(self, topic: str, payload: dict[str, Any], retain: bool = False) -> None:
        client = self._client
        if client is not None:
            client.publish(f"{self.prefix}/{topic}", contract.dumps(payload), qos=contract.QOS, retain=retain)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            extra: dict[str, Any] = {}
            if self.kind == "laser":
                extra = {"laser_power": 0.8 if self.state == "running" else 0.0}
            return {
                "boot": self.boot,
                "kind": self.kind,
                "state": self.state,
                "firmware": FIRMWARE,
                "job": dict(self.job) if self.job else None,
                "last_job": self.last_job,
                "temperatures": {
                    k: {"actual": round(a, 1), "target": t} for k, (a, t) in self._temps.items()
                },
                "message": self.message,
                "extra": extra,
            }

    def publish_status(self) -> None:
        self._publish("status", self.snapshot(), retain=True)

    def _event(self, type_: str, **fields: Any) -> None:
        self._publish("events", {"boot": self.boot, "type": type_, **fields})

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        cmd = contract.loads(msg.payload)
        if cmd is None or not isinstance(cmd.get("id"), str):
            return
        with self._lock:
            if cmd["id"] in self._seen:  # at-least-once delivery: answer again, never run again
                first = self._seen[cmd["id"]]
                if first is not None:  # None: still being carried out (a download); answered when done
                    self._answer({**first, "duplicate": True})
                return
            self._seen[cmd["id"]] = None
            while len(self._seen) > 256:
                self._seen.popitem(last=False)
        if float(cmd.get("expires_at", 0)) < time.time():
            self._finish(cmd, False, "expired", "the command expired before it arrived")
            return
        name = cmd.get("command")
        if name == "start":
            # Downloading takes a while: off paho's loop thread, which must keep the link alive.
            threading.Thread(target=self._start, args=(cmd,), daemon=True).start()
            return
        handler = {"pause": self._pause, "resume": self._resume, "cancel": self._cancel, "estop": self._estop}
        if name not in handler:
            self._finish(cmd, False, "unknown_command", str(name))
            return
        with self._lock:
            if name != "estop" and (self.job is None or cmd.get("job_id") != self.job["id"]):
                self._finish(cmd, False, "wrong_job", f"not running job {cmd.get('job_id')}")
                return
            code = handler[name]()
            if code == "ok":
                self.executed.append((cmd["id"], name))
            self._finish(cmd, code == "ok", code, None)
        self.publish_status()

    def _finish(self, cmd: dict[str, Any], ok: bool, code: str, message: str | None) -> None:
        answer = {"id": cmd["id"], "ok": ok, "code": code, "message": message}
        with self._lock:
            self._seen[cmd["id"]] = answer
        self._answer(answer)

    def _answer(self, answer: dict[str, Any]) -> None:
        self._publish("cmd/result", {"boot": self.boot, "duplicate": False, **answer})

    # -- commands ----------------------------------------------------------------------------------

    def _start(self, cmd: dict[str, Any]) -> None:
        args = cmd.get("args") or {}
        job_id = cmd.get("job_id")
        with self._lock:
            if self.state != "idle" or not job_id:
                self._finish(cmd, False, "busy", f"machine is {self.state}")
                return
            self.state = "downloading"
            self.job = {"id": job_id, "lines_done": 0, "lines_total": args.get("lines_total")}
        self.publish_status()
        try:
            with urllib.request.urlopen(str(args.get("url")), timeout=15) as response:
                data = response.read()
        except (OSError, ValueError) as exc:
            self._refuse(cmd, job_id, "download_failed", f"download failed: {exc}")
            return
        if self.bad_hash:
            data = data + b"\n; corrupted on the way\n"
        if hashlib.sha256(data).hexdigest() != args.get("sha256"):
            self._refuse(cmd, job_id, "bad_hash", "the file's sha256 does not match; not printed")
            return
        lines = sum(1 for line in data.splitlines() if line.split(b";")[0].strip())
        with self._lock:
            self.job = {"id": job_id, "lines_done": 0, "lines_total": lines}
            self.state = "running"
            self.executed.append((cmd["id"], "start"))
            if "hotend" in self._temps:
                self._temps["hotend"][1], self._temps["bed"][1] = 215.0, 60.0
        self._finish(cmd, True, "ok", None)
        self._event("job_started", job_id=job_id)
        self.publish_status()

    def _refuse(self, cmd: dict[str, Any], job_id: str, code: str, reason: str) -> None:
        with self._lock:
            self.state, self.job = "idle", None
        self._finish(cmd, False, code, reason)
        self._event("download_failed", job_id=job_id, reason=reason)
        self.publish_status()

    def _pause(self) -> str:
        if self.state != "running":
            return "bad_state"
        self.state = "paused"
        self._event("job_paused", job_id=self.job and self.job["id"])
        return "ok"

    def _resume(self) -> str:
        if self.state != "paused":
            return "bad_state"
        self.state = "running"
        self._event("job_resumed", job_id=self.job and self.job["id"])
        return "ok"

    def _cancel(self) -> str:
        self._end("cancelled", "cancelled by the hub")
        return "ok"

    def _estop(self) -> str:
        if self.job is not None:
            self._end("cancelled", "emergency stop")
        self.state, self.message = "error", "emergency stop: power-cycle and reset"
        self._event("error", reason=self.message)
        return "ok"

    def _end(self, outcome: str, reason: str | None) -> None:
        job = self.job
        if job is None:
            return
        self.last_job = {"id": job["id"], "outcome": outcome, "reason": reason}
        self.job, self.state = None, "idle"
        for temp in self._temps.values():
            temp[1] = 0.0
        self._event(
            "job_ended", job_id=job["id"], outcome=outcome, reason=reason, lines_done=job["lines_done"]
        )

    # -- simulated time ------------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        last = time.monotonic()
        last_report = 0.0
        while not self._stop.wait(min(0.1, self.report_interval)):
            now = time.monotonic()
            dt, last = now - last, now
            changed = False
            with self._lock:
                for temp in self._temps.values():
                    temp[0] += ((temp[1] or 22.0) - temp[0]) * min(1.0, dt)
                if self.state == "running" and self.job is not None:
                    total = self.job["lines_total"] or 0
                    self.job["lines_done"] = min(
                        total, self.job["lines_done"] + max(1, int(self.lines_per_s * dt))
                    )
                    if self.job["lines_done"] >= total:
                        self._end("completed", None)
                        changed = True
            interval = self.report_interval if self.state != "idle" else self.idle_report_s
            if changed or now - last_report >= interval:
                last_report = now
                self.publish_status()


class MqttFleet:
    """Several devices in one process, for `python -m drivers.sim mqtt` and the demo."""

    def __init__(self, devices: list[MqttDevice]) -> None:
        self.devices = devices

    def start(self) -> str:
        for device in self.devices:
            device.start()
        for device in self.devices:
            device.connected.wait(10)
        return " ".join(d.connection for d in self.devices)

    def stop(self) -> None:
        for device in self.devices:
            device.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, help="mqtt://host:port (add ?version=3.1.1 for amqtt)")
    parser.add_argument("--site", default="fabzone")
    parser.add_argument("--printers", type=int, default=1)
    parser.add_argument("--lasers", type=int, default=0)
    parser.add_argument("--prefix", default="mqtt-", help="machine ids: <prefix>printer-1, <prefix>laser-1")
    parser.add_argument("--lines-per-s", type=float, default=200.0)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated time runs this many times faster")
    parser.add_argument("--report-hz", type=float, default=1.0)
    parser.add_argument("--bad-hash", action="store_true", help="corrupt every download (refused)")
    parser.add_argument("--idle-report-s", type=float, default=5.0, help="status interval when idle")


def from_arguments(args: argparse.Namespace) -> MqttFleet:
    plan = [("printer", i) for i in range(args.printers)] + [("laser", i) for i in range(args.lasers)]
    return MqttFleet(
        [
            MqttDevice(
                args.broker,
                args.site,
                f"{args.prefix}{kind}-{i + 1}",
                kind,
                lines_per_s=args.lines_per_s,
                speed=args.speed,
                report_hz=args.report_hz,
                bad_hash=args.bad_hash,
                idle_report_s=args.idle_report_s,
            )
            for kind, i in plan
        ]
    )
