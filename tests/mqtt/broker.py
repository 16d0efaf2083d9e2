"""A Mosquitto of the test's own on a random loopback port, which a test can stop and restart."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support import free_port

# FABZONE_MOSQUITTO names another binary (or a missing one: tests/mqtt/test_mqtt_setup.py checks what
# happens without a broker).
MOSQUITTO = os.environ.get("FABZONE_MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Mosquitto:
    """`listener PORT 127.0.0.1` + `allow_anonymous true` (without it even local clients are
    refused, notes/mqtt.md). No persistence file: a restart forgets retained messages and sessions,
    the harshest case for the clients."""

    def __init__(self, tmp: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.tmp = tmp
        self.config = tmp / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
