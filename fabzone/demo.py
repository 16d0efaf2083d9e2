"""The demo fleet: simulated Marlin printers and GRBL lasers on ptys, MQTT machines on a broker, in the hub's own process."""

from __future__ import annotations

from typing import Any, Protocol

from drivers.profiles import get_profile

PRINTER_PROFILES = ["prusa-mk3s", "creality-ender3", "marlin-generic"]
LASER_PROFILES = ["grbl-laser-400", "k40-grbl"]


class Simulator(Protocol):
    def start(self) -> str: ...
    def stop(self) -> None: ...


def demo_fleet(printers: int, lasers: int, speed: float) -> tuple[list[Simulator], list[dict[str, Any]]]:
    """Start the simulators; return them (to stop at exit) and the fleet file's `machines` entries."""
    from drivers.sim.grbl import GrblSimulator
    from drivers.sim.marlin import MarlinSimulator

    sims: list[Simulator] = []
    machines: list[dict[str, Any]] = []
    plan = [("printer", i, PRINTER_PROFILES[i % len(PRINTER_PROFILES)]) for i in range(printers)]
    plan += [("laser", i, LASER_PROFILES[i % len(LASER_PROFILES)]) for i in range(lasers)]
    for kind, i, profile_id in plan:
        profile = get_profile(profile_id)
        sim: Simulator
        if kind == "printer":
            sim = MarlinSimulator(profile, speed=speed, seed=i)
        else:
            sim = GrblSimulator(profile, speed=speed, seed=i)
        port = sim.start()
        sims.append(sim)
        machines.append(
            {
                "id": f"{kind}-{i + 1}",
                "name": f"{profile.name} #{i + 1}",
                "driver": profile.protocol,
                "port": port,
                "profile": profile_id,
            }
        )
        print(f"simulated {profile_id} on {port}")
    return sims, machines


def mqtt_fleet(
    count: int, speed: float, broker_url: str | None, site: str
) -> tuple[list[Simulator], list[dict[str, Any]], str]:
    """`count` simulated MQTT machines (printers, every third a laser) on `broker_url`, or on an
    embedded amqtt broker when none is given; returns the simulators (the broker last, so it stops
    after them), the fleet entries and the broker URL for `[hub] mqtt_url`."""
    from drivers.sim.mqtt import MqttDevice, MqttFleet

    sims: list[Simulator] = []
    if broker_url is None:
        from fabzone.mqtt_broker import EmbeddedBroker

        broker = EmbeddedBroker()
        broker_url = broker.start()
        print(f"embedded MQTT broker (amqtt) on {broker_url}")
    else:
        broker = None
    devices: list[MqttDevice] = []
    machines: list[dict[str, Any]] = []
    for i in range(count):
        kind = "laser" if i % 3 == 2 else "printer"
        profile_id = "grbl-laser-400" if kind == "laser" else PRINTER_PROFILES[i % len(PRINTER_PROFILES)]
        machine_id = f"mqtt-{i + 1}"
        devices.append(MqttDevice(broker_url, site, machine_id, kind, lines_per_s=20.0, speed=speed))
        machines.append(
            {
                "id": machine_id,
                "name": f"MQTT {kind} #{i + 1}",
                "driver": "mqtt",
                "profile": profile_id,
            }
        )
    if devices:
        fleet = MqttFleet(devices)
        fleet.start()
        sims.append(fleet)
        print(f"simulated {count} MQTT machines on {broker_url}")
    if broker is not None:
        sims.append(broker)  # type: ignore[arg-type]
    return sims, machines, broker_url
