"""`fabzone demo --mqtt N` with no broker configured: an embedded amqtt broker, MQTT machines that
come online and print."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gcode_samples import prusa_mk3s, write
from tests.support import Hub, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_demo_with_embedded_broker(tmp_path: Path) -> None:
    args = ["demo", "--data-dir", str(tmp_path / "data"), "--printers", "0", "--lasers", "0"]
    hub = Hub([*args, "--mqtt", "2", "--sim-speed", "400"], tmp_path, env={"FABZONE_MQTT_URL": ""}).start()
    try:

        def both_online() -> dict[str, dict[str, object]] | None:
            machines = hub.machines()
            return machines if machines and all(m["state"] == "idle" for m in machines.values()) else None

        machines = wait_until(both_online, 30, what="both MQTT machines online")
        assert set(machines or {}) == {"mqtt-1", "mqtt-2"}
        job = hub.submit(write(tmp_path, "cube.gcode", prusa_mk3s(layers=5)), name="cube").json()
        done = hub.wait_job(job["id"], {"completed", "failed", "interrupted"}, timeout=60)
        assert done["state"] == "completed", (done, (tmp_path / "hub.log").read_text()[-3000:])
        assert "embedded MQTT broker" in (tmp_path / "hub.log").read_text()
    finally:
        hub.close()
