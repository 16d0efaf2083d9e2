"""The makers' pages in a real browser: kiosk (zh, it, en), the ticket on a phone, the wall."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests import gcode_samples
from tests.browser.conftest import clear_beds, shot
from tests.support import Hub

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
    page.set_input_files("#file", str(cube(tmp_path)))
    page.fill("#maker", "小明")
    page.fill("#name", "钥匙扣")
    page.click("#submit")

    code = page.locator("#ticket-code")
    expect()(code).to_have_text(re.compile(r"^[A-Z2-9]{6}$"))
    ticket = code.inner_text()
    qr = page.locator("#qr")
    expect()(qr).to_have_attribute("src", f"/api/jobs/{ticket}/qr.svg")
    page.wait_for_function(
        "document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0"
    )
    assert page.evaluate(f"localStorage.getItem('fabzone.secret.{ticket}')"), "the cancel secret is kept"
    assert hub.job(ticket)["language"] == "zh"
    shot(page, "kiosk-ticket-zh")

    # The maker's phone: same device profile (so it holds the secret), a phone-sized viewport.
    phone = page.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 800})
    phone.goto(f"{hub.url}/ticket/{ticket}")
    expect()(phone.locator("#code")).to_have_text(ticket)
    expect()(phone.locator("#name")).to_have_text("钥匙扣")
    expect()(phone.locator("#cancel")).to_be_visible()  # this device holds the secret
    expect()(phone.locator("#view .bar")).to_be_visible()
    shot(phone, "ticket-progress-zh")
    done = phone.locator("#done")
    expect()(done).to_be_visible(timeout=60_000)
    expect()(done).to_contain_text("做好了")
    expect()(done).to_contain_text(hub.job(ticket)["machine_id"] and "MK3S")
    expect()(phone.locator("#cancel")).to_be_hidden()
    shot(phone, "ticket-done-zh")


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
    shot(page, "wall-progress-en")
    done = page.locator(f"#done li[data-ticket='{job['ticket']}']")
    expect()(done).to_be_visible(timeout=60_000)
    expect()(done).to_contain_text("Torre")
    expect()(card).to_have_count(0)  # the card no longer shows the job
    page.click("button[data-lang=zh]")
    expect()(page.locator("#done").locator("xpath=preceding-sibling::h2[1]")).to_have_text("最近一小时完成")
    shot(page, "wall-done-zh")
