"""A fleet of simulated MQTT devices: its command-line arguments and its health check."""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from drivers.mqtt import contract
from drivers.sim.mqtt_device import MqttDevice


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


def machine_ids(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(kind, machine id) of every device a fleet with these arguments runs."""
    plan = [("printer", i) for i in range(args.printers)] + [("laser", i) for i in range(args.lasers)]
    return [(kind, f"{args.prefix}{kind}-{i + 1}") for kind, i in plan]


def from_arguments(args: argparse.Namespace) -> MqttFleet:
    return MqttFleet(
        [
            MqttDevice(
                args.broker,
                args.site,
                machine,
                kind,
                lines_per_s=args.lines_per_s,
                speed=args.speed,
                report_hz=args.report_hz,
                bad_hash=args.bad_hash,
                idle_report_s=args.idle_report_s,
            )
            for kind, machine in machine_ids(args)
        ]
    )


def fleet_health(
    broker: str, site: str, machines: list[str], *, max_age_s: float, timeout: float = 3.0
) -> list[str]:
    """What is wrong with a fleet, by the broker's retained messages ([] when nothing is): every machine
    says `online`, and its retained status is younger than `max_age_s`. The status is published by
    each device's ticker thread, so a fresh one means the simulator works, not merely that its process
    or its TCP connection is still there."""
    url = contract.BrokerUrl.parse(broker)
    wanted = {
        f"{contract.prefix(site, machine)}/{topic}": (machine, topic)
        for machine in machines
        for topic in ("availability", "status")
    }
    got: dict[tuple[str, str], dict[str, Any]] = {}
    lock = threading.Lock()
    connected, complete = threading.Event(), threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(topic, contract.QOS) for topic in wanted])
            connected.set()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        data, key = contract.loads(msg.payload), wanted.get(msg.topic)
        if data is None or key is None:
            return
        with lock:
            got[key] = data
            if len(got) == len(wanted):
                complete.set()

    client = contract.make_client(url, f"fabzone-health-{uuid.uuid4().hex[:12]}", persistent=False)
    client.on_connect = on_connect
    client.on_message = on_message
    contract.connect_async(client, url, persistent=False)
    client.loop_start()
    try:
        complete.wait(timeout)  # retained messages arrive right after SUBACK
    finally:
        client.disconnect()
        client.loop_stop()
    if not connected.is_set():
        return [f"no connection to the MQTT broker {url.host}:{url.port}"]
    problems: list[str] = []
    now = time.time()
    with lock:
        for machine in machines:
            availability, status = got.get((machine, "availability")), got.get((machine, "status"))
            if availability is None or availability.get("state") != "online":
                said = "nothing" if availability is None else availability.get("state")
                problems.append(f"{machine}: availability says {said}, not online")
            elif status is None or not contract.is_number(status.get("ts")):
                problems.append(f"{machine}: no status")
            elif now - status["ts"] > max_age_s:
                problems.append(f"{machine}: last status {now - status['ts']:.0f} s ago")
    return problems


def health_main(argv: list[str] | None = None) -> int:
    """`python -m drivers.sim.mqtt <the fleet's own arguments>`: the fleet's health check (the compose
    file's `fleet` service); exit 0 when healthy, else 1 with what is wrong on stderr."""
    parser = argparse.ArgumentParser(
        prog="python -m drivers.sim.mqtt",
        description="Health check of a `python -m drivers.sim mqtt` fleet started with the same arguments.",
    )
    add_arguments(parser)
    parser.add_argument(
        "--max-age-s",
        type=float,
        default=None,
        help="oldest acceptable status (default: 3 report intervals + 1 s)",
    )
    args = parser.parse_args(argv)
    max_age = args.max_age_s or 3 * max(args.idle_report_s, 1.0 / args.report_hz) + 1.0
    machines = [machine for _, machine in machine_ids(args)]
    problems = fleet_health(args.broker, args.site, machines, max_age_s=max_age)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"healthy: {len(machines)} machines online")
    return 1 if problems else 0
