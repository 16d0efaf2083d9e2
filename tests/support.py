"""Helpers for tests that run real processes: free ports, waiting on conditions, a hub subprocess."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(fn: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `fn` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Proc:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=20)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class SimProcess:
    """`python -m drivers.sim marlin …` (or `grbl …`) in a subprocess; `port` is the pty path it printed."""

    def __init__(self, profile: str, tmp: Path, name: str, *extra: str, protocol: str = "marlin") -> None:
        self.log = tmp / f"{name}.log"
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "drivers.sim", protocol, "--profile", profile, *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log.open("ab"),
            text=True,
            start_new_session=True,
        )
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline().strip()
        if not line:
            raise AssertionError(f"simulator {name} printed no port: {self.log.read_text()}")
        self.port = line.split()[-1]

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)


def fabzone_command(*args: str, env: dict[str, str] | None = None) -> str:
    """Run the `fabzone` command of this venv and return its stdout (fails the test if it fails)."""
    fabzone = Path(sys.executable).with_name("fabzone")
    done = subprocess.run(
        [str(fabzone), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"fabzone {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


class Hub:
    """A hub process (`fabzone demo …` or `fabzone serve …`) and HTTP clients for it: `http` sends a
    technician token (`--tech-token` for the demo, `fabzone token create` on the fleet's database for
    serve), `anon` sends none (a maker's browser)."""

    def __init__(self, args: list[str], tmp: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [*args, "--port", str(self.port)]
        self.tmp = tmp
        self.env = env
        self.proc: Proc | None = None
        self.tech_token = ""
        if args and args[0] == "demo":
            self.tech_token = secrets.token_urlsafe(24)
            # One argument: a token starting with "-" would otherwise read as an option to argparse.
            self.args += [f"--tech-token={self.tech_token}"]
            if "--mqtt" not in args:  # tests name their fleet: MQTT machines only where asked for
                self.args += ["--mqtt", "0"]
        elif args and args[0] == "serve" and "--config" in args:
            config = args[args.index("--config") + 1]
            name = f"tests-{secrets.token_hex(4)}"
            self.tech_token = fabzone_command("token", "create", name, "--config", config, env=env).strip()
        headers = {"Authorization": f"Bearer {self.tech_token}"} if self.tech_token else {}
        self.http = httpx.Client(base_url=self.url, timeout=30, headers=headers)
        self.anon = httpx.Client(base_url=self.url, timeout=30)

    def start(self, timeout: float = 60) -> Hub:
        fabzone = Path(sys.executable).with_name("fabzone")
        self.proc = Proc([str(fabzone), *self.args], self.tmp / "hub.log", self.env)

        def healthy() -> bool:
            if self.proc and self.proc.popen.poll() is not None:
                raise AssertionError(f"hub exited:\n{self.proc.output()[-4000:]}")
            try:
                return self.http.get("/api/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout, 0.1, "the hub to answer /api/health")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc:
            self.proc.kill(sig)

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        self.http.close()
        self.anon.close()

    # -- API shortcuts -------------------------------------------------------------------------

    def submit(self, path: Path, **fields: str) -> httpx.Response:
        with path.open("rb") as fh:
            return self.http.post(
                "/api/jobs", files={"file": (fields.pop("filename", path.name), fh)}, data=fields
            )

    def job(self, ref: str) -> dict[str, Any]:
        return self.http.get(f"/api/jobs/{ref}").json()  # type: ignore[no-any-return]

    def jobs(self) -> list[dict[str, Any]]:
        return self.http.get("/api/jobs").json()  # type: ignore[no-any-return]

    def machines(self) -> dict[str, dict[str, Any]]:
        return {m["id"]: m for m in self.http.get("/api/machines").json()}

    def wait_job(self, ref: str, states: set[str], timeout: float) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job(ref)
            return job if job["state"] in states else None

        return wait_until(reached, timeout, 0.1, f"job {ref} in {states}")
