"""GrblDriver's refusals that keep a laser job where validation put it: work offsets and settings writes.

Validation checks a laser file in machine coordinates (G54 with no offset, docs/design-notes.md), so the
driver must refuse a job while the controller holds a work offset (G54 in EEPROM, G92 until a reset) or
while it cannot tell; and a `$32`/`$30` write by a technician must take effect on the refusal at once.
Every test runs against the GRBL simulator on a real pty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from drivers.base import DriverState, NotReady
from drivers.grbl import GrblDriver
from drivers.profiles import get_profile
from drivers.sim.grbl import GrblSimulator
from tests.drivers.rig import Recorder, rigs
from tests.drivers.test_grbl_driver import executed_job, job_lines, wait_until

pytestmark = pytest.mark.timeout(60)

PROFILE = get_profile("grbl-laser-400")
Rig = tuple[GrblSimulator, GrblDriver, Recorder]


@pytest.fixture
def rig_factory() -> Iterator[Callable[..., Rig]]:
    yield from rigs(GrblSimulator, GrblDriver, PROFILE, timeout=30.0)


def make_job(tmp_path: Path, name: str = "job.gcode", head: str = "") -> Path:
    path = tmp_path / name
    moves = "".join(f"G1 X{10 + i} Y10 S{100 + i}\n" for i in range(20))
    path.write_text(f"G21 G90\n{head}G0 X10 Y10\nM4 S0\nG1 F3000\n{moves}M5\n", encoding="utf-8")
    return path


def as_technician(port: str, *lines: str) -> None:
    """What a technician does with another program (LaserGRBL, a terminal) while the hub is not
    connected: each line must be answered `ok`."""
    with serial.serial_for_url(port, baudrate=115200, timeout=0.05) as port_:
        buf = b""
        for line in lines:
            port_.write(line.encode("ascii") + b"\n")
            deadline = time.monotonic() + 5
            while b"ok\r\n" not in buf and b"error:" not in buf:
                assert time.monotonic() < deadline, f"no answer to {line}: {buf!r}"
                buf += port_.read(256)
            assert b"error:" not in buf, f"{line}: {buf!r}"
            buf = b""


# -- work offsets ----------------------------------------------------------------------------------


def test_g54_offset_refuses_jobs_until_cleared(rig_factory: Callable[..., Rig], tmp_path: Path) -> None:
    sim, driver, _rec = rig_factory(connect=False)
    assert sim.port is not None
    as_technician(sim.port, "G10 L2 P1 X10")  # stored in EEPROM: survives every reset
    driver.connect(timeout=10)
    # Shown at once (the hub gives the machine no job), with the offset named.
    assert driver.status.state is DriverState.ERROR
    assert driver.status.message is not None and "G54 X10" in driver.status.message
    with pytest.raises(NotReady, match=r"G54 X10"):
        driver.start_job("j1", make_job(tmp_path))
    with pytest.raises(NotReady, match="G54"):
        driver.unlock()  # `$X` does not clear an offset
    time.sleep(0.3)  # give a wrongly sent line time to arrive
    assert executed_job(sim) == ["G10 L2 P1 X10"]  # the technician's line only
    driver.close()

    # The technician clears it at the machine; on the next connection jobs run, in machine coordinates.
    as_technician(sim.port, "G10 L2 P1 X0")
    driver2 = GrblDriver(PROFILE, sim.port, on_event=(rec2 := Recorder(30.0)))
    try:
        driver2.connect(timeout=10)
        assert driver2.status.state is DriverState.IDLE, driver2.status
        job = make_job(tmp_path, "job2.gcode")
        driver2.start_job("j2", job)
        assert (end := rec2.job_end()).outcome == "completed", end
        assert executed_job(sim)[2:] == job_lines(job)  # after the technician's two lines
        assert sim.firmware.planner.where()[0] == pytest.approx(29.0)  # X29 of the file, unshifted
    finally:
        driver2.close()


def test_g92_left_by_a_job_refuses_the_next_until_a_reset(
    rig_factory: Callable[..., Rig], tmp_path: Path
) -> None:
    sim, driver, rec = rig_factory()
    assert driver.status.state is DriverState.IDLE
    # A file may shift its own coordinates with G92 (validation follows the shift inside the file), but
    # GRBL keeps the offset after the file ends: the next file would be cut 10 mm off.
    first = make_job(tmp_path, "shifts.gcode", head="G0 X20\nG92 X10\n")
    driver.start_job("j1", first)
    assert (end := rec.job_end()).outcome == "completed", end
    wait_until(lambda: driver.status.state is DriverState.ERROR)
    assert driver.status.message is not None and "G92 X10" in driver.status.message
    with pytest.raises(NotReady, match=r"G92 X10"):
        driver.start_job("j2", make_job(tmp_path, "next.gcode"))
    ran = len(executed_job(sim))
    time.sleep(0.3)
    assert len(executed_job(sim)) == ran

    # A reset (the reset button, a reconnect) clears G92 (gcode.c gc_init): the machine is usable again.
    sim.reset()
    wait_until(lambda: driver.status.state is DriverState.IDLE)
    rec.events.clear()
    job = make_job(tmp_path, "after-reset.gcode")
    driver.start_job("j3", job)
    assert (end := rec.job_end()).outcome == "completed", end
    assert executed_job(sim)[ran:] == job_lines(job)


# -- settings written by a technician --------------------------------------------------------------


def test_setting_write_that_breaks_laser_mode_refuses_jobs(
    rig_factory: Callable[..., Rig], tmp_path: Path
) -> None:
    sim, driver, rec = rig_factory()
    assert driver.status.state is DriverState.IDLE
    driver.send_setting(32, 0)
    assert sim.settings[32] == 0
    assert driver.status.state is DriverState.ERROR
    assert driver.status.message is not None and "$32=0" in driver.status.message
    with pytest.raises(NotReady, match=r"\$32=0"):
        driver.start_job("j1", make_job(tmp_path))
    time.sleep(0.3)
    assert executed_job(sim) == []

    driver.send_setting(32, 1)  # the write that fixes it lifts the refusal
    assert driver.status.state is DriverState.IDLE and driver.status.message is None
    job = make_job(tmp_path, "job2.gcode")
    driver.start_job("j2", job)
    assert (end := rec.job_end()).outcome == "completed", end
    assert executed_job(sim) == job_lines(job)


def test_setting_write_that_fixes_full_power_lifts_the_refusal(
    rig_factory: Callable[..., Rig], tmp_path: Path
) -> None:
    sim, driver, rec = rig_factory(settings={30: 255})
    assert driver.status.state is DriverState.ERROR
    with pytest.raises(NotReady, match=r"\$30=255"):
        driver.start_job("j1", make_job(tmp_path))
    driver.send_setting(30, 1000)
    assert driver.status.state is DriverState.IDLE and driver.facts.settings[30] == 1000
    job = make_job(tmp_path, "job2.gcode")
    driver.start_job("j2", job)
    assert (end := rec.job_end()).outcome == "completed", end
    assert executed_job(sim) == job_lines(job)


def test_a_profile_promising_m7_to_a_build_without_it_refuses_jobs(tmp_path: Path) -> None:
    # The controller was built without ENABLE_M7 (`$I` says [OPT:V,…]) but the profile says M7 runs:
    # validation would let M7 through, and the job would stop at error:20 halfway through the cut.
    laser = PROFILE.laser
    assert laser is not None and laser.enable_m7
    without_m7 = PROFILE.model_copy(update={"laser": laser.model_copy(update={"enable_m7": False})})
    sim = GrblSimulator(without_m7, speed=500.0)
    driver = GrblDriver(PROFILE, sim.start())
    try:
        driver.connect()
        assert driver.status.state is DriverState.ERROR
        assert (
            driver.status.message and "M7" in driver.status.message and "enable_m7" in driver.status.message
        )
        with pytest.raises(NotReady, match="M7"):
            driver.start_job("j1", make_job(tmp_path))
        time.sleep(0.3)  # give a wrongly sent line time to arrive
        assert not [c for c in sim.executed if not c.startswith("$")]
    finally:
        driver.close()
        sim.stop()
    # The same controller under a profile that tells the truth takes jobs.
    sim = GrblSimulator(without_m7, speed=500.0)
    driver = GrblDriver(without_m7, sim.start())
    try:
        driver.connect()
        assert driver.status.state is DriverState.IDLE
    finally:
        driver.close()
        sim.stop()
