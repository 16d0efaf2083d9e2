"""The compose file's `fleet` health check, run as written in docker-compose.yml against a real
Mosquitto: unhealthy with no fleet, healthy with it, unhealthy again when a machine is gone or hangs."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import yaml

from drivers.sim.mqtt import MqttFleet, add_arguments, fleet_health, from_arguments
from tests.mqtt.broker import Mosquitto
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.timeout(90)]
COMPOSE_BROKER = "mqtt://mosquitto:1883"


def compose_fleet() -> tuple[list[str], list[str]]:
    """The fleet service's command and health check, as docker-compose.yml has them."""
    fleet = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["fleet"]
    return list(fleet["command"]), list(fleet["healthcheck"]["test"])


def local(args: list[str], broker: Mosquitto) -> list[str]:
    return [broker.url if a == COMPOSE_BROKER else a for a in args]


def start_fleet(broker: Mosquitto, *extra: str) -> MqttFleet:
    command, _ = compose_fleet()
    assert command[:4] == ["python", "-m", "drivers.sim", "mqtt"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    fleet = from_arguments(parser.parse_args([*local(command[4:], broker), *extra]))
    fleet.start()
    return fleet


def health_check(broker: Mosquitto) -> subprocess.CompletedProcess[str]:
    _, test = compose_fleet()
    assert test[:2] == ["CMD", "python"]
    return subprocess.run(
        [sys.executable, *local(test[2:], broker)], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_the_compose_health_check_sees_the_fleet(broker: Mosquitto) -> None:
    nothing = health_check(broker)
    assert nothing.returncode == 1 and "mqtt-printer-1" in nothing.stderr, nothing
    fleet = start_fleet(broker)
    try:
        up = health_check(broker)
        assert up.returncode == 0, up.stderr
        fleet.devices[2].vanish()  # mqtt-laser-1 loses power: the broker sends its will
        down = health_check(broker)
        assert down.returncode == 1 and "mqtt-laser-1: availability says offline" in down.stderr, down
    finally:
        fleet.stop()
    stopped = health_check(broker)
    assert stopped.returncode == 1 and "mqtt-printer-2" in stopped.stderr, stopped


def test_a_hung_simulator_is_unhealthy(broker: Mosquitto) -> None:
    fleet = start_fleet(broker, "--idle-report-s", "0.2")
    machines = [d.machine for d in fleet.devices]
    try:
        assert fleet_health(broker.url, "hall", machines, max_age_s=1.0) == []
        # The ticker stops (a hung simulator) while its connection lives on: availability still says
        # online, but the retained status grows old.
        fleet.devices[0]._stop.set()
        problems = wait_until(
            lambda: fleet_health(broker.url, "hall", machines, max_age_s=1.0), 10, what="a stale status"
        )
        assert len(problems) == 1 and problems[0].startswith("mqtt-printer-1: last status"), problems
    finally:
        fleet.stop()
