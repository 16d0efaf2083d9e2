"""End to end: `fabzone demo` with simulated printers; upload slicer-style files, print, clear, next job."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.gcode_samples import cura_ender3, prusa_mk3s, write
from tests.support import ROOT, Hub, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    # demo: printer-1 is a prusa-mk3s, printer-2 a creality-ender3.
    h = Hub(
        [
            "demo",
            "--data-dir",
            str(tmp_path / "data"),
            "--printers",
            "2",
            "--lasers",
            "0",
            "--sim-speed",
            "400",
        ],
        tmp_path,
    )
    h.start()
    yield h
    h.close()


def test_print_clear_and_next_job(hub: Hub, tmp_path: Path) -> None:
    machines = hub.machines()
    assert {m["profile"] for m in machines.values()} == {"prusa-mk3s", "creality-ender3"}
    with connect(f"ws://127.0.0.1:{hub.port}/api/events", open_timeout=10) as hub_ws:
        hello = json.loads(hub_ws.recv(timeout=10))
        assert hello["type"] == "hello"

        # The PrusaSlicer file purges at Y-3: only the MK3S can make it. Two of them: the second waits.
        prusa = write(tmp_path, "测试-立方体.gcode", prusa_mk3s(layers=6))
        first = hub.submit(prusa, name="Cubo di Li Wei", language="zh")
        second = hub.submit(prusa, name="Secondo cubo", filename="prova-città.gcode")
        assert first.status_code == 201, first.text
        assert second.status_code == 201, second.text
        first_job, second_job = first.json(), second.json()
        assert first_job["file_name"] == "测试-立方体.gcode"
        assert first_job["profiles"] == ["prusa-mk3s"]

        done = hub.wait_job(first_job["ticket"], {"completed", "failed", "interrupted"}, timeout=90)
        assert done["state"] == "completed", done
        assert done["machine_id"] == "printer-1"
        assert done["progress"] == pytest.approx(1.0)

        # The printer holds the finished part: the second job must wait for a technician.
        printer = hub.machines()["printer-1"]
        assert printer["state"] == "awaiting_clear"
        assert hub.job(second_job["id"])["state"] == "queued"
        assert hub.job(second_job["id"])["queue_position"] == 1

        cleared = hub.http.post("/api/machines/printer-1/clear", json={"result": "good"})
        assert cleared.status_code == 200, cleared.text
        running = hub.wait_job(second_job["id"], {"running", "completed"}, timeout=30)
        assert running["machine_id"] == "printer-1"
        assert hub.wait_job(second_job["id"], {"completed"}, timeout=90)["lines_acked"] == done["lines_acked"]

        # Live events told the story in order, with increasing sequence numbers.
        seen: list[dict] = []
        while True:
            try:
                seen.append(json.loads(hub_ws.recv(timeout=0.5)))
            except TimeoutError:
                break
        seqs = [e["seq"] for e in seen]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        states = [
            e["data"]["state"] for e in seen if e["type"] == "job" and e["data"]["id"] == first_job["id"]
        ]
        assert states[0] == "queued" and "running" in states and states[-1] == "completed"

        # Temperatures come with the firmware's own reports (M155, every couple of seconds): a print
        # at --sim-speed 400 may end before the first, so wait for one rather than for the clock.
        def temperatures_seen() -> bool:
            return any(e["type"] == "status" and e["data"].get("temperatures") for e in seen)

        deadline = time.monotonic() + 15
        while not temperatures_seen() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                seen.append(json.loads(hub_ws.recv(timeout=1)))
        assert temperatures_seen()


def test_cura_file_goes_to_the_ender(hub: Hub, tmp_path: Path) -> None:
    cura = write(tmp_path, "cube.gcode", cura_ender3(layers=4))
    resp = hub.submit(cura, name="cube")
    assert resp.status_code == 201, resp.text
    assert resp.json()["profiles"] == ["creality-ender3"]  # "Present print" parks at Y220
    job = hub.wait_job(resp.json()["id"], {"completed", "failed", "interrupted"}, timeout=90)
    assert job["state"] == "completed", job
    assert job["machine_id"] == "printer-2"


def test_reconnecting_page_gets_what_it_missed(hub: Hub, tmp_path: Path) -> None:
    with connect(f"ws://127.0.0.1:{hub.port}/api/events", open_timeout=10) as ws:
        start = json.loads(ws.recv(timeout=10))["seq"]
    resp = hub.submit(write(tmp_path, "a.gcode", prusa_mk3s(layers=2)), name="missed")
    assert resp.status_code == 201
    job_id = resp.json()["id"]
    hub.wait_job(job_id, {"completed"}, timeout=60)
    with connect(f"ws://127.0.0.1:{hub.port}/api/events?since={start}", open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello"
        replay = [json.loads(ws.recv(timeout=5)) for _ in range(hello["seq"] - start)]
    assert [e["seq"] for e in replay] == list(range(start + 1, hello["seq"] + 1))
    assert any(
        e["type"] == "job" and e["data"]["id"] == job_id and e["data"]["state"] == "completed" for e in replay
    )


def test_pause_resume_cancel_and_emergency_stop(hub: Hub, tmp_path: Path) -> None:
    long_print = write(tmp_path, "long.gcode", prusa_mk3s(layers=150))
    job = hub.submit(long_print, name="long").json()
    hub.wait_job(job["id"], {"running"}, timeout=30)
    wait_until(lambda: (hub.job(job["id"])["lines_acked"] or 0) > 0, 20, what="progress")

    assert hub.http.post(f"/api/jobs/{job['id']}/pause").status_code == 200
    assert hub.job(job["id"])["state"] == "paused"
    assert hub.machines()["printer-1"]["state"] == "paused"
    time.sleep(1.5)  # progress is written once a second: let it settle, then check it holds still
    held = hub.job(job["id"])["lines_acked"]
    time.sleep(1.5)
    assert hub.job(job["id"])["lines_acked"] == held
    assert hub.http.post(f"/api/jobs/{job['id']}/resume").status_code == 200
    wait_until(lambda: hub.job(job["id"])["lines_acked"] > held, 20, what="progress after resume")

    assert hub.http.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    cancelled = hub.wait_job(job["id"], {"cancelled"}, timeout=30)
    assert cancelled["machine_id"] == "printer-1"
    assert hub.machines()["printer-1"]["state"] == "awaiting_clear"
    assert hub.http.post("/api/machines/printer-1/clear").status_code == 200

    second = hub.submit(long_print, name="estop").json()
    hub.wait_job(second["id"], {"running"}, timeout=30)
    assert hub.http.post("/api/machines/printer-1/estop").status_code == 200
    # The driver ends the job as cancelled by a person (the firmware is halted: machine in error).
    stopped = hub.wait_job(second["id"], {"cancelled", "failed", "interrupted"}, timeout=20)
    assert stopped["state"] == "cancelled"
    machine = wait_until(
        lambda: (m := hub.machines()["printer-1"])["state"] == "error" and m, 10, what="error"
    )
    assert machine["state_reason"]
    # Nothing starts on a machine in error; a technician resets it, then it waits for a clear bed.
    assert hub.http.post("/api/machines/printer-1/reset").status_code == 200
    assert hub.machines()["printer-1"]["state"] == "awaiting_clear"


def test_command_line_submit_watch_and_tables(hub: Hub) -> None:
    fabzone = str(Path(sys.executable).with_name("fabzone"))
    sample = ROOT / "tests" / "data" / "gcode" / "prusa_mk3s_cube.gcode"
    done = subprocess.run(
        [fabzone, "submit", str(sample), "--hub", hub.url, "--name", "Cubo", "--watch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ticket" in done.stdout and done.stdout.rstrip().endswith("completed")
    machines = subprocess.run(
        [fabzone, "machines", "--hub", hub.url], capture_output=True, text=True, timeout=30
    )
    assert "printer-1" in machines.stdout and "awaiting_clear" in machines.stdout
    jobs = subprocess.run([fabzone, "jobs", "--hub", hub.url], capture_output=True, text=True, timeout=30)
    assert "Cubo" in jobs.stdout and "completed" in jobs.stdout
    rejected = subprocess.run(
        [fabzone, "submit", str(ROOT / "README.md"), "--hub", hub.url, "--language", "it"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert rejected.returncode == 1 and "non è un comando G-code" in rejected.stderr
