"""The API the pages use: catalogs, the ticket QR code, job history filters, maintenance, temperatures,
and a reconnecting WebSocket told to reload (`reset`)."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import segno
from fastapi.testclient import TestClient

from fabzone import auth, i18n
from fabzone.api import create_app
from fabzone.api.pages import SOURCE_WEB_DIR
from fabzone.config import build_settings
from fabzone.events import EventBus
from fabzone.hub import Hub
from fabzone.telemetry import TemperatureHistory
from tests.gcode_samples import prusa_mk3s

FLEET = [{"id": "mk3s", "name": "MK3S", "port": "/nonexistent/mk3s", "profile": "prusa-mk3s"}]
GCODE = prusa_mk3s(layers=2).encode()


def make_client(tmp_path: Path, **hub: Any) -> TestClient:
    settings = build_settings(
        {"hub": {"data_dir": str(tmp_path / "data"), "submit_per_minute": 0, **hub}, "machines": FLEET}, "t"
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path) as c:
        yield c


def tech(client: TestClient) -> dict[str, str]:
    token = auth.create_token(client.app.state.hub.engine, "t", replace=True)  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def submit(client: TestClient, name: str = "cube") -> dict[str, Any]:
    resp = client.post("/api/jobs", files={"file": ("c.gcode", GCODE)}, data={"name": name})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_catalogs(client: TestClient) -> None:
    for lang in i18n.LANGUAGES:
        resp = client.get(f"/api/i18n/{lang}")
        assert resp.status_code == 200 and "max-age" in resp.headers["cache-control"]
        body = resp.json()
        assert body == i18n.catalog(lang)
        assert {"auth.required", "upload.rate_limited", "gcode.out_of_volume"} <= set(body)
    missing = client.get("/api/i18n/fr", headers={"Accept-Language": "it"})
    assert missing.status_code == 404 and missing.json()["detail"]["code"] == "i18n.unknown_language"
    assert "fr" in missing.json()["detail"]["message"]


def expected_svg(url: str) -> bytes:
    out = io.BytesIO()
    segno.make_qr(url, error="m").save(out, kind="svg", scale=8, border=2)
    return out.getvalue()


def test_ticket_qr_code(client: TestClient, tmp_path: Path) -> None:
    job = submit(client)
    resp = client.get(f"/api/jobs/{job['ticket']}/qr.svg")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in resp.content
    # The same bytes segno makes for the ticket page's URL: the code encodes exactly that address.
    assert resp.content == expected_svg(f"http://testserver/ticket/{job['ticket']}")
    assert client.get("/api/jobs/NOSUCH/qr.svg").status_code == 404


def test_ticket_qr_code_with_the_secret_lets_the_phone_cancel(client: TestClient) -> None:
    job = submit(client)
    ticket = job["ticket"]
    resp = client.get(f"/api/jobs/{ticket}/qr.svg", headers={"X-Maker-Secret": job["secret"]})
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    # The secret rides in the fragment: the phone's browser keeps it and never sends it to a server.
    assert resp.content == expected_svg(f"http://testserver/ticket/{ticket}#k={job['secret']}")
    # Only the job's own secret: nobody gets a cancelling code for someone else's job.
    assert client.get(f"/api/jobs/{ticket}/qr.svg", headers={"X-Maker-Secret": "guess"}).status_code == 403
    other = submit(client, "other")
    assert (
        client.get(
            f"/api/jobs/{other['ticket']}/qr.svg", headers={"X-Maker-Secret": job["secret"]}
        ).status_code
        == 403
    )


def test_ticket_qr_code_uses_public_url(tmp_path: Path) -> None:
    with make_client(tmp_path, public_url="https://fab.example.org/") as client:
        job = submit(client)
        resp = client.get(f"/api/jobs/{job['id']}/qr.svg")
        assert resp.content == expected_svg(f"https://fab.example.org/ticket/{job['ticket']}")


def test_job_history_filters(client: TestClient) -> None:
    first, second, third = submit(client, "one"), submit(client, "two"), submit(client, "three")
    client.post(f"/api/jobs/{second['id']}/cancel", headers=tech(client))
    names = [j["display_name"] for j in client.get("/api/jobs").json()]
    assert names == ["three", "two", "one"]  # newest first
    assert [j["display_name"] for j in client.get("/api/jobs?limit=1").json()] == ["three"]
    queued = client.get("/api/jobs", params={"state": "queued"}).json()
    assert [j["id"] for j in queued] == [third["id"], first["id"]]
    both = client.get("/api/jobs", params={"state": "queued,cancelled"}).json()
    assert len(both) == 3
    assert client.get("/api/jobs", params={"machine": "mk3s"}).json() == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert client.get("/api/jobs", params={"since": future}).json() == []
    assert len(client.get("/api/jobs", params={"since": past}).json()) == 3
    naive = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert len(client.get("/api/jobs", params={"since": naive}).json()) == 3  # no zone: UTC
    for bad in ({"state": "queued,nope"}, {"since": "yesterday"}):
        resp = client.get("/api/jobs", params=bad)
        assert resp.status_code == 422 and resp.json()["detail"]["code"] == "job.bad_filter"


def test_maintenance_on_and_off(client: TestClient) -> None:
    headers = tech(client)
    on = client.post("/api/machines/mk3s/maintenance", json={"on": True}, headers=headers)
    assert on.status_code == 200 and on.json()["state"] == "maintenance"
    assert client.get("/api/machines/mk3s").json()["state"] == "maintenance"
    # The coordinator keeps failing to connect: a link that is down does not end maintenance.
    hub = client.app.state.hub  # type: ignore[attr-defined]
    assert not hub.coordinators["mk3s"].online
    off = client.post("/api/machines/mk3s/maintenance", json={"on": False}, headers=headers)
    assert off.status_code == 200 and off.json()["state"] == "offline"  # not connected
    again = client.post("/api/machines/mk3s/maintenance", json={"on": False}, headers=headers)
    assert again.status_code == 200 and again.json()["state"] == "offline"
    assert (
        client.post("/api/machines/nope/maintenance", json={"on": True}, headers=headers).status_code == 404
    )
    events = [e for e in hub.bus.since(0) if e.type == "machine"]
    assert [e.data["state"] for e in events][-2:] == ["maintenance", "offline"]


def test_temperature_history_is_sampled_once_a_second() -> None:
    history = TemperatureHistory(keep_s=600)
    reading = {
        "T": SimpleNamespace(actual=200.0, target=215.0),
        "B": SimpleNamespace(actual=60.0, target=60.0),
    }
    recorded = [history.add(reading, now=1000 + i * 0.25) for i in range(8)]  # 4 updates a second
    assert recorded == [True, False, False, False, True, False, False, False]
    assert history.since(10, now=1002) == [
        {"t": 1000, "T": {"actual": 200.0, "target": 215.0}, "B": {"actual": 60.0, "target": 60.0}},
        {"t": 1001, "T": {"actual": 200.0, "target": 215.0}, "B": {"actual": 60.0, "target": 60.0}},
    ]
    assert [s["t"] for s in history.since(1.5, now=1002)] == [1001]
    assert history.add({}, now=5000) is False  # a status without temperatures adds nothing
    for i in range(2000):
        history.add(reading, now=2000 + i)
    samples = history.since(10_000, now=4000)
    assert len(samples) == 600 and samples[-1]["t"] == 3999  # ten minutes kept


def test_temperatures_endpoint(client: TestClient) -> None:
    hub = client.app.state.hub  # type: ignore[attr-defined]
    reading = {"T": SimpleNamespace(actual=21.5, target=0.0)}
    hub.coordinators["mk3s"].temperature_history.add(reading)
    body = client.get("/api/machines/mk3s/temperatures?seconds=60").json()
    assert len(body) == 1 and body[0]["T"] == {"actual": 21.5, "target": 0.0} and body[0]["t"] > 0
    assert client.get("/api/machines/nope/temperatures").status_code == 404
    assert client.get("/api/machines/mk3s/temperatures?seconds=0").status_code == 422


def test_reconnect_with_another_boot_or_too_far_behind_gets_reset(tmp_path: Path) -> None:
    # No machines: nothing but this test publishes, so the sequence numbers below are exact.
    settings = build_settings({"hub": {"data_dir": str(tmp_path / "d")}, "machines": []}, "t")
    hub = Hub(settings)
    hub.bus = EventBus(history=5)  # a small ring, so "too far behind" is a few events away
    with TestClient(create_app(settings, hub)) as client:
        for i in range(20):
            hub.bus.publish("job", {"i": i})
        boot = hub.bus.boot_id
        with client.websocket_connect(f"/api/events?since=16&boot={boot}") as ws:
            assert ws.receive_json()["type"] == "hello"
            replay = [ws.receive_json() for _ in range(hub.bus.seq - 16)]
            assert [e["seq"] for e in replay] == list(range(17, hub.bus.seq + 1))
        with client.websocket_connect(f"/api/events?since=2&boot={boot}") as ws:
            hello = ws.receive_json()
            assert ws.receive_json() == {"type": "reset", "seq": hello["seq"]}
        # A page that last saw another hub life (a restart): its numbers mean nothing here.
        with client.websocket_connect("/api/events?since=18&boot=0123456789ab") as ws:
            ws.receive_json()
            assert ws.receive_json()["type"] == "reset"


def test_batched_client_gets_every_event_in_order(tmp_path: Path) -> None:
    """`?batch=1` (what the pages ask): what piles up while a client is busy comes as one array."""
    settings = build_settings({"hub": {"data_dir": str(tmp_path / "d")}, "machines": []}, "t")
    hub = Hub(settings)
    with (
        TestClient(create_app(settings, hub)) as client,
        client.websocket_connect("/api/events?batch=1") as ws,
    ):
        start = ws.receive_json()["seq"]
        # Published from the hub's loop in one go: the client's queue holds them all at its next read.
        client.portal.call(_publish_many, hub, 50)
        seen: list[int] = []
        messages = 0
        while len(seen) < 50:
            data = ws.receive_json()
            messages += 1
            seen += [e["seq"] for e in (data if isinstance(data, list) else [data])]
        assert seen == list(range(start + 1, start + 51))
        assert messages < 50  # batched, not one frame per event


async def _publish_many(hub: Hub, n: int) -> None:
    for i in range(n):
        hub.bus.publish("job", {"i": i})


def test_pages_come_from_web_dir_when_the_package_is_installed_without_them(tmp_path: Path) -> None:
    # A wheel (the Dockerfile's `pip install .`) carries no `web/`: [hub] web_dir points at a copy.
    copy = tmp_path / "pages"
    shutil.copytree(SOURCE_WEB_DIR, copy)
    (copy / "index.html").write_text("<title>the copy</title>", encoding="utf-8")
    with make_client(tmp_path, web_dir=str(copy)) as c:
        assert "the copy" in c.get("/").text
        assert c.get("/static/js/store.js").status_code == 200
    # A folder without the pages: no page routes, the API still answers, and the log names the folder.
    with make_client(tmp_path, web_dir=str(tmp_path / "nothing")) as c:
        assert c.get("/").status_code == 404
        assert c.get("/api/health").status_code == 200
