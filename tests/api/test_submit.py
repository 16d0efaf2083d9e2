"""`POST /api/jobs` through the real app: 422 with every reason, 413 unread, Unicode names, nothing stored."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from fabzone.api import create_app
from fabzone.config import build_settings
from tests.gcode_samples import cura_ender3, prusa_mk3s
from tests.support import free_port, wait_until

# Machines whose ports do not exist: they stay offline, but their profiles are what uploads are
# checked against — the API's answers do not depend on a printer being connected.
FLEET = [
    {"id": "mk3s", "name": "MK3S", "port": "/nonexistent/mk3s", "profile": "prusa-mk3s"},
    {"id": "ender", "name": "Ender", "port": "/nonexistent/ender", "profile": "creality-ender3"},
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = build_settings(
        {"hub": {"data_dir": str(tmp_path / "data"), "max_upload_mb": 1}, "machines": FLEET}, "test"
    )
    with TestClient(create_app(settings)) as c:
        yield c


def stored_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "data" / "files").rglob("*") if p.is_file()]


def test_accepted_file_is_queued_with_its_unicode_name(client: TestClient, tmp_path: Path) -> None:
    resp = client.post(
        "/api/jobs",
        files={"file": ("测试-立方体.gcode", prusa_mk3s(layers=2).encode(), "text/plain")},
        data={"name": "立方体", "language": "zh"},
    )
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert job["state"] == "queued" and job["file_name"] == "测试-立方体.gcode"
    assert len(job["ticket"]) == 6
    files = stored_files(tmp_path)
    assert len(files) == 1
    # Content-addressed: the name on disk is the hash, never the maker's file name.
    assert files[0].name == client.get(f"/api/jobs/{job['ticket']}").json()["analysis"]["sha256"]
    assert "测试" not in str(files[0])
    again = client.get(f"/api/jobs/{job['ticket']}").json()
    assert again["id"] == job["id"] and again["queue_position"] == 1


def test_file_no_printer_can_make_is_rejected_with_reasons_per_profile(
    client: TestClient, tmp_path: Path
) -> None:
    text = prusa_mk3s(layers=2).replace("G1 X0 Y200 F3600 ; park", "G1 X300 Y200 F3600 ; park")
    resp = client.post(
        "/api/jobs",
        files={"file": ("prova-città.gcode", text.encode(), "text/plain")},
        data={"language": "it"},
    )
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert detail["code"] == "job.rejected"
    by_profile = {p["profile"]: p["reasons"] for p in detail["profiles"]}
    assert set(by_profile) == {"prusa-mk3s", "creality-ender3"}
    park_line = text.splitlines().index("G1 X300 Y200 F3600 ; park") + 1
    for reasons in by_profile.values():
        assert any(r["line"] == park_line and r["code"].endswith("out_of_volume") for r in reasons), reasons
    # The Ender also cannot reach the MK3S purge line at Y-3.
    purge_line = text.splitlines().index("G1 Y-3.0 F1000.0 ; go outside print area") + 1
    assert any(r["line"] == purge_line for r in by_profile["creality-ender3"])
    assert all(r["message"] for r in by_profile["prusa-mk3s"])
    assert stored_files(tmp_path) == []
    assert client.get("/api/jobs").json() == []


def test_messages_follow_the_makers_language(client: TestClient) -> None:
    bad = b"\x00\x01binary\x00"
    answers = {}
    for lang in ("it", "zh", "en"):
        resp = client.post("/api/jobs", files={"file": ("x.gcode", bad)}, data={"language": lang})
        assert resp.status_code == 422
        answers[lang] = resp.json()["detail"]["profiles"][0]["reasons"][0]["message"]
    assert len(set(answers.values())) == 3, answers


def test_too_large_is_413_and_nothing_is_kept(client: TestClient, tmp_path: Path) -> None:
    big = b"G1 X10 Y10\n" * (2 * 1024 * 1024 // 11)  # 2 MB over a 1 MB limit
    resp = client.post("/api/jobs", files={"file": ("big.gcode", big)})
    assert resp.status_code == 413
    assert resp.json()["detail"]["code"] == "upload.too_large"
    assert stored_files(tmp_path) == []


def test_too_large_without_content_length_is_cut_off(tmp_path: Path) -> None:
    """A chunked upload with no Content-Length: the hub answers 413 once the limit passes, while the
    client is still sending — it does not read (or store) the rest."""
    settings = build_settings(
        {"hub": {"data_dir": str(tmp_path / "data"), "max_upload_mb": 1}, "machines": FLEET}, "test"
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 20, what="server start")
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(
            b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )

        def chunk(data: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(data), data)

        sock.sendall(chunk(b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.gcode"\r\n\r\n'))
        sent = 0
        answer = b""
        sock.setblocking(False)
        while sent < 20 * 1024 * 1024 and not answer:
            try:
                sock.sendall(chunk(b"G1 X1 Y1\n" * 1000))
                sent += 9000
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                answer = sock.recv(4096)
            except BlockingIOError:
                time.sleep(0.001)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 4 * 1024 * 1024, f"the hub read {sent} bytes before answering"
        assert stored_files(tmp_path) == []
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_profile_named_by_the_maker(client: TestClient) -> None:
    cura = cura_ender3(layers=2).encode()
    resp = client.post("/api/jobs", files={"file": ("c.gcode", cura)}, data={"profile": "prusa-mk3s"})
    assert resp.status_code == 422  # parks at Y220, the MK3S stops at 210
    assert [p["profile"] for p in resp.json()["detail"]["profiles"]] == ["prusa-mk3s"]
    resp = client.post("/api/jobs", files={"file": ("c.gcode", cura)}, data={"profile": "creality-ender3"})
    assert resp.status_code == 201
    resp = client.post("/api/jobs", files={"file": ("c.gcode", cura)}, data={"profile": "bambu-x1"})
    assert resp.status_code == 422 and resp.json()["detail"]["code"] == "job.unknown_profile"


def test_missing_file_part(client: TestClient) -> None:
    resp = client.post("/api/jobs", data={"name": "x"}, files={"other": ("a", b"b")})
    assert resp.status_code == 422
    assert resp.json()["detail"]["code"] == "upload.no_file"
