"""100 simulated MQTT machines reporting at 2 Hz into one hub through Mosquitto (issue 6 §6).

Prints the hub's CPU (share of one core, over the measuring window) and the delay from a device's
status publish (the `ts` it stamps, carried to the pages as `extra.reported_at`) to its arrival at
a WebSocket client (p50/p99), beside the targets (hub < 50 % of one core, p99 < 100 ms). The devices
are one `python -m drivers.sim mqtt` process, the broker a Mosquitto of its own, the hub a
`fabzone serve` process, the WebSocket client asyncio in this process.

    .venv/bin/python bench/bench_mqtt_load.py [--machines 100] [--hz 2] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import websockets  # noqa: E402

from tests.mqtt.broker import Mosquitto  # noqa: E402
from tests.support import Hub, wait_until  # noqa: E402


def fleet_file(tmp: Path, broker_url: str, machines: int) -> Path:
    lines = [
        "[hub]",
        'site = "bench"',
        f'data_dir = "{tmp / "data"}"',
        f'mqtt_url = "{broker_url}"',
        "",
    ]
    for i in range(machines):
        lines += [
            "[[machines]]",
            f'id = "mqtt-printer-{i + 1}"',
            f'name = "MQTT printer {i + 1}"',
            'driver = "mqtt"',
            'profile = "prusa-mk3s"',
            "",
        ]
    path = tmp / "fabzone.toml"
    path.write_text("\n".join(lines))
    return path


class RawSubscriber:
    """The same status messages straight from the broker: the delay the hub cannot be blamed for."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.delays: list[float] = []
        self.recording = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe("fabzone/v1/bench/+/status", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: object, userdata: object, msg: object) -> None:
        now = time.time()
        if self.recording and not msg.retain:  # type: ignore[attr-defined]
            self.delays.append((now - json.loads(msg.payload)["ts"]) * 1000)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def percentiles(delays: list[float]) -> str:
    delays = sorted(delays)
    p99 = delays[int(len(delays) * 0.99) - 1]
    return f"p50 {statistics.median(delays):.1f} ms, p99 {p99:.1f} ms, max {delays[-1]:.1f} ms"


async def listen(url: str, seconds: float) -> list[float]:
    delays: list[float] = []
    async with websockets.connect(url, max_queue=None) as ws:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            now = time.time()
            event = json.loads(raw)
            reported = ((event.get("data") or {}).get("extra") or {}).get("reported_at")
            if event.get("type") == "status" and reported:
                delays.append((now - float(reported)) * 1000)
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--hz", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        broker = Mosquitto(tmp).start()
        devices = subprocess.Popen(
            [
                sys.executable, "-m", "drivers.sim", "mqtt", "--broker", broker.url, "--site", "bench",
                "--printers", str(args.machines), "--report-hz", str(args.hz),
                "--idle-report-s", str(1 / args.hz),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=(tmp / "devices.log").open("ab"),
            text=True,
        )  # fmt: skip
        hub = None
        try:
            assert devices.stdout is not None
            devices.stdout.readline()  # the device URLs: all connected
            hub = Hub(["serve", "--config", str(fleet_file(tmp, broker.url, args.machines))], tmp).start()
            wait_until(
                lambda: hub.http.get("/api/health").json()["online"] == args.machines,
                60,
                what="every machine online",
            )
            assert hub.proc is not None
            process = psutil.Process(hub.proc.popen.pid)
            time.sleep(2)  # let the connection burst settle
            raw = RawSubscriber(broker.port)
            raw.recording = True
            before = process.cpu_times()
            started = time.monotonic()
            delays = asyncio.run(listen(f"ws://127.0.0.1:{hub.port}/api/events", args.seconds))
            elapsed = time.monotonic() - started
            after = process.cpu_times()
            cpu = (after.user + after.system - before.user - before.system) / elapsed
            raw.recording = False
            raw.close()
        finally:
            if hub is not None:
                hub.close()
            devices.terminate()
            devices.wait(30)
            broker.kill()
    delays.sort()
    p50 = statistics.median(delays)
    p99 = delays[int(len(delays) * 0.99) - 1]
    expected = args.machines * args.hz * elapsed
    print(f"machines {args.machines} at {args.hz} Hz for {elapsed:.1f} s, psutil CPUs {psutil.cpu_count()}")
    print(f"status events at the WebSocket client: {len(delays)} of ~{expected:.0f} published by devices")
    print(f"device publish -> plain MQTT subscriber (no hub): {percentiles(raw.delays)}")
    print(f"device publish -> WebSocket client: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {delays[-1]:.1f} ms"
          f"  (target p99 < 100 ms: {'met' if p99 < 100 else 'NOT met'})")  # fmt: skip
    print(f"hub CPU: {cpu * 100:.1f} % of one core  (target < 50 %: {'met' if cpu < 0.5 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
