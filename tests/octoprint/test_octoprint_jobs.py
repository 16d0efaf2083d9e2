"""A job through the hub to a real OctoPrint: end to end, pause/resume/cancel, a bad API key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.octoprint.conftest import files_on, gcode, octoprint_busy, start_hub, write_fleet
from tests.octoprint.server import OctoPrintServer
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def job_files(op: OctoPrintServer) -> list[str]:
    return [name for name in files_on(op) if name.startswith("fabzone-")]


def test_job_end_to_end(op: OctoPrintServer, tmp_path: Path) -> None:
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    try:
        wait_until(lambda: hub.machines()["mk3s-op"]["state"] == "idle", 30, 0.1, "machine idle")
        resp = hub.submit(gcode(tmp_path, 300), name="cube")
        assert resp.status_code == 201, resp.text
        ticket = resp.json()["ticket"]
        job = hub.wait_job(ticket, {"completed", "failed", "interrupted", "cancelled"}, 60)
        assert job["state"] == "completed", job
        machine = hub.machines()["mk3s-op"]
        assert machine["state"] == "awaiting_clear"
        # The uploaded file is removed from OctoPrint once the print is over.
        wait_until(lambda: not job_files(op), 15, 0.2, "OctoPrint to have no job file left")
        assert hub.http.post("/api/machines/mk3s-op/clear").status_code == 200
    finally:
        hub.close()


def test_pause_resume_cancel(op: OctoPrintServer, tmp_path: Path) -> None:
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    try:
        wait_until(lambda: hub.machines()["mk3s-op"]["state"] == "idle", 30, 0.1, "machine idle")
        ticket = hub.submit(gcode(tmp_path, 6000), name="long").json()["ticket"]
        wait_until(lambda: (hub.job(ticket)["lines_acked"] or 0) > 0, 30, 0.1, "progress")

        def flags() -> dict[str, bool]:
            with op.api() as api:
                return api.get("/api/printer").json()["state"]["flags"]  # type: ignore[no-any-return]

        assert hub.http.post(f"/api/jobs/{ticket}/pause").status_code == 200
        wait_until(lambda: flags().get("paused"), 20, 0.1, "OctoPrint paused")
        assert hub.job(ticket)["state"] == "paused"
        assert hub.machines()["mk3s-op"]["state"] == "paused"

        assert hub.http.post(f"/api/jobs/{ticket}/resume").status_code == 200
        wait_until(lambda: flags().get("printing"), 20, 0.1, "OctoPrint printing again")
        assert hub.job(ticket)["state"] == "running"

        assert hub.http.post(f"/api/jobs/{ticket}/cancel").status_code in (200, 202)
        job = hub.wait_job(ticket, {"cancelled", "failed", "completed"}, 30)
        assert job["state"] == "cancelled", job
        with op.api() as api:
            # OctoPrint fires PrintFailed (which ends the job) just before it leaves "Cancelling".
            wait_until(lambda: not octoprint_busy(api), 10, 0.1, "OctoPrint out of Cancelling")
        assert hub.machines()["mk3s-op"]["state"] == "awaiting_clear"
    finally:
        hub.close()


def test_bad_api_key(op: OctoPrintServer, tmp_path: Path) -> None:
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), "0" * 32)
    try:

        def refused() -> dict | None:
            m = hub.machines()["mk3s-op"]
            return m if m["state"] == "offline" and "API key" in (m["state_reason"] or "") else None

        machine = wait_until(refused, 30, 0.1, "machine offline with the API key as reason")
        assert machine is not None and "403" in machine["state_reason"]
    finally:
        hub.close()


def test_missing_api_key_variable(op: OctoPrintServer, tmp_path: Path) -> None:
    config = write_fleet(tmp_path, op, key_env="FABZONE_TEST_UNSET_OCTOPRINT_KEY")
    hub = start_hub(tmp_path, config, op.api_key)
    try:

        def named() -> bool:
            return "FABZONE_TEST_UNSET_OCTOPRINT_KEY" in (hub.machines()["mk3s-op"]["state_reason"] or "")

        wait_until(named, 30, 0.1, "the missing variable named as the reason")
    finally:
        hub.close()


def test_emergency_stop(op: OctoPrintServer, tmp_path: Path) -> None:
    """M112 through OctoPrint's command endpoint: the job ends `cancelled` (a person stopped it)."""
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    try:
        wait_until(lambda: hub.machines()["mk3s-op"]["state"] == "idle", 30, 0.1, "machine idle")
        ticket = hub.submit(gcode(tmp_path, 6000), name="long").json()["ticket"]
        wait_until(lambda: (hub.job(ticket)["lines_acked"] or 0) > 0, 30, 0.1, "progress")
        assert hub.http.post("/api/machines/mk3s-op/estop").status_code == 200
        job = hub.wait_job(ticket, {"cancelled", "failed", "completed", "interrupted"}, 30)
        assert job["state"] == "cancelled", job
        with op.api() as api:
            assert not octoprint_busy(api)
    finally:
        hub.close()
