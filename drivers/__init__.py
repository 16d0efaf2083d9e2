"""Device drivers and their simulators; a registry from protocol name to Driver class."""

from __future__ import annotations

from importlib import import_module

# Like python-can's backend table: imported lazily so one protocol's dependencies never burden another.
DRIVERS: dict[str, str] = {
    "marlin": "drivers.marlin:MarlinDriver",
    "grbl": "drivers.grbl:GrblDriver",
    "mqtt": "drivers.mqtt:MqttDriver",
    "octoprint": "drivers.octoprint:OctoPrintDriver",
}


def driver_class(protocol: str) -> type:
    try:
        module_name, _, attr = DRIVERS[protocol].partition(":")
    except KeyError:
        raise ValueError(f"no driver for protocol {protocol!r}; known: {', '.join(DRIVERS)}") from None
    return getattr(import_module(module_name), attr)  # type: ignore[no-any-return]
