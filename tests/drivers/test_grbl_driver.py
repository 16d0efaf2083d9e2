"""GrblDriver against the GRBL simulator on a real pty: every behaviour of issue 4 §3."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.base import (
    ConnectionChanged,
    DriverError,
    DriverState,
    NotReady,
    StatusChanged,
)
from drivers.grbl import GrblDriver
from drivers.grbl.lines import iter_job
from drivers.profiles import get_profile
from drivers.sim.grbl import GrblSimulator
from tests.drivers.rig import Recorder, rigs

pytestmark = pytest.mark.timeout(90)

PROFILE = get_profile("grbl-laser-400")
HANDSHAKE = ("$$", "$I", "$#", "$G")


def make_job(tmp_path: Path, lines: int, feed: int = 6000, name: str = "job.gcode") -> Path:
    """A raster: short `G1 X.. S..` lines (~14 bytes) in M4, 0.5 mm apart."""
    path = tmp_path / name
    body = "".join(f"G1X{10 + (i % 200) * 0.5:.1f}S{(i * 37) % 1000}\n" for i in range(lines))
    path.write_text(f"; raster\nG21 G90\nG0 X10 Y10\nM4 S0\nG1 F{feed}\n{body}M5\n", encoding="utf-8")
    return path


def job_lines(path: Path) -> list[str]:
    return [x.text for x in iter_job(path, PROFILE.flow.max_command_chars)]


def executed_job(sim: GrblSimulator) -> list[str]:
    return [c for c in sim.executed if not c.startswith("$")]


Rig = tuple[GrblSimulator, GrblDriver, Recorder]


@pytest.fixture
def rig_factory() -> Iterator[Callable[..., Rig]]:
    yield from rigs(GrblSimulator, GrblDriver, PROFILE, timeout=30.0)


def wait_until(pred: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


# -- handshake -------------------------------------------------------------------------------------


def test_handshake_reads_settings(rig_factory: Callable[..., Rig]) -> None:
    _sim, driver, rec = rig_factory()
    assert driver.status.state is DriverState.IDLE
    assert driver.status.firmware == "Grbl 1.1h"
    assert driver.facts.settings[32] == 1 and driver.facts.settings[30] == 1000
    assert driver.flow.budget == 128
    assert driver.status.extra["machine_state"] == "Idle"
    assert any(isinstance(e, ConnectionChanged) and e.online for e in rec.events)


@pytest.mark.parametrize(
    ("settings", "words"),
    [({32: 0}, "laser mode is off ($32=0)"), ({30: 255}, "$30=255")],
)
def test_unsafe_settings_refuse_jobs(
    rig_factory: Callable[..., Rig], tmp_path: Path, settings: dict[int, float], words: str
) -> None:
    sim, driver, _rec = rig_factory(settings=settings)
    assert driver.status.state is DriverState.ERROR
    assert driver.status.message is not None and words in driver.status.message
    with pytest.raises(NotReady, match=r"\$3[02]"):
        driver.start_job("j1", make_job(tmp_path, 10))
    time.sleep(0.3)  # give a wrongly sent byte time to arrive
    assert executed_job(sim) == [] and sim.stats.lines_received == len(HANDSHAKE)
    with pytest.raises(NotReady):
        driver.unlock()  # an unlock does not lift a settings refusal
    assert driver.status.state is DriverState.ERROR


# -- streaming -------------------------------------------------------------------------------------


def test_job_streamed_exactly_once_within_budget(rig_factory: Callable[..., Rig], tmp_path: Path) -> None:
    # With motion the planner fills (0.5 mm at 100 mm/s is 2.5 ms a line at speed 2, the wire brings one
    # in 1.2 ms), GRBL's main loop stops reading and the RX buffer fills: a driver that sent one byte
    # beyond what GRBL had answered for would lose it there (serial.c drops what finds the ring full).
    sim, driver, rec = rig_factory(baud=115200, motion=True, speed=2.0)
    job = make_job(tmp_path, 800)
    expected = job_lines(job)
    driver.start_job("j1", job, total_lines=len(expected))
    end = rec.job_end()
    assert end.outcome == "completed" and end.lines_acked == len(expected)
    assert executed_job(sim) == expected
    stats = sim.stats
    assert stats.bytes_dropped == 0
    # The RX buffer really was full, to within the line the main loop holds (lines here are <= 16 bytes).
    assert 128 - 16 < stats.rx_high_water <= 128, stats.rx_high_water
    # The budget is used: at most one line short of the 128 bytes.
    assert driver.flow.high_water <= 128 and driver.flow.high_water > 128 - 16
    # `\n` only: a `\r\n` would be two lines for GRBL (an empty one, answered `ok` too).
    assert stats.lines_received == len(expected) + len(HANDSHAKE)
    assert stats.errors_sent == 0
    assert driver.status.state is DriverState.IDLE and driver.status.lines_acked == len(expected)


def test_send_response_fallback(rig_factory: Callable[..., Rig], tmp_path: Path) -> None:
    profile = PROFILE.model_copy(
        update={"flow": PROFILE.flow.model_copy(update={"streaming": "send_response"})}
    )
    sim, driver, rec = rig_factory(profile)
    job = make_job(tmp_path, 200)
    driver.start_job("j1", job)
    assert (end := rec.job_end()).outcome == "completed", end
    assert executed_job(sim) == job_lines(job)
    assert driver.flow.high_water <= max(len(x) + 1 for x in job_lines(job))


def test_status_polled_during_a_job_without_corrupting_it(
    rig_factory: Callable[..., Rig], tmp_path: Path
) -> None:
    sim, driver, rec = rig_factory(motion=True, speed=2.0, baud=115200)
    job = make_job(tmp_path, 400, feed=1500)  # 0.5 mm at 25 mm/s: 20 ms a line, ~2 s at speed 2
    before = sim.stats.status_reports
    started = time.monotonic()
    driver.start_job("j1", job)
    end = rec.job_end()
    took = time.monotonic() - started
    assert end.outcome == "completed", end
    assert executed_job(sim) == job_lines(job)
    rate = (sim.stats.status_reports - before) / took
    assert 2.0 < rate < 10.0, rate  # 5 Hz nominal; loose bounds on a shared machine
    stats = sim.stats
    assert stats.bytes_dropped == 0 and stats.errors_sent == 0
    # With the planner full GRBL's RX buffer fills: the budget is used to within a line, never beyond.
    assert 128 - 16 < stats.rx_high_water <= 128
    running = [e.status.extra for e in rec.events if isinstance(e, StatusChanged) and e.status.job_id]
    assert any(x.get("machine_state") == "Run" and x.get("laser_power") for x in running)


# -- realtime ----------------------------------------------------------------------------------------


def test_pause_holds_with_beam_off_and_resume_finishes(
    rig_factory: Callable[..., Rig], tmp_path: Path
) -> None:
    sim, driver, rec = rig_factory(motion=True, speed=2.0)
    job = make_job(tmp_path, 300, feed=1500)
    driver.start_job("j1", job)
    assert sim.wait_for(lambda s: len(s.executed) > 30 and s.laser_power > 0, timeout=20)
    driver.pause()
    assert driver.status.state is DriverState.PAUSED
    assert sim.wait_for(lambda s: s.state == "Hold:0", timeout=10)
    assert sim.laser_power == 0
    held = len(sim.executed)
    time.sleep(0.5)
    assert len(sim.executed) <= held + 16 and sim.state == "Hold:0"  # nothing moves while held
    assert driver.status.state is DriverState.PAUSED  # status reports during the hold do not flip it
    with pytest.raises(NotReady):
        driver.pause()
    driver.resume()
    end = rec.job_end()
    assert end.outcome == "completed", end
    assert executed_job(sim) == job_lines(job)
    assert 0x21 in [b for _, b in sim.wire_log] and 0x7E in [b for _, b in sim.wire_log]


def test_cancel_resets_then_unlocks(rig_factory: Callable[..., Rig], tmp_path: Path) -> None:
    sim, driver, rec = rig_factory(motion=True, speed=2.0)
    driver.start_job("j1", make_job(tmp_path, 300, feed=1500))
    assert sim.wait_for(lambda s: len(s.executed) > 30, timeout=20)
    driver.cancel()
    end = rec.job_end()
    assert end.outcome == "cancelled"
    assert 0x18 in [b for _, b in sim.wire_log]
    assert sim.wait_for(lambda s: s.state == "Idle", timeout=10)  # ALARM:3 was cleared with `$X`
    assert sim.laser_power == 0
    # The machine is usable: the next job starts (start_job waits for the reset to finish) and runs.
    rec.events.clear()
    job2 = make_job(tmp_path, 50, name="job2.gcode")
    ran = len(sim.executed)
    driver.start_job("j2", job2)
    assert (end := rec.job_end()).outcome == "completed", end
    assert [c for c in sim.executed[ran:] if not c.startswith("$")] == job_lines(job2)


def test_emergency_stop_reaches_the_wire_with_the_buffer_full(
    rig_factory: Callable[..., Rig], tmp_path: Path
) -> None:
    sim, driver, rec = rig_factory(motion=True, speed=1.0, baud=115200)
    driver.start_job("j1", make_job(tmp_path, 2000, feed=600))  # slow: the planner and RX buffer fill
    assert sim.wait_for(lambda s: s.firmware.rx.free < 20, timeout=20)
    assert driver.flow.bytes > 100
    called = time.monotonic()
    driver.emergency_stop()
    assert sim.wait_for(lambda s: any(b == 0x18 and t >= called for t, b in s.wire_log), timeout=5)
    end = rec.job_end()
    assert end.outcome == "cancelled"
    assert driver.status.state is DriverState.ERROR
    assert sim.wait_for(lambda s: s.state == "Alarm", timeout=5) and sim.laser_power == 0
    with pytest.raises(NotReady):
        driver.start_job("j2", make_job(tmp_path, 5, name="j2.gcode"))
    time.sleep(0.3)
    assert driver.status.state is DriverState.ERROR and sim.state == "Alarm"  # no `$X` by itself
    driver.unlock()
    assert driver.status.state is DriverState.IDLE
    assert sim.wait_for(lambda s: s.state == "Idle", timeout=5)


# -- errors, alarms, door, link --------------------------------------------------------------------


def test_error_mid_job_fails_with_line_and_message(rig_factory: Callable[..., Rig], tmp_path: Path) -> None:
    sim, driver, rec = rig_factory(motion=True, speed=2.0)
    job = make_job(tmp_path, 300, feed=1500)
    driver.start_job("j1", job)
    assert sim.wait_for(lambda s: len(s.executed) > 20, timeout=20)
    sim.error_on_next_line(33)
    end = rec.job_end()
    assert end.outcome == "failed"
    assert end.reason is not None and "error:33" in end.reason and "file line" in end.reason
    failed_line = int(end.reason.split("file line ")[1].split(":")[0])
    lines = list(iter_job(job, 80))
    index = next(i for i, x in enumerate(lines) if x.number == failed_line)
    texts = [x.text for x in lines]
    done = executed_job(sim)
    # GRBL answers error:N for that one line and goes on with what its RX buffer holds until the
    # driver's reset lands (protocol.c): the lines before it, then perhaps a few after, never it.
    assert done == (texts[:index] + texts[index + 1 :])[: len(done)]  # in order, none twice
    assert len(done) >= index and len(done) - index <= 128 // 10  # at most an RX buffer's worth after
    assert 0x18 in [b for _, b in sim.wire_log]  # the beam stopped: the buffered lines do not run
    assert sim.wait_for(lambda s: s.state == "Idle", timeout=10)
    rec.state(DriverState.IDLE)
    wait_until(lambda: driver.status.state is DriverState.IDLE)


@pytest.mark.parametrize("code", [1, 5])
def test_alarm_mid_job_fails_and_locks_until_unlock(
    rig_factory: Callable[..., Rig], tmp_path: Path, code: int
) -> None:
    sim, driver, rec = rig_factory(motion=True, speed=2.0)
    driver.start_job("j1", make_job(tmp_path, 300, feed=1500))
    assert sim.wait_for(lambda s: len(s.executed) > 20, timeout=20)
    sim.alarm(code)
    end = rec.job_end()
    assert end.outcome == "failed" and end.reason is not None and f"ALARM:{code}" in end.reason
    assert driver.status.state is DriverState.ERROR
    assert driver.status.message is not None and f"ALARM:{code}" in driver.status.message
    if code == 1:
        assert "limit switch" in driver.status.message
    with pytest.raises(NotReady):
        driver.start_job("j2", make_job(tmp_path, 5, name="j2.gcode"))
    driver.unlock()  # ALARM:1 needs a soft reset first; the driver does it
    assert driver.status.state is DriverState.IDLE
    assert sim.wait_for(lambda s: s.state == "Idle", timeout=5)
    rec.events.clear()
    driver.start_job("j3", make_job(tmp_path, 20, name="j3.gcode"))
    assert (end := rec.job_end()).outcome == "completed", end


def test_door_pauses_and_only_resume_restarts(rig_factory: Callable[..., Rig], tmp_path: Path) -> None:
    sim, driver, rec = rig_factory(motion=True, speed=2.0)
    job = make_job(tmp_path, 300, feed=1500)
    driver.start_job("j1", job)
    assert sim.wait_for(lambda s: len(s.executed) > 20, timeout=20)
    sim.open_door()
    rec.state(DriverState.PAUSED)
    assert driver.status.message is not None and "door open" in driver.status.message
    assert sim.laser_power == 0
    with pytest.raises(NotReady, match="door"):
        driver.resume()
    sim.close_door()
    wait_until(lambda: driver.status.message is not None and "door closed" in driver.status.message)
    held = len(sim.executed)
    time.sleep(0.5)
    assert driver.status.state is DriverState.PAUSED and sim.state == "Door:0"
    assert len(sim.executed) <= held + 16 and sim.laser_power == 0  # never restarts by itself
    driver.resume()
    assert (end := rec.job_end()).outcome == "completed", end
    assert executed_job(sim) == job_lines(job)


def test_disconnect_interrupts_the_job(rig_factory: Callable[..., Rig], tmp_path: Path) -> None:
    sim, driver, rec = rig_factory(motion=True, speed=2.0)
    driver.start_job("j1", make_job(tmp_path, 300, feed=1500))
    assert sim.wait_for(lambda s: len(s.executed) > 10, timeout=20)
    sim.disconnect()
    end = rec.job_end()
    assert end.outcome == "interrupted"
    rec.wait(lambda evs: any(isinstance(e, ConnectionChanged) and not e.online for e in evs))
    assert driver.status.state is DriverState.DISCONNECTED


def test_unsafe_line_fails_before_it_is_sent(rig_factory: Callable[..., Rig], tmp_path: Path) -> None:
    sim, driver, rec = rig_factory()
    path = tmp_path / "bad.gcode"
    path.write_text("G21\nG1 X1 F600 S10\nG1 X2 !\nG1 X3\n", encoding="utf-8")
    driver.start_job("j1", path)
    end = rec.job_end()
    assert end.outcome == "failed" and end.reason is not None and "file line 3" in end.reason
    assert "G1X2" not in sim.executed and "G1X3" not in sim.executed
    assert not any(b == 0x21 for _, b in sim.wire_log)  # the `!` never reached the wire


def test_settings_write_and_check_mode(rig_factory: Callable[..., Rig], tmp_path: Path) -> None:
    sim, driver, rec = rig_factory()
    driver.send_setting(31, 5)
    assert sim.settings[31] == 5
    with pytest.raises(DriverError, match="error:3"):
        driver.send_setting(999, 1)
    driver.set_check_mode(True)
    wait_until(lambda: driver.status.extra.get("machine_state") == "Check")
    job = make_job(tmp_path, 100)
    driver.start_job("j1", job)
    assert (end := rec.job_end()).outcome == "completed", end
    assert executed_job(sim) == [] and sim.checked[-len(job_lines(job)) :] == job_lines(job)
    driver.set_check_mode(False)
    wait_until(lambda: driver.status.extra.get("machine_state") == "Idle")
    assert driver.status.state is DriverState.IDLE
