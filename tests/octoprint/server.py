"""A real OctoPrint 1.11.8 with its virtual printer for the tests: installed, configured headless, run."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from pathlib import Path

import httpx

from tests.support import ROOT, free_port, wait_until

VENV = Path(os.environ.get("FABZONE_OCTOPRINT_VENV", ROOT / ".cache" / "octoprint-venv"))
INSTALL = ROOT / "tests" / "octoprint" / "install.sh"
USER = "fabzone"


def ensure_installed() -> Path:
    """Run install.sh (a no-op once the venv exists); returns the `octoprint` executable."""
    done = subprocess.run([str(INSTALL)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"OctoPrint install failed:\n{done.stdout}{done.stderr}")
    return VENV / "bin" / "octoprint"


def config(port: int) -> dict[str, object]:
    """config.yaml for a headless, offline OctoPrint (keys checked in OctoPrint 1.11's settings and
    bundled plugins' defaults; see /work/shared/notes/octoprint.md)."""
    return {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "firstRun": False,
            "onlineCheck": {"enabled": False},
            "pluginBlacklist": {"enabled": False},
            "seenWizards": {"corewizard": 4, "backup": None},
        },
        "plugins": {
            # Everything that fetches from the internet or asks a person something is off.
            "_disabled": [
                "announcements",
                "softwareupdate",
                "tracking",
                "errortracking",
                "pluginmanager",
                "discovery",
                "achievements",
            ],
            "health_check": {"disabled": ["python_eol", "octoprint_freshness"]},
            "virtual_printer": {
                "enabled": True,
                # The default injects resends at lines 100-115; and no `wait` chatter when idle.
                "simulated_errors": [],
                "sendWait": False,
                "okAfterResend": True,
            },
        },
        "serial": {"port": "VIRTUAL", "baudrate": 115200, "autoconnect": False},
    }


class OctoPrintServer:
    """`octoprint serve` on a random loopback port in its own basedir; stop() and start() again keep
    the basedir (files, print records), as a real restart does."""

    def __init__(self, basedir: Path) -> None:
        self.exe = ensure_installed()
        self.basedir = basedir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = secrets.token_hex(16).upper()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = basedir / "octoprint.out"
        basedir.mkdir(parents=True, exist_ok=True)
        # YAML is a superset of JSON: no YAML writer needed on fabzone's side.
        (basedir / "config.yaml").write_text(json.dumps(config(self.port)), encoding="utf-8")
        # Kept: changing the user's password through OctoPrint's API needs the current one.
        self.password = secrets.token_hex(8)
        add_user = ["user", "add", "--password", self.password, "--admin", USER]
        subprocess.run(
            [str(self.exe), "--basedir", str(basedir), *add_user],
            check=True,
            capture_output=True,
            timeout=120,
        )
        # The application keys plugin's data file (its forward-compatible store; the global api.key is
        # deprecated): {user: [{app_id, api_key}]}.
        keys = basedir / "data" / "appkeys" / "keys.yaml"
        keys.parent.mkdir(parents=True, exist_ok=True)
        keys.write_text(json.dumps({USER: [{"app_id": "fabzone-tests", "api_key": self.api_key}]}))

    def start(self, timeout: float = 90) -> OctoPrintServer:
        args = [str(self.exe), "serve", "--basedir", str(self.basedir), "--host", "127.0.0.1"]
        args += ["--port", str(self.port)]
        if os.geteuid() == 0:
            args.append("--iknowwhatimdoing")  # OctoPrint refuses to run as root without it
        self.proc = subprocess.Popen(
            args, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        headers = {"X-Api-Key": self.api_key}

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"OctoPrint exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                # While starting, an intermediary server answers 404 here.
                return httpx.get(f"{self.url}/api/version", headers=headers, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, 0.2, "OctoPrint to answer /api/version")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Api-Key": self.api_key}, timeout=10)
