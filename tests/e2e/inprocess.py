"""A hub served by uvicorn in a thread of the test process, so a test can look inside its simulators."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from fabzone.api import create_app
from fabzone.auth import create_token
from fabzone.config import build_settings
from fabzone.hub import Hub
from tests.support import free_port, wait_until


def one_machine(
    tmp_path: Path, machine_id: str, driver: str, port: str, profile: str, **hub: Any
) -> dict[str, Any]:
    """The fleet file's structure for a hub of one serial machine (a simulator's pty), data in tmp."""
    name = machine_id.replace("-", " ").title()
    return {
        "hub": {"data_dir": str(tmp_path / "data"), **hub},
        "machines": [{"id": machine_id, "name": name, "driver": driver, "port": port, "profile": profile}],
    }


@contextmanager
def serve_hub(config: dict[str, Any], name: str = "test") -> Iterator[httpx.Client]:
    """Yields an HTTP client for the hub described by `config` (the fleet file's structure); it sends a
    technician's token."""
    with serve_hub_and_app(config, name) as (client, _hub):
        yield client


@contextmanager
def serve_hub_and_app(config: dict[str, Any], name: str = "test") -> Iterator[tuple[httpx.Client, Hub]]:
    """`serve_hub`, and the hub object itself, for a test that steps into a moment of its work."""
    settings = build_settings(config, name)
    # A test that must know the port beforehand (devices fetch files from the hub) names it.
    port = int(config.get("hub", {}).get("port") or free_port())
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, what="the hub to start")
        token = create_token(app.state.hub.engine, "tests", replace=True)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers) as client:
            yield client, app.state.hub
    finally:
        server.should_exit = True
        thread.join(timeout=30)
