"""One real OctoPrint (virtual printer) per test session, and a fleet file with an OctoPrint machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from drivers.octoprint.client import state_from
from tests.octoprint.server import OctoPrintServer
from tests.support import Hub, wait_until

KEY_ENV = "FABZONE_TEST_OCTOPRINT_KEY"


@pytest.fixture(scope="session")
def octoprint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OctoPrintServer]:
    """Installed on first use into .cache/octoprint-venv (tests/octoprint/install.sh); a failure to
    install or start is a test failure unless FABZONE_TEST_NO_OCTOPRINT=1."""
    if os.environ.get("FABZONE_TEST_NO_OCTOPRINT") == "1":
        pytest.skip("FABZONE_TEST_NO_OCTOPRINT=1")
    server = OctoPrintServer(tmp_path_factory.mktemp("octoprint"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def octoprint_busy(api: httpx.Client) -> bool:
    response = api.get("/api/printer", params={"exclude": "sd,temperature"})
    return response.status_code == 200 and state_from(response.json()["state"]).busy


def files_on(op: OctoPrintServer) -> list[str]:
    """The names of the files OctoPrint stores (`local`)."""
    with op.api() as api:
        return [f["name"] for f in api.get("/api/files/local").json()["files"]]


@pytest.fixture
def op(octoprint: OctoPrintServer) -> Iterator[OctoPrintServer]:
    """The session's OctoPrint, running and not printing (a failed test may have left a print)."""
    if octoprint.proc is None or octoprint.proc.poll() is not None:
        octoprint.start()
    with octoprint.api() as api:
        if octoprint_busy(api):
            api.post("/api/job", json={"command": "cancel"})
            wait_until(lambda: not octoprint_busy(api), 30, 0.2, "OctoPrint to stop printing")
    yield octoprint


def write_fleet(
    tmp_path: Path, op: OctoPrintServer, db_url: str | None = None, key_env: str = KEY_ENV
) -> Path:
    config = tmp_path / "fabzone.toml"
    database = f'database_url = "{db_url}"\n' if db_url else ""
    config.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "data"}"\n{database}\n'
        '[[machines]]\nid = "mk3s-op"\nname = "MK3S behind OctoPrint"\ndriver = "octoprint"\n'
        f'url = "{op.url}"\napi_key_env = "{key_env}"\nport = "VIRTUAL"\nprofile = "prusa-mk3s"\n',
        encoding="utf-8",
    )
    return config


def start_hub(tmp_path: Path, config: Path, key: str) -> Hub:
    return Hub(["serve", "--config", str(config)], tmp_path, env={KEY_ENV: key}).start()


def gcode(tmp_path: Path, moves: int, name: str = "part.gcode") -> Path:
    """A file the MK3S profile accepts and the virtual printer runs at about 200 lines a second
    (no heat-up waits: M109 would block it for ~18 s)."""
    lines = ["G90", "M83", "G28", "G1 Z0.3 F720"]
    for i in range(moves):
        x = 20 + (i % 2) * 10
        lines.append(f"G1 X{x} Y{20 + (i // 2) % 50} E0.05 F6000")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
