"""One answer for the whole API: a refused state change is 409 with its code, a missing job 404."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fabzone.api import create_app
from fabzone.auth import create_token
from fabzone.config import build_settings
from tests.support import ROOT

FLEET = [{"id": "mk3s", "name": "MK3S", "port": "/nonexistent/mk3s", "profile": "prusa-mk3s"}]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(build_settings({"hub": {"data_dir": str(tmp_path / "d")}, "machines": FLEET}, "t"))
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {create_token(app.state.hub.engine, 'tech')}"
        yield c


def test_refused_transition_is_409_in_the_callers_language(client: TestClient) -> None:
    sample = ROOT / "tests" / "data" / "gcode" / "prusa_mk3s_cube.gcode"
    job = client.post("/api/jobs", files={"file": (sample.name, sample.read_bytes())}).json()
    assert job["state"] == "queued"
    # Only an interrupted job can be re-queued.
    resp = client.post(f"/api/jobs/{job['id']}/requeue", headers={"Accept-Language": "it-IT,it;q=0.9"})
    assert resp.status_code == 409
    detail = resp.json()["detail"]
    assert detail["code"] == "job.invalid_transition"
    assert detail["params"] == {"current": "queued", "target": "queued"}
    assert detail["message"].startswith("Il lavoro non può passare")


def test_unknown_job_is_404_everywhere(client: TestClient) -> None:
    for method, path in [
        ("get", "/api/jobs/NOPE42"),
        ("get", "/api/jobs/NOPE42/events"),
        ("post", "/api/jobs/NOPE42/requeue"),
        ("post", "/api/jobs/NOPE42/approve"),
        ("post", "/api/jobs/NOPE42/pause"),
    ]:
        resp = getattr(client, method)(path, headers={"Accept-Language": "zh-CN"})
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["detail"]["code"] == "job.not_found"
        assert "NOPE42" in resp.json()["detail"]["message"]
