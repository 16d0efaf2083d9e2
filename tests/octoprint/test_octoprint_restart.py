"""OctoPrint owns the stream: a hub restart or an OctoPrint outage keeps the job, never prints it twice;
a print that ended while the hub was away is settled from what OctoPrint still knows.

"Printed once" is counted on OctoPrint's own push socket by a second client (`OctoPrintEvents`):
the hub deletes the job file afterwards, so the file's print record cannot say it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from drivers.octoprint.driver import job_file_name
from drivers.octoprint.ending import CANCELLED_ON_OCTOPRINT_INFERRED
from tests.octoprint.conftest import gcode, octoprint_busy, start_hub, write_fleet
from tests.octoprint.server import OctoPrintServer
from tests.octoprint.watch import OctoPrintEvents
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


def job_file(hub: Hub, ticket: str) -> str:
    return job_file_name(hub.job(ticket)["id"])


def assert_printed_once(events: OctoPrintEvents, name: str, end: str = "PrintDone") -> None:
    """OctoPrint got the file once and started it once, and the print ended once (as `end`)."""
    assert not events.dropped, "the test's push socket dropped: it may have missed events"
    counts = {
        kind: events.count(kind, name) for kind in ("Upload", "PrintStarted", "PrintDone", "PrintFailed")
    }
    expected = {"Upload": 1, "PrintStarted": 1, "PrintDone": 0, "PrintFailed": 0, end: 1}
    assert counts == expected, (counts, events.seen)


def wait_octoprint_idle(op: OctoPrintServer, timeout: float) -> None:
    with op.api() as api:
        wait_until(lambda: not octoprint_busy(api), timeout, 0.1, "OctoPrint to stop printing")


def test_hub_killed_mid_print_job_keeps_running(op: OctoPrintServer, tmp_path: Path, db_url: str) -> None:
    config = write_fleet(tmp_path, op, db_url)
    hub = start_hub(tmp_path, config, op.api_key)
    try:
        with OctoPrintEvents(op) as events:
            ticket = submit_and_wait_printing(hub, tmp_path, 2000)
            hub.kill(signal.SIGKILL)
            with op.api() as api:
                assert octoprint_busy(api), "OctoPrint stopped printing with the hub"
            hub.start()
            # Not interrupted: the job is still running and reports progress, then completes.
            job = hub.job(ticket)
            assert job["state"] == "running", job
            before = job["lines_acked"] or 0
            wait_until(
                lambda: (hub.job(ticket)["lines_acked"] or 0) > before, 30, 0.1, "progress after restart"
            )
            assert hub.machines()["mk3s-op"]["state"] == "running"
            job = hub.wait_job(ticket, ENDED, 60)
            assert job["state"] == "completed", job
            assert "interrupted" not in states_of(hub, ticket)
            assert hub.machines()["mk3s-op"]["state"] == "awaiting_clear"
        # The restarted hub followed the print it found; it never uploaded or started it again.
        assert_printed_once(events, job_file(hub, ticket))
    finally:
        hub.close()


def test_print_finished_while_hub_down(op: OctoPrintServer, tmp_path: Path) -> None:
    """The hub is stopped, OctoPrint finishes the print, the hub starts: the job is `completed` (from
    the file's print record: the PrintDone event went to nobody)."""
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    try:
        with OctoPrintEvents(op) as events:
            ticket = submit_and_wait_printing(hub, tmp_path, 1200)
            name = job_file(hub, ticket)
            hub.kill(signal.SIGTERM)
            wait_octoprint_idle(op, 60)
            assert events.count("PrintDone", name) == 1, events.seen
            assert prints_of(op, name).get("last", {}).get("success") is True
            hub.start()
            job = hub.wait_job(ticket, ENDED, 30)
            assert job["state"] == "completed", job
            assert job["error"] is None, job
            assert "interrupted" not in states_of(hub, ticket)
            assert hub.machines()["mk3s-op"]["state"] == "awaiting_clear"
        assert_printed_once(events, name)
    finally:
        hub.close()


def test_cancelled_on_octoprint_while_hub_down(op: OctoPrintServer, tmp_path: Path) -> None:
    """Cancelled at OctoPrint while the hub is down: `failed`, and the reason says it was cancelled
    there. OctoPrint keeps no reason with a failed print (`prints.last`/`history`: success, date,
    printer profile only); what tells a cancel from an error is that an error leaves OctoPrint's printer
    closed with the error text (next test), a cancel leaves it operational without one."""
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    try:
        with OctoPrintEvents(op) as events:
            ticket = submit_and_wait_printing(hub, tmp_path, 4000)
            name = job_file(hub, ticket)
            hub.kill(signal.SIGKILL)
            with op.api() as api:
                assert api.post("/api/job", json={"command": "cancel"}).status_code == 204
            wait_octoprint_idle(op, 30)
            hub.start()
            job = hub.wait_job(ticket, ENDED, 30)
        assert job["state"] == "failed", job
        assert job["error"] == CANCELLED_ON_OCTOPRINT_INFERRED, job
        assert job["error"].startswith("cancelled on OctoPrint"), job
        assert_printed_once(events, name, end="PrintFailed")
    finally:
        hub.close()


def test_failed_on_octoprint_while_hub_down(op: OctoPrintServer, tmp_path: Path) -> None:
    """A firmware error (the virtual printer's thermal runaway) while the hub is down: `failed` with
    the firmware's words, which OctoPrint keeps (`GET /api/job` `error`) until its printer is
    reconnected — the hub reads them before it reconnects the printer."""
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    try:
        ticket = submit_and_wait_printing(hub, tmp_path, 4000)
        hub.kill(signal.SIGKILL)
        with op.api() as api:
            command = {"commands": ["!!DEBUG:trigger_fatal_error_marlin"]}
            assert api.post("/api/printer/command", json=command).status_code == 204
            wait_until(lambda: api.get("/api/job").json().get("error"), 30, 0.1, "OctoPrint's printer error")
        hub.start()
        job = hub.wait_job(ticket, ENDED, 30)
        assert job["state"] == "failed", job
        assert "Thermal Runaway" in (job["error"] or ""), job
        # The hub reconnected OctoPrint's printer after reading the error.
        wait_until(lambda: hub.machines()["mk3s-op"]["state"] == "awaiting_clear", 30, 0.1, "awaiting_clear")
    finally:
        hub.close()


def test_octoprint_unreachable_then_back(op: OctoPrintServer, tmp_path: Path) -> None:
    """SIGSTOP freezes OctoPrint (and its virtual printer): unreachable, but it keeps its print, as
    behind a network outage. The machine goes offline with its job kept, then carries on."""
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), op.api_key)
    assert op.proc is not None
    try:
        with OctoPrintEvents(op) as events:
            ticket = submit_and_wait_printing(hub, tmp_path, 3000)
            os.killpg(op.proc.pid, signal.SIGSTOP)
            try:
                wait_until(
                    lambda: hub.machines()["mk3s-op"]["state"] == "offline", 40, 0.2, "machine offline"
                )
                assert hub.job(ticket)["state"] == "running"
            finally:
                os.killpg(op.proc.pid, signal.SIGCONT)
            wait_until(
                lambda: hub.machines()["mk3s-op"]["state"] == "running", 60, 0.2, "machine back, running"
            )
            job = hub.wait_job(ticket, ENDED, 60)
            assert job["state"] == "completed", job
        # Printed once: one upload and one start of the job's file, never a second upload+print
        # after the outage (seen live on OctoPrint's socket; the file itself is deleted by now).
        assert_printed_once(events, job_file(hub, ticket))
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
