"""Simulated MQTT printers and lasers (docs/mqtt.md); `python -m drivers.sim.mqtt` checks a fleet's health."""

from __future__ import annotations

import sys

from drivers.sim.mqtt_commands import invalid
from drivers.sim.mqtt_device import FIRMWARE, MqttDevice
from drivers.sim.mqtt_fleet import (
    MqttFleet,
    add_arguments,
    fleet_health,
    from_arguments,
    health_main,
    machine_ids,
)

__all__ = [
    "FIRMWARE",
    "MqttDevice",
    "MqttFleet",
    "add_arguments",
    "fleet_health",
    "from_arguments",
    "health_main",
    "invalid",
    "machine_ids",
]

if __name__ == "__main__":
    sys.exit(health_main())
