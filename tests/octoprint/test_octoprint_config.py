"""Fleet entries for OctoPrint machines: the key's variable name, never the key; the URL is the connection."""

from __future__ import annotations

import pytest

from fabzone.config import ConfigError, build_settings

ENTRY = {
    "id": "op-1",
    "name": "MK3S (OctoPrint)",
    "driver": "octoprint",
    "url": "http://octopi.local",
    "api_key_env": "OCTO_KEY_TEST",
    "port": "/dev/ttyACM0",
    "profile": "prusa-mk3s",
}


def test_octoprint_machine_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTO_KEY_TEST", "secret-from-env")
    machine = build_settings({"machines": [ENTRY]}).machines[0]
    assert machine.connection == "http://octopi.local"
    options = machine.driver_options()
    assert options["api_key"] == "secret-from-env"
    assert options["api_key_source"] == "OCTO_KEY_TEST"
    assert options["serial_port"] == "/dev/ttyACM0"


def test_api_key_env_is_a_variable_name() -> None:
    with pytest.raises(ConfigError, match="api_key_env"):
        build_settings({"machines": [{**ENTRY, "api_key_env": "0123-not a name"}]})


def test_serial_machines_get_no_options() -> None:
    machine = build_settings(
        {"machines": [{"id": "m", "name": "m", "port": "/dev/ttyUSB0", "profile": "prusa-mk3s"}]}
    ).machines[0]
    assert machine.driver_options() == {} and machine.connection == "/dev/ttyUSB0"
