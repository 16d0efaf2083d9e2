"""The technicians' dashboard in a real browser: log in, clear a bed, pause, resume, emergency stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import gcode_samples
from tests.browser.conftest import shot
from tests.support import Hub

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def expect() -> Any:
    from playwright.sync_api import expect as expect_

    return expect_


def submit(hub: Hub, tmp_path: Path, name: str, layers: int) -> dict[str, Any]:
    path = gcode_samples.write(tmp_path, f"{name}.gcode", gcode_samples.prusa_mk3s(layers=layers))
    res = hub.submit(path, name=name, maker="Chen", profile="prusa-mk3s")
    assert res.status_code == 201, res.text
    return res.json()  # type: ignore[no-any-return]


def test_login_clear_pause_resume_estop(page: Any, hub: Hub, tmp_path: Path) -> None:
    page.goto(f"{hub.url}/tech")
    page.fill("#token", "not-a-valid-token-at-all")
    page.click("#login-form button[type=submit]")
    expect()(page.locator("#login-error")).to_be_visible()

    page.fill("#token", hub.tech_token)
    page.click("#login-form button[type=submit]")
    expect()(page.locator("#dash")).to_be_visible()
    expect()(page.locator("#who")).to_contain_text("demo")
    assert page.evaluate("localStorage.getItem('fabzone.token')") == hub.tech_token
    expect()(page.locator("#machines article.machine")).to_have_count(3)  # two printers and the laser

    # A finished print leaves the bed to clear: the technician confirms it (part good).
    short = submit(hub, tmp_path, "Ruota", layers=8)
    prusa = page.locator("article.machine[data-machine=printer-1]")
    expect()(prusa).to_have_attribute("data-state", "awaiting_clear", timeout=60_000)
    shot(page, "tech-awaiting-clear-en")
    prusa.locator("button[data-action=clear_good]").click()
    expect()(prusa).to_have_attribute("data-state", "idle")
    assert hub.job(short["ticket"])["state"] == "completed"

    # The history, filtered to completed jobs on that printer, lists it.
    page.check("#filter-states input[value=completed]")
    page.select_option("#filter-machine", "printer-1")
    page.click("#filters button[type=submit]")
    expect()(page.locator(f"#history tr:has(td.ticket:text-is('{short['ticket']}'))")).to_be_visible()

    # A long print: pause, resume, then the big red button.
    long = submit(hub, tmp_path, "Vaso", layers=400)
    pause = prusa.locator("button[data-action=pause]")
    expect()(pause).to_be_visible(timeout=60_000)
    pause.click()
    expect()(prusa).to_have_attribute("data-state", "paused")
    prusa.locator("button[data-action=resume]").click()
    expect()(prusa).to_have_attribute("data-state", "running")

    prusa.locator("button[data-action=detail]").click()
    expect()(page.locator("#chart svg path[data-series=T]")).to_be_attached()
    page.click("button[data-lang=zh]")
    expect()(prusa.locator("button[data-action=estop]")).to_have_text("紧急停止")
    shot(page, "tech-running-zh")

    prusa.locator("button[data-action=estop]").click()
    expect()(prusa).to_have_attribute("data-state", "error")
    alert = page.locator("#alerts [data-alert=error][data-machine=printer-1]")
    expect()(alert).to_be_visible()
    expect()(prusa.locator(".reason-box")).to_be_visible()
    hub.wait_job(long["ticket"], {"cancelled"}, timeout=30)
    page.click("button[data-lang=en]")
    shot(page, "tech-estop-en")
