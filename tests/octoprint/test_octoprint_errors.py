"""OctoPrint's refusals as the hub sees them, provoked on the real OctoPrint: 409 (wrong state), 415
(file type), and 201 without `effectivePrint` (stored but not started)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from drivers.base import DriverState, NotReady
from drivers.octoprint.client import BadApiKey, OctoPrintClient, OctoPrintError, WrongState
from drivers.octoprint.driver import OctoPrintDriver, job_file_name
from drivers.profiles import get_profile
from tests.octoprint.conftest import files_on, gcode, octoprint_busy, start_hub, write_fleet
from tests.octoprint.server import OctoPrintServer
from tests.octoprint.watch import OctoPrintEvents
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def connected_client(op: OctoPrintServer) -> OctoPrintClient:
    client = OctoPrintClient(op.url, op.api_key)
    if client.printer() is None:
        client.connect_printer("VIRTUAL", None)
        wait_until(
            lambda: (s := client.printer()) is not None and s.operational, 20, 0.1, "printer connected"
        )
    return client


def test_upload_over_the_file_being_printed_is_409(op: OctoPrintServer, tmp_path: Path) -> None:
    """The one 409 an upload gets: the name of the file OctoPrint is printing (the same job started
    twice). The client maps it to WrongState, a NotReady for the coordinator."""
    client = connected_client(op)
    name = f"fabzone-409-{secrets.token_hex(3)}.gcode"
    path = gcode(tmp_path, 4000)
    try:
        assert client.upload_and_print(path, name).effective_print
        with pytest.raises(WrongState) as err:
            client.upload_and_print(path, name)
        assert isinstance(err.value, NotReady)
        assert "409" in str(err.value) and "currently being printed" in str(err.value), err.value
        # Pausing twice is OctoPrint's other kind of 409 on the job API.
        client.cancel()
        with op.api() as api:
            wait_until(lambda: not octoprint_busy(api), 30, 0.1, "OctoPrint to cancel")
        with pytest.raises(WrongState, match="409"):
            client.pause()
    finally:
        client.delete_file(name)
        client.close()


def test_driver_does_not_start_a_job_while_octoprint_prints(op: OctoPrintServer, tmp_path: Path) -> None:
    """A job for an OctoPrint that is printing something else is refused before any upload (NotReady
    with the other file's name); the job that prints is never touched."""
    client = connected_client(op)
    other = f"someone-else-{secrets.token_hex(3)}.gcode"
    driver = OctoPrintDriver(get_profile("prusa-mk3s"), op.url, api_key=op.api_key)
    try:
        with OctoPrintEvents(op) as events:
            assert client.upload_and_print(gcode(tmp_path, 4000), other).effective_print
            driver.connect()
            with pytest.raises(NotReady, match=other):
                driver.start_job("busy-1", gcode(tmp_path, 10, "small.gcode"), 14)
            assert driver.status.state == DriverState.IDLE and driver.status.job_id is None
            with op.api() as api:
                assert octoprint_busy(api)
        assert events.count("Upload", job_file_name("busy-1")) == 0, events.seen
        assert events.count("PrintStarted", other) == 1
    finally:
        driver.close()
        client.cancel()
        with op.api() as api:
            wait_until(lambda: not octoprint_busy(api), 30, 0.1, "OctoPrint to cancel")
        client.delete_file(other)
        client.close()


def test_non_gcode_name_is_415(op: OctoPrintServer, tmp_path: Path) -> None:
    client = OctoPrintClient(op.url, op.api_key)
    name = f"fabzone-415-{secrets.token_hex(3)}.txt"
    try:
        with pytest.raises(OctoPrintError) as err:
            client.upload_and_print(gcode(tmp_path, 10), name)
        assert not isinstance(err.value, (WrongState, BadApiKey))
        message = str(err.value)
        assert "415" in message and "upload as .gcode" in message and "invalid type" in message, message
        assert name not in files_on(op)
    finally:
        client.close()


def test_upload_while_printer_disconnected_is_stored_not_printed(op: OctoPrintServer, tmp_path: Path) -> None:
    """201 Created with effectivePrint false: OctoPrint keeps the file but cannot print it (its printer
    is disconnected); the client reports it instead of a success."""
    client = OctoPrintClient(op.url, op.api_key)
    name = f"fabzone-201-{secrets.token_hex(3)}.gcode"
    try:
        with op.api() as api:
            assert api.post("/api/connection", json={"command": "disconnect"}).status_code == 204
        wait_until(lambda: client.printer() is None, 20, 0.1, "OctoPrint's printer disconnected")
        result = client.upload_and_print(gcode(tmp_path, 10), name)
        assert (result.effective_select, result.effective_print) == (False, False), result
        assert name in files_on(op)
    finally:
        client.delete_file(name)
        client.close()


def key_without_print_permission(op: OctoPrintServer) -> str:
    """An OctoPrint user that may see, upload, select and delete files and connect the printer, but
    not print (a key given to the hub by mistake), and an application key for it."""
    with op.api() as api:
        user = {
            "name": "noprint",
            "password": secrets.token_hex(8),
            "active": True,
            "groups": ["readonly"],
            "permissions": ["FILES_UPLOAD", "FILES_SELECT", "FILES_DELETE", "CONNECTION"],
        }
        response = api.post("/api/access/users", json=user)
        assert response.status_code in (200, 409), response.text  # 409: made by an earlier test run
        response = api.post(
            "/api/plugin/appkeys", json={"command": "generate", "app": "fabzone-noprint", "user": "noprint"}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["api_key"])


def test_driver_start_without_effective_print(op: OctoPrintServer, tmp_path: Path) -> None:
    """The driver's path for 201 without effectivePrint: OctoPrint stored (and selected) the upload but
    did not print it, because the key's user lacks PRINT. The start fails with that reason, the file
    is removed again, and the driver has no job."""
    driver = OctoPrintDriver(get_profile("prusa-mk3s"), op.url, api_key=key_without_print_permission(op))
    name = job_file_name("noprint-1")
    try:
        with OctoPrintEvents(op) as events:
            driver.connect()
            with pytest.raises(NotReady) as err:
                driver.start_job("noprint-1", gcode(tmp_path, 10), 14)
            assert "did not start the print" in str(err.value) and "PRINT" in str(err.value), err.value
            assert driver.status.state == DriverState.IDLE and driver.status.job_id is None
            assert name not in files_on(op)
        assert events.count("Upload", name) == 1 and events.count("PrintStarted", name) == 0, events.seen
        upload = next(
            payload for kind, payload in events.seen if kind == "Upload" and payload.get("name") == name
        )
        # OctoPrint drops the print flag of a user without PRINT (its `print` says so too) but selects.
        assert (upload["effective_select"], upload["effective_print"]) == (True, False), upload
    finally:
        driver.close()


def test_hub_job_with_a_key_that_may_not_print(op: OctoPrintServer, tmp_path: Path) -> None:
    """The same through the hub: the job ends `interrupted` with OctoPrint's refusal as its reason."""
    hub = start_hub(tmp_path, write_fleet(tmp_path, op), key_without_print_permission(op))
    try:
        wait_until(lambda: hub.machines()["mk3s-op"]["state"] == "idle", 30, 0.1, "machine idle")
        resp = hub.submit(gcode(tmp_path, 10), name="not printed")
        assert resp.status_code == 201, resp.text
        job = hub.wait_job(resp.json()["ticket"], {"completed", "failed", "cancelled", "interrupted"}, 30)
        assert job["state"] == "interrupted", job
        assert "did not start the print" in job["error"] and "PRINT" in job["error"], job
        assert job_file_name(job["id"]) not in files_on(op)
    finally:
        hub.close()
