"""The makers' pages in a real browser: kiosk (zh, it, en), the ticket on a phone, the wall."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests import gcode_samples
from tests.browser.conftest import clear_beds, shot
from tests.support import ROOT, Hub

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def expect() -> Any:
    from playwright.sync_api import expect as expect_

    return expect_


def cube(tmp_path: Path, layers: int = 30) -> Path:
    return gcode_samples.write(tmp_path, "立方体 cube.gcode", gcode_samples.prusa_mk3s(layers=layers))


def too_wide(tmp_path: Path) -> Path:
    """A slicer-style file whose head goes to X=300: wider than every printer here."""
    text = gcode_samples.prusa_mk3s(layers=3).replace("G28 W ; home", "G1 X300 Y100 F3000\nG28 W ; home", 1)
    return gcode_samples.write(tmp_path, "troppo_largo.gcode", text)


def test_kiosk_in_chinese_then_ticket_to_done(page: Any, hub: Hub, tmp_path: Path) -> None:
    clear_beds(hub)
    page.goto(f"{hub.url}/kiosk")
    page.click("button[data-lang=zh]")
    expect()(page.locator("h1")).to_have_text("动手做点东西")
    expect()(page.locator("html")).to_have_attribute("lang", "zh-CN")
    # "Any printer", the two printer models present in the hall, and the laser.
    expect()(page.locator("#targets label")).to_have_count(4)
    # Long enough that the phone sees it in progress before it is done (sim-speed 400).
    page.set_input_files("#file", str(cube(tmp_path, layers=80)))
    page.fill("#maker", "小明")
    page.fill("#name", "钥匙扣")
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as sent:
        page.click("#submit")
    secret = sent.value.json()["secret"]

    code = page.locator("#ticket-code")
    expect()(code).to_have_text(re.compile(r"^[A-Z2-9]{6}$"))
    ticket = code.inner_text()
    # The QR code is drawn, and it is the one that carries the secret (fetched with it, so a blob).
    page.wait_for_function(
        "document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0"
        " && document.getElementById('qr').src.startsWith('blob:')"
    )
    # The shared kiosk keeps no secret: the next visitor cannot cancel this job from here.
    assert page.evaluate(f"localStorage.getItem('fabzone.secret.{ticket}')") is None
    assert hub.job(ticket)["language"] == "zh"
    shot(page, "kiosk-ticket-zh")

    # The maker's phone: another device (its own storage, set to Chinese), opening what the QR encodes.
    phone_context = page.context.browser.new_context(viewport={"width": 390, "height": 800}, locale="zh-CN")
    phone = phone_context.new_page()
    phone.goto(f"{hub.url}/ticket/{ticket}#k={secret}")
    expect()(phone.locator("#code")).to_have_text(ticket)
    expect()(phone.locator("#name")).to_have_text("钥匙扣")
    expect()(phone.locator("#cancel")).to_be_visible()  # the scanned code made this phone the owner
    assert "#" not in phone.url  # the secret left the address bar (kept in the phone's storage)
    # Someone else opening the plain ticket link sees the job but cannot cancel it.
    stranger = phone_context.browser.new_context().new_page()
    stranger.goto(f"{hub.url}/ticket/{ticket}")
    expect()(stranger.locator("#name")).to_have_text("钥匙扣")
    expect()(stranger.locator("#cancel")).to_be_hidden()
    stranger.context.close()
    expect()(phone.locator("#view .bar")).to_be_visible()
    shot(phone, "ticket-progress-zh")
    done = phone.locator("#done")
    expect()(done).to_be_visible(timeout=60_000)
    expect()(done).to_contain_text("做好了")
    machine = hub.machines()[hub.job(ticket)["machine_id"]]
    expect()(done).to_contain_text(machine["name"])
    expect()(phone.locator("#cancel")).to_be_hidden()
    shot(phone, "ticket-done-zh")
    phone_context.close()


def test_too_large_for_every_printer_in_italian(page: Any, hub: Hub, tmp_path: Path) -> None:
    page.goto(f"{hub.url}/kiosk")
    page.click("button[data-lang=it]")
    expect()(page.locator("h1")).to_have_text("Crea qualcosa")
    page.set_input_files("#file", str(too_wide(tmp_path)))
    page.fill("#maker", "Giulia")
    page.click("#submit")

    problem = page.locator("#problem")
    expect()(problem).to_be_visible()
    expect()(page.locator("#problem-title")).to_have_text("Questo file non si può realizzare qui")
    groups = page.locator("#problem .group")
    expect()(groups).to_have_count(2)  # one per printer model in the hall
    for i in range(2):
        reason = groups.nth(i).locator(".reason[data-code='gcode.out_of_volume']", has_text="X=300")
        expect()(reason.locator(".line")).to_have_text(re.compile(r"^riga \d+$"))
        expect()(reason.locator(".text")).to_contain_text("X=300 mm")
        expect()(reason.locator(".text")).to_contain_text("Rimpicciolisci il pezzo")
        expect()(reason.locator(".hint")).to_contain_text("La stampante più grande qui arriva a X =")
    shot(page, "kiosk-rejected-it")
    # Switching language redraws the same reasons in Chinese, from the API's catalog.
    page.click("button[data-lang=zh]")
    expect()(groups.first.locator(".reason .text").first).to_contain_text("打印头")
    expect()(groups.first.locator(".reason .line").first).to_have_text(re.compile(r"^第 \d+ 行$"))


def test_kiosk_screenshots_in_each_language(page: Any, hub: Hub) -> None:
    page.goto(f"{hub.url}/kiosk")
    titles = {"it": "Crea qualcosa", "zh": "动手做点东西", "en": "Make something"}
    for lang, title in titles.items():
        page.click(f"button[data-lang={lang}]")
        expect()(page.locator("h1")).to_have_text(title)
        expect()(page.locator("#targets label").first).to_be_visible()
        shot(page, f"kiosk-{lang}")
    # The choice is remembered on this device.
    page.reload()
    expect()(page.locator("h1")).to_have_text("Make something")
    expect()(page.locator("button[data-lang=en]")).to_have_attribute("aria-pressed", "true")


def test_wall_shows_progress_then_completed(page: Any, hub: Hub, tmp_path: Path) -> None:
    clear_beds(hub)
    page.goto(f"{hub.url}/")
    expect()(page.locator(".machine")).to_have_count(3)  # two printers and the laser
    res = hub.submit(cube(tmp_path, layers=60), name="Torre", maker="Luca", language="it")
    assert res.status_code == 201, res.text
    job = res.json()
    card = page.locator(".machine", has=page.locator(".job", has_text="Torre"))
    bar = card.locator(".bar")
    expect()(bar).to_be_visible()
    # Moving: the bar's value grows between two looks (waits on the page, no sleeps).
    page.wait_for_function(
        "document.querySelector('.machine .bar') && +document.querySelector('.machine .bar').dataset.progress > 0.05"
    )
    first = float(bar.get_attribute("data-progress") or 0)
    page.wait_for_function(
        f"[...document.querySelectorAll('.machine .bar')].some(b => +b.dataset.progress > {first + 0.05})"
    )
    expect()(card.locator(".nums")).to_contain_text("%")
    # What a visitor reads from five metres: the state in words (and its colour by data-state), the
    # maker, the time left, the temperatures.
    words = json.loads((ROOT / "web" / "i18n" / "en.json").read_text(encoding="utf-8"))
    expect()(card.locator(".state-chip")).to_have_text(words["state.machine.running"])
    expect()(card).to_have_attribute("data-state", "running")
    expect()(card.locator(".maker")).to_have_text(words["wall.by"].replace("{maker}", "Luca"))
    expect()(card.locator(".nums")).to_contain_text(words["wall.time_left"].replace("{time}", ""))
    expect()(card.locator(".temps")).to_contain_text(re.compile(r"\d+/\d+ °C"))
    # A second cube for the only MK3S waits: the queue shows it first, with its ticket.
    waiting = hub.submit(cube(tmp_path, layers=5), name="Secondo", maker="Sara").json()
    first_in_queue = page.locator("#queue li").first
    expect()(first_in_queue).to_have_attribute("data-ticket", waiting["ticket"])
    expect()(first_in_queue.locator(".pos")).to_have_text("1")
    expect()(first_in_queue).to_contain_text("Secondo")
    shot(page, "wall-progress-en")
    assert hub.http.post(f"/api/jobs/{waiting['id']}/cancel").status_code == 200
    expect()(page.locator(f"#queue li[data-ticket='{waiting['ticket']}']")).to_have_count(0)
    done = page.locator(f"#done li[data-ticket='{job['ticket']}']")
    expect()(done).to_be_visible(timeout=60_000)
    expect()(done).to_contain_text("Torre")
    expect()(card).to_have_count(0)  # the card no longer shows the job
    page.click("button[data-lang=zh]")
    expect()(page.locator("#done").locator("xpath=preceding-sibling::h2[1]")).to_have_text("最近一小时完成")
    shot(page, "wall-done-zh")


def test_ticket_shows_why_a_technician_declined_the_job(page: Any, hub: Hub) -> None:
    laser_file = ROOT / "tests" / "data" / "gcode" / "lasergrbl_raster.gcode"
    job = hub.submit(laser_file, kind="laser", name="targa", language="it").json()
    assert job["state"] == "pending_approval", job
    resp = hub.http.post(f"/api/jobs/{job['id']}/reject", json={"reason": "solo compensato, niente acrilico"})
    assert resp.status_code == 200, resp.text
    page.goto(f"{hub.url}/ticket/{job['ticket']}")
    page.click("button[data-lang=it]")
    view = page.locator("#view")
    expect()(view).to_contain_text("Un tecnico ha rifiutato questo lavoro.")
    # The technician's own words, as typed: what the maker needs to fix the file.
    expect()(page.locator("#reason")).to_have_text("Motivo: solo compensato, niente acrilico")
    shot(page, "ticket-declined-it")
