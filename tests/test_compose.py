"""docker-compose.yml against the Compose Specification's JSON Schema (no Docker engine here), the
services the README names, and the fleet file it mounts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from fabzone.config import load_settings
from tests.support import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_spec() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(COMPOSE)


def test_every_service_has_a_health_check_and_the_data_has_volumes() -> None:
    services = COMPOSE["services"]
    assert {"hub", "postgres", "mosquitto", "octoprint", "fleet"} <= set(services)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    named = set(COMPOSE["volumes"])
    mounts = {s: [v.split(":")[0] for v in svc.get("volumes", [])] for s, svc in services.items()}
    assert "postgres-data" in named and "postgres-data" in mounts["postgres"]
    assert "fabzone-files" in named and "fabzone-files" in mounts["hub"]
    env = services["hub"]["environment"]
    assert {"FABZONE_DATABASE_URL", "FABZONE_MQTT_URL", "FABZONE_PUBLIC_URL"} <= set(env)
    for source in (m for ms in mounts.values() for m in ms if m.startswith("./")):
        assert (ROOT / source).exists(), source


def test_readme_names_only_services_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    line = next((ln for ln in readme.splitlines() if "compose file's services" in ln), None)
    assert line, "the README's MQTT section lists the compose file's services"
    named = re.findall(r"`([a-z0-9_-]+)`", line)
    assert named and set(named) <= set(COMPOSE["services"]), named


def test_dockerfile_copies_what_exists() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_the_mounted_fleet_file_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FABZONE_MQTT_URL", "mqtt://mosquitto:1883")
    monkeypatch.setenv("FABZONE_DATA_DIR", str(tmp_path))
    settings = load_settings(ROOT / "deploy" / "fabzone.toml")
    mqtt = [m for m in settings.machines if m.driver == "mqtt"]
    assert mqtt[0].connection == "mqtt://mosquitto:1883/hall/mqtt-printer-1"


def test_the_fleet_health_check_checks_the_fleet_it_runs() -> None:
    """Not a process that merely exists: `python -m drivers.sim.mqtt` with the fleet's own arguments
    checks that every machine it runs is online on the broker and reporting (tests/mqtt/test_fleet_health.py
    runs it against a real broker)."""
    fleet = COMPOSE["services"]["fleet"]
    command, test = fleet["command"], fleet["healthcheck"]["test"]
    assert command[:4] == ["python", "-m", "drivers.sim", "mqtt"]
    assert test == ["CMD", "python", "-m", "drivers.sim.mqtt", *command[4:]]


def test_octoprint_is_the_version_the_tests_run() -> None:
    install = (ROOT / "tests" / "octoprint" / "install.sh").read_text()
    version = re.search(r"^VERSION=([0-9.]+)$", install, re.MULTILINE)
    assert version, "tests/octoprint/install.sh names its OctoPrint VERSION"
    assert COMPOSE["services"]["octoprint"]["image"] == f"octoprint/octoprint:{version.group(1)}"
