"""The OctoPrint driver follows its print over the push socket; REST polling only while the socket is
down; a new login when OctoPrint asks for one (`reauthRequired`). Against the real OctoPrint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.base import DriverEvent, JobEnded
from drivers.octoprint.driver import OctoPrintDriver, job_file_name
from drivers.profiles import get_profile
from tests.octoprint.conftest import files_on, gcode
from tests.octoprint.relay import PushCutter
from tests.octoprint.server import USER, OctoPrintServer
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


class Followed:
    """A driver on the real OctoPrint (`url`: OctoPrint's or a relay's) and everything it reported."""

    def __init__(self, op: OctoPrintServer, url: str) -> None:
        self.events: list[DriverEvent] = []
        self.driver = OctoPrintDriver(
            get_profile("prusa-mk3s"),
            url,
            on_event=self.events.append,
            api_key=op.api_key,
            serial_port="VIRTUAL",
        )

    def ended(self) -> list[JobEnded]:
        return [e for e in self.events if isinstance(e, JobEnded)]

    def lines(self) -> int:
        return self.driver.status.lines_acked


@pytest.fixture
def relay(op: OctoPrintServer) -> Iterator[PushCutter]:
    with PushCutter(op.port) as cutter:
        yield cutter


def progress_while(followed: Followed, what: str, steps: int = 3) -> tuple[int, int]:
    """Wait until the job's progress moved `steps` times; (pushed, polls) counted meanwhile."""
    before = followed.driver.following
    values = {followed.lines()}

    def moved() -> bool:
        values.add(followed.lines())
        return len(values) > steps

    wait_until(moved, 30, 0.05, f"progress {what}")
    after = followed.driver.following
    return after.pushed - before.pushed, after.polls - before.polls


def test_progress_arrives_over_push_polling_only_while_it_is_cut(
    op: OctoPrintServer, relay: PushCutter, tmp_path: Path
) -> None:
    followed = Followed(op, relay.url)
    driver = followed.driver
    driver.connect()
    try:
        wait_until(lambda: driver.following.push_logged_in, 20, 0.05, "the push socket to log in")
        path = gcode(tmp_path, 5000)
        total = len(path.read_text().splitlines())
        driver.start_job("push-1", path, total)

        # Over the push socket: progress moves, `current` messages arrive, not one REST poll.
        pushed, polls = progress_while(followed, "over the push socket")
        assert pushed > 0 and polls == 0, driver.following
        assert driver.following.push_logins == 1

        # Socket cut (and refused): the driver notices and polls; progress keeps coming, by REST only.
        relay.cut()
        wait_until(lambda: not driver.following.push_logged_in, 10, 0.05, "the driver to see the cut")
        cut = driver.following
        pushed, polls = progress_while(followed, "by polling")
        assert pushed == 0 and polls >= 2, driver.following
        assert relay.refused > 0, "the driver never tried to open the push socket again"
        assert not driver.following.push_logged_in

        # Socket back: a new login, and following goes back to push (polling stops).
        relay.restore()
        wait_until(lambda: driver.following.push_logged_in, 20, 0.05, "the push socket back")
        assert driver.following.push_logins == cut.push_logins + 1
        time.sleep(1.5)  # a poll that was already under way when the socket came back
        pushed, polls = progress_while(followed, "over push again")
        assert pushed > 0 and polls == 0, driver.following

        wait_until(followed.ended, 60, 0.1, "the job to end")
        assert [(e.job_id, e.outcome) for e in followed.ended()] == [("push-1", "completed")]
        assert followed.lines() == total

        name = job_file_name("push-1")
        wait_until(lambda: name not in files_on(op), 15, 0.2, "the driver to delete the job file")
    finally:
        driver.close()


def test_logs_in_again_when_octoprint_asks(op: OctoPrintServer) -> None:
    """OctoPrint sends `reauthRequired` ("modified") to every socket of a user whose account changed
    (octoprint/server/util/sockjs.py `on_user_modified`): here the hub's user's password, changed
    through OctoPrint's own API (PUT /api/access/users/<user>/password)."""
    followed = Followed(op, op.url)
    driver = followed.driver
    driver.connect()
    try:
        wait_until(lambda: driver.following.push_logged_in, 20, 0.05, "the push socket to log in")
        before = driver.following
        assert (before.push_logins, before.push_reauths) == (1, 0)

        new = f"{op.password}-changed"
        with op.api() as api:
            response = api.put(
                f"/api/access/users/{USER}/password", json={"password": new, "current": op.password}
            )
        assert response.status_code == 200, response.text
        op.password = new

        def logged_in_again() -> bool:
            now = driver.following
            return now.push_reauths == 1 and now.push_logins == 2 and now.push_logged_in

        wait_until(logged_in_again, 20, 0.05, "a new login after reauthRequired")
        assert driver.following.last_reauth_reason == "modified"
        # Status keeps arriving over the new socket.
        pushed = driver.following.pushed
        wait_until(lambda: driver.following.pushed > pushed + 2, 10, 0.05, "status over the new socket")
        assert driver.following.push_logged_in
    finally:
        driver.close()
