"""A laser job through the pages: approved, armed and watched on the dashboard and the wall; another
rejected with a typed reason; a door opened mid-cut shown with its reason and no Resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.profiles import get_profile
from drivers.sim.grbl import GrblSimulator
from tests.browser.conftest import shot
from tests.e2e.inprocess import one_machine, serve_hub
from tests.support import Hub, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
LASER = "laser-1"  # the demo's laser: grbl-laser-400 (built with M7)


def expect() -> Any:
    from playwright.sync_api import expect as expect_

    return expect_


def laser_file(tmp_path: Path, name: str, squares: int) -> Path:
    """Squares 40 mm across cut at 10 mm/s: 16 s of cutting each on the simulator's clock (0.04 s at
    --sim-speed 400), so a test picks how long the job runs. Air assist by M7 and M8: the 400's
    firmware has M7 (its profile says so), and the file must pass validation and run."""
    lines = ["; fabzone browser test", "G90", "G21", "M7", "M8", "M4 S0"]
    for i in range(squares):
        x, y = 10 + (i % 8) * 45, 10 + (i // 8 % 8) * 45
        lines += [
            f"G0 X{x} Y{y}",
            f"G1 X{x + 40} Y{y} S600 F600",
            f"G1 X{x + 40} Y{y + 40}",
            f"G1 X{x} Y{y + 40}",
            f"G1 X{x} Y{y}",
        ]
    lines += ["M5", "M9", "G0 X0 Y0", ""]
    path = tmp_path / f"{name}.gcode"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def submit(post: Any, path: Path, name: str) -> dict[str, Any]:
    with path.open("rb") as fh:
        res = post(
            "/api/jobs", files={"file": (path.name, fh)}, data={"kind": "laser", "name": name, "maker": "Lin"}
        )
    assert res.status_code == 201, res.text
    job: dict[str, Any] = res.json()
    assert job["state"] == "pending_approval"
    return job


def login(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/tech")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    expect()(page.locator("#dash")).to_be_visible()


def test_approve_arm_cut_and_reject_in_the_pages(context: Any, page: Any, hub: Hub, tmp_path: Path) -> None:
    login(page, hub.url, hub.tech_token)
    wall = context.new_page()
    wall.goto(hub.url)
    card = page.locator(f"article.machine[data-machine={LASER}]")
    wall_card = wall.locator(f"article.machine[data-machine={LASER}]")
    expect()(card).to_have_attribute("data-state", "idle")
    expect()(wall_card.locator(".laser")).to_have_attribute("data-laser", "off")

    # About 2100 simulated seconds of cutting (5 s at --sim-speed 400): long enough to see it running.
    job = submit(hub.http.post, laser_file(tmp_path, "coaster", squares=128), "Coaster")
    approval = page.locator(f"#alerts [data-alert=approval][data-job='{job['id']}']")
    expect()(approval).to_contain_text(job["ticket"])
    expect()(approval).to_contain_text("Coaster")
    shot(page, "tech-laser-pending-en")
    approval.locator("button[data-action=approve]").click()
    expect()(approval).to_have_count(0)

    # Approved, the laser takes it and waits for a technician at the machine: nothing is cut yet.
    arm = card.locator("button[data-action=arm]")
    expect()(arm).to_be_visible()
    expect()(card.locator(".reason-box[data-reason=arming]")).to_be_visible()
    expect()(wall_card.locator(".laser")).to_have_attribute("data-laser", "arming")
    expect()(wall_card.locator(".laser")).to_have_text("Waiting for a technician to arm the laser")
    assert hub.job(job["id"])["state"] == "starting"
    assert hub.machines()[LASER]["live"]["arming"]["job_id"] == job["id"]
    shot(wall, "wall-laser-arming-en")
    wall.click("button[data-lang=it]")
    expect()(wall_card.locator(".laser")).to_have_text("In attesa che un tecnico armi il laser")
    wall.click("button[data-lang=zh]")
    expect()(wall_card.locator(".laser")).to_have_text("等待技术人员启用激光")
    shot(wall, "wall-laser-arming-zh")
    wall.click("button[data-lang=en]")

    arm.click()
    expect()(card).to_have_attribute("data-state", "running")
    # Running says the laser is cutting, and nothing about a lid the hub cannot see.
    expect()(wall_card.locator(".laser")).to_have_text("Laser cutting")
    shot(wall, "wall-laser-cutting-en")
    expect()(card).to_have_attribute("data-state", "awaiting_clear", timeout=60_000)
    assert hub.job(job["id"])["state"] == "completed"
    expect()(wall_card.locator(".laser")).to_have_attribute("data-laser", "off")
    shot(page, "tech-laser-done-en")
    card.locator("button[data-action=clear_good]").click()
    expect()(card).to_have_attribute("data-state", "idle")

    # A second job is rejected from the page, with the reason the technician typed (two clicks).
    second = submit(hub.http.post, laser_file(tmp_path, "sign", squares=2), "Sign")
    row = page.locator(f"#alerts [data-alert=approval][data-job='{second['id']}']")
    row.locator(f"input[data-reason-for='{second['id']}']").fill("Acrylic is not allowed: bring plywood")
    reject = row.locator("button[data-action=reject]")
    reject.click()
    expect()(reject).to_have_text("Confirm: Reject")
    shot(page, "tech-laser-reject-en")
    reject.click()
    expect()(row).to_have_count(0)
    rejected = hub.wait_job(second["id"], {"rejected"}, timeout=10)
    assert rejected["error"] == "Acrylic is not allowed: bring plywood"
    assert hub.machines()[LASER]["state"] == "idle"


@pytest.fixture
def door_hub(tmp_path: Path) -> Iterator[tuple[httpx.Client, GrblSimulator]]:
    """A hub in this process with one simulated laser the test can open the door of."""
    # Slower than the demo: the cut must still be going when the door opens.
    sim = GrblSimulator(get_profile("grbl-laser-400"), speed=100.0)
    port = sim.start()
    config = one_machine(tmp_path, LASER, "grbl", port, "grbl-laser-400")
    try:
        with serve_hub(config) as client:
            wait_until(
                lambda: client.get(f"/api/machines/{LASER}").json()["state"] == "idle",
                30,
                what="laser online",
            )
            yield client, sim
    finally:
        sim.stop()


def test_door_open_pause_shows_its_reason_and_no_resume(
    context: Any, page: Any, door_hub: tuple[httpx.Client, GrblSimulator], tmp_path: Path
) -> None:
    client, sim = door_hub
    url = str(client.base_url).rstrip("/")
    login(page, url, client.headers["Authorization"].removeprefix("Bearer "))
    wall = context.new_page()
    wall.goto(url)
    card = page.locator(f"article.machine[data-machine={LASER}]")
    wall_card = wall.locator(f"article.machine[data-machine={LASER}]")

    # 64 squares: about 10 s at speed 100, so the door opens mid-cut.
    job = submit(client.post, laser_file(tmp_path, "panel", squares=64), "Panel")
    assert client.post(f"/api/jobs/{job['id']}/approve").status_code == 200
    wait_until(
        lambda: client.get(f"/api/machines/{LASER}").json()["live"]["arming"], 20, what="waiting to arm"
    )
    assert client.post(f"/api/machines/{LASER}/arm").status_code == 200
    expect()(card).to_have_attribute("data-state", "running")
    wait_until(lambda: len(sim.executed) > 30, 20, what="cutting")

    sim.open_door()
    expect()(card).to_have_attribute("data-state", "paused")
    reason = card.locator(".reason-box[data-reason=paused]")
    expect()(reason).to_contain_text("Lid open")
    # GRBL would ignore a cycle start with the door open: no Resume, the reason in its place.
    expect()(card.locator("[data-blocked=resume]")).to_have_text("Close the lid to resume")
    expect()(card.locator("button[data-action=resume]")).to_have_count(0)
    expect()(card.locator("button[data-action=estop]")).to_be_visible()
    expect()(wall_card.locator(".reason[data-for=paused]")).to_contain_text("Lid open")
    expect()(wall_card.locator(".laser")).to_have_text("Laser off")
    assert sim.laser_power == 0
    shot(page, "tech-laser-door-open-en")
    shot(wall, "wall-laser-door-open-en")
    page.click("button[data-lang=it]")
    expect()(card.locator("[data-blocked=resume]")).to_have_text("Chiudi il coperchio per riprendere")
    expect()(reason).to_contain_text("Coperchio aperto")
    page.click("button[data-lang=zh]")
    expect()(reason).to_contain_text("盖子已打开")
    shot(page, "tech-laser-door-open-zh")
    page.click("button[data-lang=en]")

    # Closed (GRBL `Door:0`): Resume is offered again and the technician resumes from the page.
    sim.close_door()
    resume = card.locator("button[data-action=resume]")
    expect()(resume).to_be_visible()
    expect()(reason).to_contain_text("Lid closed")
    expect()(wall_card.locator(".reason[data-for=paused]")).to_contain_text("Lid closed")
    resume.click()
    expect()(card).to_have_attribute("data-state", "running")
    expect()(wall_card.locator(".reason")).to_have_count(0)
    expect()(card).to_have_attribute("data-state", "awaiting_clear", timeout=60_000)
    assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "completed"
