"""The GRBL simulator against a pyserial host over a real pty: strings, RX buffer, realtime bytes, faults."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import serial

from drivers.sim.grbl import GrblFaults, GrblSimulator
from tests.sim.host import Host, sim_hosts

pytestmark = pytest.mark.timeout(20)

BANNER = "Grbl 1.1h ['$' for help]"
UNLOCK = "[MSG:'$H'|'$X' to unlock]"
STATUS = re.compile(
    r"^<(Idle|Run|Hold:[01]|Door:[0-3]|Alarm|Check|Home|Sleep|Jog)\|MPos:[-0-9.]+,[-0-9.]+,[-0-9.]+\|"
)


class GrblHost(Host):
    """Host with GRBL's `\\r\\n` line ends removed and character counting (grbl's stream.py)."""

    def readline(self, timeout: float = 2.0) -> str | None:
        line = super().readline(timeout)
        return None if line is None else line.rstrip("\r")

    def stream(self, lines: list[str], budget: int = 128, timeout: float = 10.0) -> list[str]:
        """Send `lines` keeping at most `budget` bytes unacknowledged; the replies, in order."""
        in_flight: list[int] = []
        replies: list[str] = []
        deadline = time.monotonic() + timeout
        i = 0
        while len(replies) < len(lines):
            batch = bytearray()
            while i < len(lines) and sum(in_flight) + len(lines[i]) + 1 <= budget:
                batch += lines[i].encode() + b"\n"
                in_flight.append(len(lines[i]) + 1)
                i += 1
            if batch:
                self.serial.write(bytes(batch))
            line = self.readline(max(0.0, deadline - time.monotonic()))
            assert line is not None, f"stream stalled after {len(replies)} replies"
            if line == "ok" or line.startswith("error:"):
                replies.append(line)
                in_flight.pop(0)
        return replies


Factory = Callable[..., tuple[GrblSimulator, GrblHost]]


@pytest.fixture
def make() -> Iterator[Factory]:
    yield from sim_hosts(GrblSimulator, lambda port: GrblHost(port, baud=115200), "grbl-laser-400")


def answer(line: str) -> bool:
    return line == "ok" or line.startswith("error:")


def status(host: GrblHost) -> str:
    host.serial.write(b"?")
    return host.until(lambda s: s.startswith("<"))[-1]


def fill_planner(sim: GrblSimulator, host: GrblHost) -> None:
    """15 slow moves fill the planner; the 16th waits in the main loop, so the RX buffer fills next."""
    host.send("G1 F60")
    host.until(answer)
    for k in range(16):
        host.send(f"G1 X{10 + k}")
    assert sim.wait_for(lambda s: s.firmware.planner.free == 0 and s.firmware.pending is not None, 5)


def test_banner_on_soft_reset_and_reset_button(make: Factory) -> None:
    sim, host = make()
    host.serial.write(b"\x18")
    assert host.until(lambda s: s == BANNER) == ["", BANNER]
    sim.reset()
    assert host.until(lambda s: s == BANNER)[-1] == BANNER
    assert sim.stats.resets == 2 and sim.state == "Idle"


def test_boots_locked_when_homing_is_enabled(make: Factory) -> None:
    sim, host = make(settings={22: 1})
    host.serial.write(b"\x18")
    assert host.until(lambda s: s == UNLOCK)[-2:] == [BANNER, UNLOCK]
    assert sim.state == "Alarm"
    host.send("G0 X1")
    assert host.until(answer)[-1] == "error:9"
    host.send("$X")
    assert host.until(answer) == ["[MSG:Caution: Unlocked]", "ok"]
    assert sim.state == "Idle"


def test_settings_dump_has_laser_settings(make: Factory) -> None:
    _, host = make()
    host.send("$$")
    lines = host.until(answer)
    assert lines[-1] == "ok"
    assert "$30=1000" in lines and "$32=1" in lines and "$130=400.000" in lines
    numbers = [int(s[1:].split("=")[0]) for s in lines[:-1]]
    for n in (0, 6, 10, 13, 20, 27, 30, 31, 32, 100, 112, 120, 122, 130, 132):
        assert n in numbers


def test_settings_overrides_and_writes(make: Factory) -> None:
    sim, host = make(settings={32: 0, 30: 255})
    host.send("$$")
    lines = host.until(answer)
    assert "$32=0" in lines and "$30=255" in lines
    host.send("$32=1")
    assert host.until(answer) == ["ok"]
    assert sim.settings[32] == 1
    host.send("$30=-5")
    assert host.until(answer) == ["error:4"]
    host.send("$999=1")
    assert host.until(answer) == ["error:3"]
    host.send("$20=1")  # soft limits need homing ($22)
    assert host.until(answer) == ["error:10"]


def test_system_reports(make: Factory) -> None:
    _, host = make()
    host.send("$I")
    assert host.until(answer) == ["[VER:1.1h.20190830:]", "[OPT:VM,15,128]", "ok"]
    host.send("$G")
    assert host.until(answer) == ["[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]", "ok"]
    host.send("$#")
    lines = host.until(answer)
    assert lines[0] == "[G54:0.000,0.000,0.000]" and "[TLO:0.000]" in lines and lines[-1] == "ok"
    host.send("$Q")
    assert host.until(answer) == ["error:3"]


def test_m7_only_on_a_build_with_it(make: Factory) -> None:
    # grbl-laser-400 is built with ENABLE_M7 (`$I` says M); k40-grbl is not: M7 is error:20 there,
    # which is what validation refuses it for (gcode.laser_no_m7).
    for profile, opt, m7 in (
        ("grbl-laser-400", "[OPT:VM,15,128]", "ok"),
        ("k40-grbl", "[OPT:V,15,128]", "error:20"),
    ):
        _, host = make(profile)
        host.send("$I")
        assert host.until(answer)[1] == opt
        host.send("M7")
        assert host.until(answer) == [m7]
        host.send("M8")
        assert host.until(answer) == ["ok"]


def test_one_ok_per_line_and_executed_record(make: Factory) -> None:
    sim, host = make()
    lines = ["G21", "G90", "M4 S300", *(f"G1 X{k}.5 Y{k} F3000" for k in range(40)), "M5"]
    assert host.stream(lines) == ["ok"] * len(lines)
    assert sim.executed == lines
    assert sim.stats.ok_sent == len(lines) and sim.stats.errors_sent == 0


def test_cr_lf_gives_two_oks(make: Factory) -> None:
    sim, host = make()
    host.serial.write(b"G0 X1\r\n")
    assert host.until(answer) == ["ok"]
    assert host.until(answer) == ["ok"]
    assert sim.stats.lines_received == 2


def test_comments_spaces_and_line_too_long(make: Factory) -> None:
    sim, host = make()
    host.send("g0 x1 (move) ; comment")
    assert host.until(answer) == ["ok"]
    host.send("G0 X" + "1" * 80)
    assert host.until(answer) == ["error:11"]
    host.send("G0 X" + "1" * 8 + " " * 100)  # spaces do not count against the 80 characters
    assert host.until(answer) == ["ok"]
    host.send("G5 X1")
    assert host.until(answer) == ["error:20"]
    host.send("G1 X2")
    assert host.until(answer) == ["error:22"]  # no feed rate yet
    assert sim.executed == ["g0 x1 (move) ; comment", "G0 X" + "1" * 8 + " " * 100]


def test_rx_overflow_drops_bytes_when_planner_is_full(make: Factory) -> None:
    sim, host = make(motion=True, settings={10: 3})
    fill_planner(sim, host)
    host.serial.write(b"G1 X20 Y20\n" * 93)  # about 1 KB at once
    assert sim.wait_for(lambda s: s.stats.bytes_dropped > 0, 5)
    assert sim.stats.rx_high_water == 128
    # Realtime bytes are picked off before the RX buffer, even when it is full.
    report = status(host)
    assert STATUS.match(report) and "|Bf:0,0|" in report
    assert report.startswith("<Run|")
    host.serial.write(b"\x18")
    lines = host.until(lambda s: s == UNLOCK)
    # The held 16th line still gets its `ok` when the reset aborts the wait (protocol.c, gcode.c).
    assert lines[-5:] == ["ALARM:3", "ok", "", BANNER, UNLOCK]
    # 15 blocks were planned at 1 mm/s: X0→X10, then 14 × 1 mm.
    assert sim.stats.moves == 15 and sim.stats.move_time_s == pytest.approx(24.0)


def test_rx_overflow_makes_the_board_run_a_line_nobody_sent(make: Factory) -> None:
    """What an overflowing sender gets: serial.c drops every byte that finds the ring full, so lines go
    missing without an answer and the cut line's head is glued to whatever line comes next, which the
    board then runs (or answers with an error:N, when the glued text does not parse)."""
    sim, host = make(motion=True, speed=10.0)
    fill_planner(sim, host)
    host.serial.write(b"!")  # held: the planner stays full, so the main loop reads nothing
    assert sim.wait_for(lambda s: s.state == "Hold:0", 5)
    assert sim.firmware.planner.free == 0 and sim.firmware.pending is not None
    # A raster as laser software writes it: sweeps along X at S500, a 0.1 mm step in Y between them.
    raster = ["M4 G1 F3000"] + [
        f"X{100 if k % 4 == 0 else 10} S500" if k % 2 == 0 else f"Y{10 + k / 10:.1f}" for k in range(60)
    ]
    burst = "".join(line + "\n" for line in raster[:60]).encode()
    host.serial.write(burst)  # 471 bytes at once: no character counting
    assert sim.wait_for(lambda s: s.stats.bytes_dropped == len(burst) - 128, 5)
    whole, _, head = burst[:128].decode().rpartition("\n")
    assert head == "X10 S50", head  # the buffer filled inside a sweep line: "X10 S500" lost its last 0
    host.serial.write(b"~")
    # The sender goes on with the file as soon as there seems to be room.
    assert sim.wait_for(lambda s: s.firmware.rx.free >= 8, 10)
    host.serial.write(raster[60].encode() + b"\n")
    glued = head + raster[60]
    assert sim.wait_for(lambda s: glued in s.executed, 10), sim.executed[-5:]
    assert glued not in raster  # a diagonal burn at S50 to X10 Y15.9 that no file contains
    kept = whole.split("\n")  # the lines that fitted whole, run as sent
    assert sim.executed[-len(kept) - 1 :] == [*kept, glued]
    # fill_planner's 17 lines, those, the glued one: 45 of the 61 raster lines are never answered, so
    # the sender's count of what the board holds is wrong from now on.
    assert sim.stats.lines_received == 17 + len(kept) + 1 < 17 + len(raster)
    assert sim.stats.errors_sent == 0


def test_feed_hold_and_cycle_start(make: Factory) -> None:
    sim, host = make(motion=True, speed=1.0)
    host.send("M4 S800")
    host.send("G1 X100 F600")  # 10 s
    assert sim.wait_for(lambda s: s.state == "Run" and s.laser_power == 800, 5)
    host.serial.write(b"!")
    assert sim.wait_for(lambda s: s.state.startswith("Hold"), 2)
    assert sim.laser_power == 0  # laser mode: the beam is off while the head stops
    assert sim.wait_for(lambda s: s.state == "Hold:0", 2)
    assert status(host).startswith("<Hold:0|")
    host.serial.write(b"~")
    assert sim.wait_for(lambda s: s.state == "Run" and s.laser_power == 800, 2)
    host.serial.write(b"\x18")
    host.until(lambda s: s == UNLOCK)


def test_reset_during_motion_alarm_3_then_unlock(make: Factory) -> None:
    sim, host = make(motion=True)
    host.send("M3 S1000")
    host.send("G1 X300 F1200")
    assert sim.wait_for(lambda s: s.state == "Run" and s.laser_power == 1000, 5)
    host.until(answer)
    host.until(answer)
    host.serial.write(b"\x18")
    assert host.until(lambda s: s == UNLOCK) == ["ALARM:3", "", BANNER, UNLOCK]
    assert sim.state == "Alarm" and sim.laser_power == 0
    assert sim.laser_power_log[-1][1] == 0
    assert sim.wire_log[-1][1] == 0x18
    host.send("G0 X0")
    assert host.until(answer) == ["error:9"]
    host.send("$X")
    assert host.until(answer) == ["[MSG:Caution: Unlocked]", "ok"]
    assert sim.state == "Idle"
    host.send("$G")
    assert host.until(answer)[0].endswith("M5 M9 T0 F0 S0]")  # the parser was re-initialised


def test_check_mode_parses_without_motion(make: Factory) -> None:
    sim, host = make(motion=True)
    host.send("$C")
    assert host.until(answer) == ["[MSG:Enabled]", "ok"]
    assert sim.state == "Check"
    lines = ["G1 X100 Y100 F100", "G1 X0 Y0", "G1 X1 Q2"]
    assert host.stream(lines) == ["ok", "ok", "error:20"]
    assert sim.stats.moves == 0 and sim.executed == [] and sim.checked == lines[:2]
    assert status(host).startswith("<Check|MPos:0.000,0.000,0.000")
    host.send("$C")
    assert host.until(lambda s: s == BANNER) == ["[MSG:Disabled]", "ok", "", BANNER]
    assert sim.state == "Idle"


def test_hard_limit_alarm_blocks_until_reset(make: Factory) -> None:
    sim, host = make(motion=True)
    host.send("G1 X100 F600")
    assert sim.wait_for(lambda s: s.state == "Run", 5)
    host.until(answer)
    sim.alarm(1)
    assert host.until(lambda s: s.startswith("[MSG")) == ["ALARM:1", "[MSG:Reset to continue]"]
    host.send("$X")  # nothing is processed until a reset (protocol.c)
    assert host.readline(0.3) is None
    host.serial.write(b"\x18")
    assert host.until(lambda s: s == UNLOCK)[-2:] == [BANNER, UNLOCK]
    host.send("$X")
    assert host.until(answer) == ["[MSG:Caution: Unlocked]", "ok"]


def test_soft_limit(make: Factory) -> None:
    sim, host = make(settings={20: 1})
    host.send("G0 X401")
    assert host.until(lambda s: s.startswith("[MSG")) == ["ALARM:2", "[MSG:Reset to continue]"]
    host.serial.write(b"\x18")
    assert host.until(lambda s: s == UNLOCK) == ["ok", "", BANNER, UNLOCK]
    assert sim.state == "Alarm" and sim.executed == []


def test_safety_door(make: Factory) -> None:
    sim, host = make(motion=True)
    host.send("M4 S500 M8")
    host.send("G1 X100 F600")
    assert sim.wait_for(lambda s: s.state == "Run" and s.laser_power > 0, 5)
    sim.open_door()
    assert host.until(lambda s: s == "[MSG:Check Door]")
    assert sim.laser_power == 0
    assert sim.wait_for(lambda s: s.state == "Door:1", 2)
    report = status(host)
    assert report.startswith("<Door:1|") and "|Pn:D" in report
    host.serial.write(b"~")  # ignored while the door is open
    assert sim.wait_for(lambda s: s.wire_log[-1][1] == ord("~"), 2)
    assert sim.state == "Door:1"
    sim.close_door()
    assert sim.wait_for(lambda s: s.state == "Door:0", 2)
    host.serial.write(b"~")
    assert sim.wait_for(lambda s: s.state == "Run" and s.laser_power == 500, 3)


def test_error_injection_and_corruption(make: Factory) -> None:
    sim, host = make()
    sim.error_on_next_line(33)
    host.send("G0 X1")
    assert host.until(answer) == ["error:33"]
    host.send("G0 X2")
    assert host.until(answer) == ["ok"]
    assert sim.executed == ["G0 X2"]
    sim2, host2 = make(faults=GrblFaults(corrupt_rate=1.0))
    lines = [f"G0 X{k}" for k in range(20)]
    host2.stream(lines)
    assert sim2.stats.corrupted_lines == 20 and sim2.executed != lines[: len(sim2.executed)]


def test_laser_mode_off_means_beam_on_while_idle(make: Factory) -> None:
    sim, host = make(settings={32: 0})
    host.send("M3 S2000")  # clamped to $30
    host.until(answer)
    assert sim.wait_for(lambda s: s.laser_power == 1000, 2) and sim.state == "Idle"
    sim2, host2 = make()
    host2.send("M3 S2000")
    host2.send("G0 X10")
    host2.until(answer)
    host2.until(answer)
    assert sim2.laser_power == 0 and sim2.laser_on_time_s == 0  # $32=1: off while not cutting


def test_status_report_fields_cadence(make: Factory) -> None:
    _, host = make(settings={10: 2})
    first = status(host)
    assert first == "<Idle|WPos:0.000,0.000,0.000|Bf:15,128|FS:0,0|WCO:0.000,0.000,0.000>"
    assert status(host) == "<Idle|WPos:0.000,0.000,0.000|Bf:15,128|FS:0,0|Ov:100,100,100>"
    plain = [status(host) for _ in range(8)]
    assert all("WCO" not in s and "Ov" not in s for s in plain)
    assert "WCO:" in status(host)


def test_motion_timing_scales_with_speed(make: Factory) -> None:
    sim, host = make(motion=True, speed=4.0)
    host.send("G1 X100 F6000")  # 1 s of machine time
    assert sim.wait_for(lambda s: s.state == "Run", 5)
    t0 = time.monotonic()
    assert sim.wait_for(lambda s: s.state == "Idle", 5)
    elapsed = time.monotonic() - t0
    assert 0.2 <= elapsed <= 0.6
    assert status(host).startswith("<Idle|MPos:100.000,0.000,0.000")


def test_baud_limit_throughput(make: Factory) -> None:
    _, host = make(baud=9600)
    lines = [f"G0X{k % 10}.123Y1.5" for k in range(100)]  # 15 bytes + newline
    t0 = time.monotonic()
    assert host.stream(lines) == ["ok"] * len(lines)
    elapsed = time.monotonic() - t0
    wire = sum(len(s) + 1 for s in lines) / 960.0  # 10 bits a byte
    assert wire * 0.9 <= elapsed <= wire * 1.25


def test_usb_latency_delays_replies(make: Factory) -> None:
    _, host = make(usb_latency_s=0.05)
    host.until(lambda s: s == BANNER)  # written by start(), it arrives after the port was opened
    t0 = time.monotonic()
    host.send("G0 X1")
    assert host.until(answer) == ["ok"]
    assert time.monotonic() - t0 >= 0.045


def test_short_lines_throughput(make: Factory) -> None:
    _, host = make()
    lines = [f"G1X{k % 100}S{k % 1000}F900" for k in range(4000)]
    t0 = time.monotonic()
    assert host.stream(lines, timeout=15) == ["ok"] * len(lines)
    rate = len(lines) / (time.monotonic() - t0)
    assert rate > 1500, f"{rate:.0f} lines/s"  # ≥ 10,000 on an idle machine; CI cores are shared


def test_cli_prints_a_port_you_can_open() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.sim", "grbl", "--no-motion", "--set", "32=0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        host = GrblHost(port, baud=115200)
        host.serial.write(b"\x18$$\n")
        lines = host.until(answer, timeout=5)
        assert BANNER in lines and "$32=0" in lines
        host.close()
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_disconnect_and_stop_idempotent(make: Factory) -> None:
    sim, host = make()
    sim.disconnect()
    with pytest.raises(serial.SerialException):
        for _ in range(50):
            host.serial.write(b"G0 X1\n")
            host.serial.read(10)
            time.sleep(0.01)
    sim.stop()
    sim.stop()
