"""tests/mqtt on a machine without Mosquitto: the tests that need no broker still run; those that need
one are skipped on a developer's machine and fail in CI (env CI set), where a missing broker is a
broken setup, not a reason to pass."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = [pytest.mark.timeout(180)]

NO_BROKER = "tests/mqtt/test_mqtt_hub.py::test_signatures"
NEEDS_BROKER = "tests/mqtt/test_mqtt_driver.py::test_stale_will_is_ignored"
TESTS = [NO_BROKER, NEEDS_BROKER]


def outcomes(tmp_path: Path, *, ci: bool) -> dict[str, str]:
    """Runs the two tests in a pytest of its own with FABZONE_MOSQUITTO naming a missing binary."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["FABZONE_MOSQUITTO"] = str(tmp_path / "no-mosquitto-here")
    if ci:
        env["CI"] = "true"
    report = tmp_path / f"junit-ci-{ci}.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert report.exists(), done.stdout + done.stderr
    found: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):
        tags = {child.tag for child in case}
        outcome = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
        found[str(case.get("name"))] = outcome
    return found


def test_without_mosquitto_broker_tests_skip_and_the_rest_run(tmp_path: Path) -> None:
    assert outcomes(tmp_path, ci=False) == {
        "test_signatures": "passed",
        "test_stale_will_is_ignored": "skipped",
    }


def test_without_mosquitto_in_ci_broker_tests_fail(tmp_path: Path) -> None:
    assert outcomes(tmp_path, ci=True) == {
        "test_signatures": "passed",
        "test_stale_will_is_ignored": "failed",
    }
