"""Browser tests: Debian's Chromium driven by Playwright against a real hub with simulated printers.

Playwright's own browser download needs the internet, so the tests launch `/usr/bin/chromium`
(`.ci/run` installs it with `fonts-noto-cjk`, without which Chinese renders as empty boxes).
Screenshots land in `artifacts/screenshots/` for people to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, Hub

CHROMIUM = os.environ.get("FABZONE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # Without these Chromium keeps trying to reach the internet (update checks, sync, field trials).
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = ROOT / "artifacts" / "screenshots"
# Each wait on the page is bounded; a simulated print at --sim-speed 400 takes seconds.
WAIT_MS = 30_000


def start_hub(tmp: Path) -> Hub:
    """`fabzone demo` with two simulated printers; `hub.tech_token` is its technician token."""
    return Hub(
        ["demo", "--data-dir", str(tmp / "data"), "--printers", "2", "--lasers", "1", "--sim-speed", "400"],
        tmp,
    ).start()


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread
# while it is open, which would break the asyncio tests collected after the browser tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api

    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} missing: apt-get install chromium fonts-noto-cjk (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(missing)  # in CI a missing browser is a broken setup, not a reason to skip
        pytest.skip(missing)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        sync_api.expect.set_options(timeout=WAIT_MS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One hub per test module (the technician's emergency stop must not break the others' printers)."""
    h = start_hub(tmp_path_factory.mktemp("hub"))
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (own localStorage) at a TV-ish size; page errors fail the test."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 900}, locale="en-US")
    ctx.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    ctx.on("page", lambda pg: pg.on("pageerror", lambda e: errors.append(str(e))))
    yield ctx
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def clear_beds(hub: Hub) -> None:
    """A technician takes every finished part off (through the API, as the dashboard does)."""
    for mid, m in hub.machines().items():
        if m["state"] == "awaiting_clear":
            hub.http.post(f"/api/machines/{mid}/clear", json={"result": "good"}).raise_for_status()
