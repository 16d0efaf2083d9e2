"""OctoPrint owns the stream: a hub restart or an OctoPrint outage keeps the job, never prints it twice."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.octoprint.conftest import gcode, octoprint_busy, start_hub, write_fleet
from tests.octoprint.server import OctoPrintServer
from tests.support import Hub, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ENDED = {"completed", "failed", "cancelled", "interrupted"}


def submit_and_wait_printing(hub: Hub, tmp_path: Path, moves: int) -> str:
    wait_until(lambda: hub.machines()["mk3s-op"]["state"] == "idle", 30, 0.1, "machine idle")
    resp = hub.submit(gcode(tmp_path, moves), name="long")
    assert resp.status_code == 201, resp.text
    ticket = str(resp.json()["ticket"])
    wait_until(lambda: (hub.job(ticket)["lines_acked"] or 0) > 0, 30, 0.1, "progress in the database")
    return ticket


def states_of(hub: Hub, ticket: str) -> list[str]:
    return [e["to_state"] for e in hub.http.get(f"/api/jobs/{ticket}/events").json()]


def prints_of(op: OctoPrintServer, name: str) -> dict:
    with op.api() as api:
        return api.get(f"/api/files/local/{name}").json().get("prints") or {}  # type: ignore[no-any-return]


def test_hub_killed_mid_print_job_keeps_running(op: OctoPrintServer, tmp_path: Path, db_url: str) -> None:
    config = write_fleet(tmp_path, op, db_url)
    hub = start_hub(tmp_path, config, op.api_key)
    try:
        ticket = submit_and_wait_printing(hub, tmp_path, 2000)
        hub.kill(signal.SIGKILL)
        with op.api() as api:
            assert octoprint_busy(api), "OctoPrint stopped printing with the hub"
        hub.start()
        # Not interrupted: the job is still running and reports progress, then completes.
        job = hub.job(ticket)
        assert job["state"] == "running", job
        before = job["lines_acked"] or 0
        wait_until(lambda: (hub.job(ticket)["lines_acked"] or 0) > before, 30, 0.1, "progress after restart")
        assert hub.machines()["mk3s-op"]["state"] == "running"
        job = hub.wait_job(ticket, ENDED, 60)
        assert job["state"] == "completed", job
        assert "interrupted" not in states_of(hub, ticket)
        assert hub.machines()["mk3s-op"]["state"] == "awaiting_clear"
    finally:
        hub.close()


def test_cancelled_on_octoprint_while_hub_down(op: OctoPrintServer, tmp_path: Path) -> None:
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    try:
        ticket = submit_and_wait_printing(hub, tmp_path, 4000)
        hub.kill(signal.SIGKILL)
        with op.api() as api:
            assert api.post("/api/job", json={"command": "cancel"}).status_code == 204
            wait_until(lambda: not octoprint_busy(api), 30, 0.1, "OctoPrint to cancel")
        hub.start()
        job = hub.wait_job(ticket, ENDED, 30)
        assert job["state"] == "failed", job
        assert "OctoPrint" in (job["error"] or ""), job
    finally:
        hub.close()


def test_octoprint_unreachable_then_back(op: OctoPrintServer, tmp_path: Path) -> None:
    """SIGSTOP freezes OctoPrint (and its virtual printer): unreachable, but it keeps its print, as
    behind a network outage. The machine goes offline with its job kept, then carries on."""
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    assert op.proc is not None
    try:
        ticket = submit_and_wait_printing(hub, tmp_path, 3000)
        job_id = hub.job(ticket)["id"]
        os.killpg(op.proc.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: hub.machines()["mk3s-op"]["state"] == "offline", 40, 0.2, "machine offline")
            assert hub.job(ticket)["state"] == "running"
        finally:
            os.killpg(op.proc.pid, signal.SIGCONT)
        wait_until(lambda: hub.machines()["mk3s-op"]["state"] == "running", 60, 0.2, "machine back, running")
        job = hub.wait_job(ticket, ENDED, 60)
        assert job["state"] == "completed", job
        # Printed once: one successful print of the job's file, never a second upload+print.
        name = f"fabzone-{job_id}.gcode"
        record = prints_of(op, name)
        assert record == {} or (record.get("success"), record.get("failure")) == (1, 0), record
    finally:
        hub.close()


def test_octoprint_restarted_mid_print(op: OctoPrintServer, tmp_path: Path) -> None:
    """A restarted OctoPrint has lost the print (it does not resume one): the job ends `interrupted`
    with the reason once OctoPrint is back, and is not printed again by itself."""
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    try:
        ticket = submit_and_wait_printing(hub, tmp_path, 3000)
        op.stop()
        wait_until(lambda: hub.machines()["mk3s-op"]["state"] == "offline", 30, 0.2, "machine offline")
        assert hub.job(ticket)["state"] == "running"
        op.start()
        job = hub.wait_job(ticket, ENDED, 60)
        assert job["state"] == "interrupted", job
        assert "OctoPrint" in (job["error"] or "")
        with op.api() as api:
            assert not octoprint_busy(api)
    finally:
        hub.close()
