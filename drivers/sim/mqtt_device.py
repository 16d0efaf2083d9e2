"""One simulated MQTT printer or laser implementing docs/mqtt.md, with faults for the tests."""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.request
from collections import OrderedDict
from typing import Any

import paho.mqtt.client as mqtt

from drivers.mqtt import contract
from drivers.sim.mqtt_commands import invalid

FIRMWARE = "fabzone-sim-mqtt 1.0"


class MqttDevice:
    """One machine on the broker. Runs on paho's loop thread (commands) and one ticker thread
    (simulated time); a `start` downloads on a thread of its own. Faults: `vanish()` (connection
    dropped, the broker sends the will), `reboot()` (vanish, then come back with a higher boot, no
    job, no memory of commands and no download in progress), `bad_hash` (corrupt every download, so
    it is refused)."""

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
        # Bumped by a power cut: a download thread of an older generation belongs to a device that no
        # longer exists (its RAM is gone), so it drops what it fetched and answers nothing.
        self._generation = 0
        self._booted_at = 0.0  # by this device's clock: commands issued earlier are from before it started
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
        self._booted_at = time.time()
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
        with self._lock:
            self._generation += 1
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
        """Vanish mid-job and come back: the job is lost, the boot counter is higher. The ids of the
        commands it saw were in RAM and are gone too: a command issued before this boot is refused by its
        `ts` instead (docs/mqtt.md, Commands 2)."""
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
        if cmd is None or not isinstance(cmd.get("id"), str) or not cmd["id"]:
            return  # nothing to answer: a result names the id of its command
        with self._lock:
            if cmd["id"] in self._seen:  # at-least-once delivery: answer again, never run again
                first = self._seen[cmd["id"]]
                if first is not None:  # None: still being carried out (a download); answered when done
                    self._answer({**first, "duplicate": True})
                return
            self._seen[cmd["id"]] = None
            while len(self._seen) > 256:
                self._seen.popitem(last=False)
            generation = self._generation
        problem = invalid(cmd)
        if problem is not None:
            self._finish(cmd, False, "invalid", problem)
            return
        # `ts` is rounded to the millisecond by the sender: a millisecond of slack.
        if cmd["ts"] < self._booted_at - 0.001:
            self._finish(cmd, False, "expired", "sent before this device started; it may have run it then")
            return
        if cmd["expires_at"] < time.time():
            self._finish(cmd, False, "expired", "the command expired before it arrived")
            return
        name = cmd["command"]
        if name == "start":
            # Downloading takes a while: off paho's loop thread, which must keep the link alive.
            threading.Thread(target=self._start, args=(cmd, generation), daemon=True).start()
            return
        handler = {
            "pause": self._pause,
            "resume": self._resume,
            "cancel": self._cancel,
            "estop": self._estop,
            "reset": self._reset,
        }
        if name not in handler:
            self._finish(cmd, False, "unknown_command", name)
            return
        with self._lock:
            if name not in ("estop", "reset") and (self.job is None or cmd["job_id"] != self.job["id"]):
                self._finish(cmd, False, "wrong_job", f"not running job {cmd['job_id']}")
                return
            code = handler[name]()
            if code == "ok":
                self.executed.append((cmd["id"], name))
            # The status the command made goes out before its answer, so the hub knows the new state
            # when the command returns (the hub's unlock waits for `idle`).
            self.publish_status()
            self._finish(cmd, code == "ok", code, None)

    def _finish(self, cmd: dict[str, Any], ok: bool, code: str, message: str | None) -> None:
        answer = {"id": cmd["id"], "ok": ok, "code": code, "message": message}
        with self._lock:
            self._seen[cmd["id"]] = answer
        self._answer(answer)

    def _answer(self, answer: dict[str, Any]) -> None:
        self._publish("cmd/result", {"boot": self.boot, "duplicate": False, **answer})

    # -- commands ----------------------------------------------------------------------------------

    def _start(self, cmd: dict[str, Any], generation: int) -> None:
        args = cmd.get("args") or {}
        job_id = cmd["job_id"]
        with self._lock:
            if generation != self._generation:
                return
            if self.state != "idle":
                self._finish(cmd, False, "busy", f"machine is {self.state}")
                return
            job = {"id": job_id, "lines_done": 0, "lines_total": args.get("lines_total")}
            self.state, self.job = "downloading", job
            self.publish_status()
        try:
            data = self._download(str(args["url"]), generation)
        except (OSError, ValueError) as exc:
            self._refuse(cmd, job, generation, "download_failed", f"download failed: {exc}")
            return
        if data is None:
            return  # the device restarted meanwhile: the download went with its RAM, nobody to answer
        if self.bad_hash:
            data = data + b"\n; corrupted on the way\n"
        if hashlib.sha256(data).hexdigest() != args["sha256"]:
            self._refuse(cmd, job, generation, "bad_hash", "the file's sha256 does not match; not printed")
            return
        if time.time() > cmd["expires_at"]:
            # The hub stops waiting for the answer when the command expires; a job started now would
            # be one the hub has already called a failed start.
            self._refuse(cmd, job, generation, "expired", "the download outlasted the command; not printed")
            return
        lines = sum(1 for line in data.splitlines() if line.split(b";")[0].strip())
        with self._lock:
            if generation != self._generation:
                return
            if self.job is not job or self.state != "downloading":
                # Stopped while downloading (emergency stop, cancel): that command's answer and event
                # told the hub; this start is not carried out.
                self._finish(cmd, False, "bad_state", f"stopped while downloading; machine is {self.state}")
                return
            self.job = {"id": job_id, "lines_done": 0, "lines_total": lines}
            self.state = "running"
            self.executed.append((cmd["id"], "start"))
            if "hotend" in self._temps:
                self._temps["hotend"][1], self._temps["bed"][1] = 215.0, 60.0
            # All under the lock, so the ticker cannot end a tiny job before the start is answered: the
            # hub takes a job_ended before the answer as a start that never happened.
            self.publish_status()
            self._event("job_started", job_id=job_id)
            self._finish(cmd, True, "ok", None)

    def _download(self, url: str, generation: int) -> bytes | None:
        """The file, or None when the device restarted while fetching it (checked at every chunk)."""
        chunks: list[bytes] = []
        with urllib.request.urlopen(url, timeout=15) as response:
            while chunk := response.read(1 << 16):
                if generation != self._generation:
                    return None
                chunks.append(chunk)
        return None if generation != self._generation else b"".join(chunks)

    def _refuse(
        self, cmd: dict[str, Any], job: dict[str, Any], generation: int, code: str, reason: str
    ) -> None:
        with self._lock:
            if generation != self._generation:
                return
            if self.job is job:  # not if an emergency stop took the machine meanwhile
                self.state, self.job = "idle", None
            self.publish_status()
            self._event("download_failed", job_id=job["id"], reason=reason)
            self._finish(cmd, False, code, reason)

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
        self.state, self.message = "error", "emergency stop: a technician must reset the machine"
        self._event("error", reason=self.message)
        return "ok"

    def _reset(self) -> str:
        """A technician dealt with the error: back to idle. Never throws a job away (that is cancel)."""
        if self.job is not None:
            return "bad_state"
        self.state, self.message = "idle", None
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
