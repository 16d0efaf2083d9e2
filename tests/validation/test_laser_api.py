"""`POST /api/jobs` with laser files through the real app: the wrong kind is one reason per profile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fabzone.api import create_app
from fabzone.config import build_settings
from tests.validation.conftest import PRUSA
from tests.validation.test_laser import LASERGRBL

# Ports that do not exist: the machines stay offline, but uploads are checked against their profiles.
FLEET = [
    {"id": "mk3s", "name": "MK3S", "port": "/nonexistent/mk3s", "profile": "prusa-mk3s"},
    {"id": "ender", "name": "Ender", "port": "/nonexistent/ender", "profile": "creality-ender3"},
    {"id": "laser", "name": "Laser", "port": "/nonexistent/laser", "profile": "grbl-laser-400"},
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = build_settings({"hub": {"data_dir": str(tmp_path / "data")}, "machines": FLEET}, "test")
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.mark.timeout(60)
def test_laser_file_sent_to_printers_gets_one_wrong_kind_reason_each(client: TestClient) -> None:
    resp = client.post(
        "/api/jobs",
        files={"file": ("logo.gcode", LASERGRBL.read_bytes(), "text/plain")},
        data={"kind": "printer", "language": "it"},
    )
    assert resp.status_code == 422, resp.text
    by_profile = {p["profile"]: p["reasons"] for p in resp.json()["detail"]["profiles"]}
    assert set(by_profile) == {"prusa-mk3s", "creality-ender3"}
    for reasons in by_profile.values():
        assert [(r["code"], r["params"]) for r in reasons] == [
            ("gcode.wrong_kind", {"kind": "laser", "machine_kind": "printer"})
        ]
        assert reasons[0]["message"]


@pytest.mark.timeout(60)
def test_printer_file_sent_to_a_laser_gets_one_wrong_kind_reason(client: TestClient) -> None:
    resp = client.post(
        "/api/jobs", files={"file": ("cube.gcode", PRUSA.read_bytes(), "text/plain")}, data={"kind": "laser"}
    )
    assert resp.status_code == 422, resp.text
    profiles = resp.json()["detail"]["profiles"]
    assert [(p["profile"], [r["code"] for r in p["reasons"]]) for p in profiles] == [
        ("grbl-laser-400", ["gcode.wrong_kind"])
    ]
