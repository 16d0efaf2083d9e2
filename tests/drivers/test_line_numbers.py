"""A line too long once numbered: the job fails before the line goes, and the next job is not harmed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.base import DriverState, JobEnded
from drivers.gcode import iter_commands
from drivers.marlin import MarlinDriver
from drivers.profiles import get_profile
from drivers.sim.marlin import MarlinSimulator
from tests.drivers.rig import Recorder, rigs
from tests.drivers.test_marlin_driver import executed_job

pytestmark = pytest.mark.timeout(60)

Rig = tuple[MarlinSimulator, MarlinDriver, Recorder]


@pytest.fixture
def rig_factory() -> Iterator[Callable[..., Rig]]:
    yield from rigs(MarlinSimulator, MarlinDriver, get_profile("marlin-generic"), timeout=20.0)


def ended(rec: Recorder, job_id: str) -> JobEnded:
    found = rec.wait(
        lambda evs: next((e for e in evs if isinstance(e, JobEnded) and e.job_id == job_id), None)
    )
    assert isinstance(found, JobEnded)
    return found


def test_too_long_once_numbered_fails_the_job_and_the_next_one_runs(
    rig_factory: Callable[..., Rig], tmp_path: Path
) -> None:
    sim, driver, rec = rig_factory()
    # 92 characters: `N<n> ` and `*<checksum>` take it past the profile's 96 (MAX_CMD_SIZE counts them).
    long_line = "M117 " + "x" * 87
    bad = tmp_path / "bad.gcode"
    bad.write_text("G1 X1 Y1\nG1 X2 Y2\n" + long_line + "\nG1 X3 Y3\n")
    driver.start_job("j1", bad)
    end = ended(rec, "j1")
    assert end.outcome == "failed" and end.reason and "file line 3" in end.reason
    assert driver.status.state is DriverState.IDLE
    assert not any(c.startswith("M117") for c in sim.executed)

    good = tmp_path / "good.gcode"
    good.write_text("".join(f"G1 X{i % 100} Y{i % 50}\n" for i in range(300)))
    driver.start_job("j2", good)
    assert ended(rec, "j2").outcome == "completed"
    # Nothing of the refused line was left in the window or the resend history: no resend was asked
    # for, and the second job ran exactly once, in order.
    assert sim.stats.resends_requested == 0
    assert executed_job(sim) == ["G1 X1 Y1", "G1 X2 Y2"] + [c for _, c in iter_commands(good)]
