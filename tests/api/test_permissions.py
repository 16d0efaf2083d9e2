"""Who may do what: every state-changing endpoint without a token, with a maker's secret, with a
technician's token; revoked tokens; the token commands; the submission rate limit; /metrics."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from fabzone import auth, db
from fabzone.api import create_app
from fabzone.config import build_settings
from tests.gcode_samples import prusa_mk3s
from tests.support import wait_until

FLEET = [
    {"id": "mk3s", "name": "MK3S", "port": "/nonexistent/mk3s", "profile": "prusa-mk3s"},
    {"id": "ender", "name": "Ender", "port": "/nonexistent/ender", "profile": "creality-ender3"},
]
GCODE = prusa_mk3s(layers=2).encode()

# (path template, JSON body, what a technician gets): every state-changing endpoint a technician alone
# may use. The job is queued and the machine offline, so most answers are the state's refusal, by code.
TECH_ONLY_JOB = [
    ("/api/jobs/{job}/pause", None, (409, "job.not_on_machine")),
    ("/api/jobs/{job}/resume", None, (409, "job.not_on_machine")),
    ("/api/jobs/{job}/requeue", None, (409, "job.invalid_transition")),
    ("/api/jobs/{job}/fail", None, (409, "job.invalid_transition")),
    ("/api/jobs/{job}/approve", None, (409, "job.invalid_transition")),
    ("/api/jobs/{job}/reject", {"reason": "no"}, (409, "job.invalid_transition")),
]
TECH_ONLY_MACHINE = [
    ("/api/machines/{machine}/clear", {"result": "good"}, (200, None)),
    ("/api/machines/{machine}/estop", None, (409, "machine.offline")),
    ("/api/machines/{machine}/reset", None, (409, "machine.invalid_transition")),
    ("/api/machines/{machine}/reconnect", None, (200, None)),
    ("/api/machines/{machine}/maintenance", {"on": True}, (200, None)),
    ("/api/machines/{machine}/arm", None, (409, "machine.not_awaiting_arm")),
    ("/api/machines/{machine}/unlock", None, (409, "machine.offline")),
]


def make_client(tmp_path: Path, **hub: Any) -> TestClient:
    settings = build_settings({"hub": {"data_dir": str(tmp_path / "data"), **hub}, "machines": FLEET}, "test")
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, submit_per_minute=0) as c:
        yield c


def tech_token(client: TestClient, name: str = "alice") -> dict[str, str]:
    token = auth.create_token(client.app.state.hub.engine, name)  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def submit(client: TestClient, **headers: str) -> dict[str, Any]:
    resp = client.post(
        "/api/jobs", files={"file": ("cube.gcode", GCODE)}, data={"name": "cube"}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def code(resp: Any) -> str:
    return resp.json()["detail"]["code"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "body", "allowed"), TECH_ONLY_JOB + TECH_ONLY_MACHINE)
def test_technician_only_endpoint(
    client: TestClient, path: str, body: dict | None, allowed: tuple[int, str | None]
) -> None:
    job = submit(client)
    url = path.format(job=job["ticket"], machine="mk3s")
    anonymous = client.post(url, json=body)
    assert anonymous.status_code == 401 and code(anonymous) == "auth.required", anonymous.text
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    # The maker's own ticket and secret: a valid credential, but not for this.
    maker = client.post(url, json=body, headers={"X-Maker-Secret": job["secret"]})
    assert maker.status_code == 403 and code(maker) == "auth.technician_only", maker.text
    bogus = client.post(url, json=body, headers={"Authorization": "Bearer not-a-token-at-all"})
    assert bogus.status_code == 401 and code(bogus) == "auth.invalid"
    technician = client.post(url, json=body, headers=tech_token(client))
    # Allowed: what follows depends on the machine (offline here) and the job (queued), not on who asks.
    status, refusal = allowed
    assert technician.status_code == status, technician.text
    if refusal is not None:
        assert code(technician) == refusal


def test_maker_cancels_only_their_own_job(client: TestClient) -> None:
    mine, theirs = submit(client), submit(client)
    assert mine["secret"] != theirs["secret"]
    assert client.post(f"/api/jobs/{mine['ticket']}/cancel").status_code == 401
    other = client.post(f"/api/jobs/{theirs['ticket']}/cancel", headers={"X-Maker-Secret": mine["secret"]})
    assert other.status_code == 403 and code(other) == "auth.not_your_job"
    wrong = client.post(f"/api/jobs/{mine['ticket']}/cancel", headers={"X-Maker-Secret": "guess"})
    assert wrong.status_code == 403
    own = client.post(f"/api/jobs/{mine['ticket']}/cancel", headers={"X-Maker-Secret": mine["secret"]})
    assert own.status_code == 200 and own.json()["state"] == "cancelled"
    assert client.get(f"/api/jobs/{theirs['ticket']}").json()["state"] == "queued"
    tech = client.post(f"/api/jobs/{theirs['id']}/cancel", headers=tech_token(client))
    assert tech.status_code == 200 and tech.json()["state"] == "cancelled"
    revoked_name = "bob"
    headers = tech_token(client, revoked_name)
    auth.revoke_token(client.app.state.hub.engine, revoked_name)  # type: ignore[attr-defined]
    assert client.post(f"/api/jobs/{mine['id']}/cancel", headers=headers).status_code == 401


def test_reads_are_public_and_leak_no_secret(client: TestClient) -> None:
    job = submit(client)
    secret = job["secret"]
    answers = [
        client.get("/api/jobs").text,
        client.get(f"/api/jobs/{job['ticket']}").text,
        client.get("/api/machines").text,
        client.get("/metrics").text,
    ]
    for body in answers:
        assert secret not in body and auth.digest(secret) not in body
    assert "secret" not in client.get(f"/api/jobs/{job['ticket']}").json()
    assert all(e.data.get("secret") is None for e in client.app.state.hub.bus.since(0))  # type: ignore[attr-defined]


def test_auth_me(client: TestClient) -> None:
    assert client.get("/api/auth/me", headers=tech_token(client, "李工")).json() == {"name": "李工"}
    assert code(client.get("/api/auth/me")) == "auth.required"
    assert code(client.get("/api/auth/me", headers={"Authorization": "Basic eDp5"})) == "auth.invalid"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    fabzone = str(Path(sys.executable).with_name("fabzone"))
    return subprocess.run([fabzone, *args], capture_output=True, text=True, timeout=60)


def test_token_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    created = run_cli("token", "create", "maria", "--data-dir", data)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert len(token) >= 40 and "\n" not in token
    assert run_cli("token", "create", "maria", "--data-dir", data).returncode == 1  # name taken
    with make_client(tmp_path) as client:
        # Only the hash is in the database.
        with client.app.state.hub.engine.connect() as conn:  # type: ignore[attr-defined]
            stored = conn.execute(text("SELECT token_hash FROM token WHERE name = 'maria'")).scalar_one()
        assert stored == auth.digest(token) and token not in stored
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/auth/me", headers=headers).json() == {"name": "maria"}
        listed = run_cli("token", "list", "--data-dir", data)
        assert listed.returncode == 0
        row = next(line for line in listed.stdout.splitlines() if line.startswith("maria"))
        assert "UTC" in row and row.rstrip().endswith("-")  # used (last used set), not revoked
        revoked = run_cli("token", "revoke", "maria", "--data-dir", data)
        assert revoked.returncode == 0, revoked.stderr
        resp = client.post("/api/machines/mk3s/reconnect", headers=headers)
        assert resp.status_code == 401 and code(resp) == "auth.invalid"
        row = next(
            line
            for line in run_cli("token", "list", "--data-dir", data).stdout.splitlines()
            if "maria" in line
        )
        assert not row.rstrip().endswith("-")
    assert run_cli("token", "revoke", "nobody", "--data-dir", data).returncode == 1


def test_submissions_are_rate_limited_per_address(tmp_path: Path) -> None:
    with make_client(tmp_path, submit_per_minute=3, submit_window_s=1.5) as client:
        for _ in range(3):
            submit(client)
        limited = client.post("/api/jobs", files={"file": ("cube.gcode", GCODE)})
        assert limited.status_code == 429 and code(limited) == "upload.rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 2
        # A technician is not limited.
        submit(client, **tech_token(client))
        # Once the window has passed, the maker may send again (refused attempts do not count).
        wait_until(
            lambda: client.post("/api/jobs", files={"file": ("c.gcode", GCODE)}).status_code == 201,
            10,
            0.2,
            "the rate limit window to pass",
        )


def test_rate_limiter_window() -> None:
    limiter = auth.RateLimiter(2, window=60)
    assert limiter.hit("a", 0) is None and limiter.hit("a", 1) is None
    assert limiter.hit("a", 2) == pytest.approx(58)
    assert limiter.hit("b", 2) is None  # per address
    assert limiter.hit("a", 60.5) is None  # the first hit left the window
    assert auth.RateLimiter(0).hit("a") is None  # 0: no limit


METRIC_LINE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+]+)$'
)


def parse_metrics(body: str) -> dict[str, float]:
    values = {}
    for line in body.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP ", "# TYPE ")), line
            continue
        match = METRIC_LINE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        values[match.group(1) + (match.group(2) or "")] = float(match.group(4))
    return values


def test_metrics_parse_and_move(client: TestClient) -> None:
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    before = parse_metrics(resp.text)
    for name in (
        'fabzone_machines{state="offline"}',
        'fabzone_jobs{state="queued"}',
        "fabzone_queue_length",
        "fabzone_events_published_total",
        "fabzone_events_sent_total",
        "fabzone_websocket_clients",
        "fabzone_websocket_dropped_clients_total",
    ):
        assert name in before, name
    assert before['fabzone_machines{state="offline"}'] == 2
    submit(client)
    after = parse_metrics(client.get("/metrics").text)
    assert after['fabzone_jobs{state="queued"}'] == before['fabzone_jobs{state="queued"}'] + 1
    assert after["fabzone_queue_length"] == before["fabzone_queue_length"] + 1
    assert after["fabzone_events_published_total"] > before["fabzone_events_published_total"]
    with client.websocket_connect("/api/events?since=0") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.receive_json()  # one replayed event
        during = parse_metrics(client.get("/metrics").text)
        assert during["fabzone_websocket_clients"] == 1
        assert during["fabzone_events_sent_total"] >= after["fabzone_events_sent_total"] + 1


def test_upgrade_from_schema_v1(tmp_path: Path) -> None:
    """A database made before tokens existed gets the token table and the job's secret column."""
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    db.migrate(engine, db.MIGRATIONS[:1])
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE token"))
        conn.execute(text("ALTER TABLE job DROP COLUMN maker_secret_hash"))
    assert db.migrate(engine) == db.MIGRATIONS[-1][0]
    token = auth.create_token(engine, "after-upgrade")
    assert auth.verify_token(engine, token) == "after-upgrade"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(maker_secret_hash) FROM job")).scalar_one() == 0
    engine.dispose()
