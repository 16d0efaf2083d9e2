"""The Marlin simulator against a pyserial host over a real pty: strings, flow control, timing, faults."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from drivers.gcode import numbered_line
from drivers.sim.marlin import MarlinFaults, MarlinSimulator
from tests.sim.host import Host, sim_hosts

pytestmark = pytest.mark.timeout(20)

Factory = Callable[..., tuple[MarlinSimulator, Host]]
TEMPS = re.compile(r"^ok T:\d+\.\d\d /\d+\.\d\d B:\d+\.\d\d /\d+\.\d\d @:\d+ B@:\d+$")
KILLED = "Error:Printer halted. kill() called!"


@pytest.fixture
def make() -> Iterator[Factory]:
    yield from sim_hosts(MarlinSimulator, Host, "marlin-generic")


def is_ok(line: str) -> bool:
    return line.startswith("ok")


def test_reset_writes_start_and_boot_lines(make: Factory) -> None:
    sim, host = make()
    sim.reset()
    lines = host.until(lambda s: s.startswith("echo:Hardcoded"))
    assert lines[0] == "start"
    assert lines[1] == "echo:Marlin 2.1.2"


def test_m115_reports_firmware_and_caps(make: Factory) -> None:
    _, host = make()
    host.send("M115")
    lines = host.until(is_ok)
    assert lines[0].startswith("FIRMWARE_NAME:Marlin 2.1.2 (")
    assert "PROTOCOL_VERSION:1.0" in lines[0] and "EXTRUDER_COUNT:1" in lines[0]
    assert "Cap:EMERGENCY_PARSER:1" in lines and "Cap:AUTOREPORT_TEMP:1" in lines
    assert lines[-1] == "ok"


def test_m115_without_autoreport(make: Factory) -> None:
    sim, host = make(autoreport=False)
    host.send("M115")
    assert "Cap:AUTOREPORT_TEMP:0" in host.until(is_ok)
    host.send("M155 S1")
    assert host.until(is_ok) == ['echo:Unknown command: "M155 S1"', "ok"]
    assert sim.executed == ["M115"] and sim.unknown == ["M155 S1"]


def test_m105_format_and_m155_autoreport(make: Factory) -> None:
    _, host = make()
    host.send("M105")
    assert TEMPS.match(host.until(is_ok)[-1])
    host.send("M155 S0.1")
    host.until(is_ok)
    assert host.until(lambda s: s.startswith(" T:"))[-1].endswith("B@:0")


def test_numbered_lines_each_get_one_ok_and_run_in_order(make: Factory) -> None:
    sim, host = make()
    host.send("M110 N0")
    host.until(is_ok)
    commands = [f"G1 X{i} Y{i} E{i / 10:.1f}" for i in range(1, 21)]
    for n, command in enumerate(commands, start=1):
        host.send_numbered(n, command)
        assert host.until(is_ok) == ["ok"]
    assert sim.executed == ["M110 N0", *commands]
    assert sim.stats.lines_received == 21


def test_bad_checksum_gives_error_resend_and_ok(make: Factory) -> None:
    sim, host = make()
    host.send_numbered(1, "G28")
    host.until(is_ok)
    host.serial.write(b"N2 G1 X5*99\n")
    assert host.until(is_ok) == ["Error:checksum mismatch, Last Line: 1", "Resend: 2", "ok"]
    assert sim.stats.checksum_errors == 1 and sim.stats.resends_requested == 1
    assert sim.executed == ["G28"]


def test_wrong_line_number_and_missing_checksum(make: Factory) -> None:
    _, host = make()
    host.send_numbered(5, "G28")
    assert host.until(is_ok) == [
        "Error:Line Number is not Last Line Number+1, Last Line: 0",
        "Resend: 1",
        "ok",
    ]
    host.send("N1 G28")
    assert host.until(is_ok) == ["Error:No Checksum with line number, Last Line: 0", "Resend: 1", "ok"]


def test_old_firmware_resend_without_ok(make: Factory) -> None:
    _, host = make(resend_with_ok=False)
    host.send_numbered(3, "G28")
    lines = host.until(lambda s: s.startswith("Resend:"))
    assert lines == ["Error:Line Number is not Last Line Number+1, Last Line: 0", "Resend: 1"]
    host.send("M105")  # the next line is the reply to M105: no `ok` came after `Resend:`
    assert TEMPS.match(host.until(is_ok)[0])


def test_m110_sets_line_number(make: Factory) -> None:
    sim, host = make()
    host.send_numbered(41, "M110 N41")
    host.until(is_ok)
    host.send_numbered(42, "G90")
    assert host.until(is_ok) == ["ok"]
    assert sim.executed == ["M110 N41", "G90"]


def test_long_line_is_truncated_not_refused(make: Factory) -> None:
    sim, host = make()
    host.send("M117 " + "x" * 200)
    host.until(is_ok)
    assert sim.executed == ["M117 " + "x" * 91]


def test_rx_overflow_drops_bytes_while_the_queue_is_blocked(make: Factory) -> None:
    sim, host = make(motion=True)
    host.send("G4 S30")  # blocks the firmware: nothing leaves the RX buffer
    assert sim.wait_for(lambda s: s.executed == ["G4 S30"], 2)
    data = b"".join(f"N{n} G1 X{n} Y{n}*0\n".encode() for n in range(1, 60))[:1024]
    host.serial.write(data)
    assert sim.wait_for(lambda s: s.stats.bytes_dropped == len(data) - 128, 2)


def test_m112_halts_at_once_with_queue_and_rx_full(make: Factory) -> None:
    sim, host = make(motion=True)
    host.send("G4 S30")
    assert sim.wait_for(lambda s: s.executed == ["G4 S30"], 2)
    host.serial.write(b"G4 S1\n" * 200)  # RX buffer full, the rest dropped
    assert sim.wait_for(lambda s: s.stats.bytes_dropped > 0, 2)
    host.send("M112")
    assert host.until(lambda s: s.startswith("Error:")) == [KILLED]
    assert sim.halted
    host.send("M105")
    assert host.silent_for(0.3)


def test_m108_breaks_a_heating_wait(make: Factory) -> None:
    sim, host = make()
    host.send("M109 S250")
    assert sim.wait_for(lambda s: s.executed == ["M109 S250"], 2)
    host.send("M108")
    host.until(is_ok)


def test_m109_sends_busy_and_temperatures_then_ok(make: Factory) -> None:
    sim, host = make(speed=60, keepalive_s=0.2, temp_report_s=0.1)
    host.send("M109 S200")
    lines = host.until(is_ok, timeout=5)
    assert "echo:busy: processing" in lines
    temps = [s for s in lines if s.startswith(" T:")]
    assert len(temps) >= 3 and temps[0].endswith(" W:?")
    assert lines[-1] == "ok"
    host.send("M105")
    reply = host.until(is_ok)[-1]
    assert float(reply.split("T:")[1].split()[0]) >= 199.0
    assert sim.stats.busy_sent >= 1


def test_g28_blocks_with_busy(make: Factory) -> None:
    _, host = make(motion=True, speed=10.0, keepalive_s=0.02)
    host.send("G28 X")
    lines = host.until(is_ok, timeout=5)
    assert lines.count("echo:busy: processing") >= 10


def test_baud_limit_sets_throughput(make: Factory) -> None:
    baud = 115200
    sim, host = make(baud=baud)
    payload = b"G92 E0\n" * 400
    start = time.monotonic()
    host.serial.write(payload)
    assert sim.wait_for(lambda s: len(s.executed) == 400, 5)
    host.until(lambda s: len(host.seen) == 400, timeout=2)
    elapsed = time.monotonic() - start
    expected = len(payload) * 10 / baud
    assert expected * 0.9 <= elapsed <= expected * 1.1, (elapsed, expected)
    assert sim.stats.bytes_dropped == 0


def test_motion_time_is_distance_over_feed_scaled_by_speed(make: Factory) -> None:
    sim, host = make(motion=True, speed=10)
    host.send("G1 X100 F6000")
    host.until(is_ok)
    start = time.monotonic()
    host.send("M400")
    host.until(is_ok)
    elapsed = time.monotonic() - start
    assert 0.07 <= elapsed <= 0.15, elapsed
    assert sim.stats.moves == 1


def test_full_planner_holds_back_ok(make: Factory) -> None:
    sim, host = make(motion=True, speed=1)
    for n in range(1, 18):  # 16 blocks of 1 s each fill the planner; the 17th must wait
        host.send(f"G1 X{n * 10} F600")
    oks = host.until(lambda s: host.seen.count("ok") == 16, timeout=2)
    assert host.silent_for(0.3)
    assert oks[-1] == "ok" and sim.stats.moves == 16


def test_reset_mid_print_forgets_line_numbers(make: Factory) -> None:
    sim, host = make()
    host.send_numbered(1, "G28")
    host.until(is_ok)
    sim.reset()
    assert host.until(lambda s: s.startswith("echo:Hardcoded"))[0] == "start"
    host.send_numbered(2, "G90")
    assert host.until(is_ok)[0].startswith("Error:Line Number is not Last Line Number+1, Last Line: 0")
    host.send_numbered(1, "G90")
    assert host.until(is_ok) == ["ok"]


def test_reset_after_lines_fault(make: Factory) -> None:
    _, host = make(faults=MarlinFaults(reset_after_lines=3))
    for n in range(1, 4):
        host.send_numbered(n, "G90")
    assert "start" in host.until(lambda s: s.startswith("echo:Hardcoded"))


def test_thermal_runaway_lines_then_silence(make: Factory) -> None:
    sim, host = make()
    sim.thermal_runaway(0)
    assert host.until(lambda s: "kill()" in s) == [
        "Error:Thermal Runaway, system stopped! Heater_ID: 0",
        KILLED,
    ]
    host.send("M105")
    assert host.silent_for(0.3)


def test_thermal_runaway_after_seconds_and_halt(make: Factory) -> None:
    sim, host = make(faults=MarlinFaults(thermal_runaway_after_s=0.2))
    assert host.until(lambda s: "kill()" in s, timeout=3)[0].startswith("Error:Thermal Runaway")
    sim.reset()
    host.until(lambda s: s.startswith("echo:Hardcoded"))
    sim.halt("test")
    assert host.until(lambda s: s.startswith("Error")) == [KILLED]


def test_dropped_ok_for_a_given_line(make: Factory) -> None:
    sim, host = make(faults=MarlinFaults(drop_ok_lines={2}))
    for n in range(1, 4):
        host.send_numbered(n, "G90")
    assert sim.wait_for(lambda s: len(s.executed) == 3, 2)
    host.until(lambda s: host.seen.count("ok") == 2)
    assert host.silent_for(0.2)
    assert sim.stats.oks_dropped == 1


def test_corruption_causes_checksum_or_line_errors(make: Factory) -> None:
    sim, host = make(faults=MarlinFaults(corrupt_rate=1.0))
    host.send_numbered(1, "G1 X10 Y10")
    assert host.until(is_ok)[0].startswith("Error:")
    assert sim.stats.corrupted_lines == 1 and sim.executed == []


def test_unknown_command(make: Factory) -> None:
    sim, host = make()
    host.send("M9999 S1")
    assert host.until(is_ok) == ['echo:Unknown command: "M9999 S1"', "ok"]
    assert sim.executed == [] and sim.unknown == ["M9999 S1"]


def test_line_with_damaged_n_is_unknown_not_executed(make: Factory) -> None:
    # `N` flipped to `n` (the corruption fault can do this): no line number, so no checks; Marlin
    # reads the word `n1` and refuses the line. It must not look like a run of "G1 X10 Y10".
    sim, host = make()
    line = numbered_line(1, "G1 X10 Y10").decode().strip()
    damaged = "n" + line[1:]
    host.send(damaged)
    assert host.until(is_ok) == [f'echo:Unknown command: "{damaged}"', "ok"]
    assert sim.executed == [] and sim.unknown == [damaged]
    assert sim.stats.moves == 0


def test_fragment_after_a_flush_is_unknown_not_executed(make: Factory) -> None:
    sim, host = make()
    host.send("X10.5 E1.2*77")  # the tail of a line whose head went with an RX flush
    assert host.until(is_ok) == ['echo:Unknown command: "X10.5 E1.2*77"', "ok"]
    assert sim.executed == [] and sim.unknown == ["X10.5 E1.2*77"]


def test_m114_position(make: Factory) -> None:
    _, host = make()
    host.send("G1 X10 Y20.5 Z0.3")
    host.send("M114")
    lines = host.until(lambda s: s.startswith("X:"))
    assert lines[-1] == "X:10.00 Y:20.50 Z:0.30 E:0.00 Count X:800 Y:1640 Z:120"


def test_disconnect_closes_the_port(make: Factory) -> None:
    sim, host = make()
    sim.disconnect()
    with pytest.raises(Exception):  # noqa: B017 - pyserial raises SerialException or OSError
        for _ in range(50):
            host.serial.write(b"M105\n")
            host.serial.read(1)
            time.sleep(0.01)


def test_cli_prints_a_port_that_answers() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.sim", "marlin", "--profile", "creality-ender3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        host = Host(port)
        host.send("M105")
        assert TEMPS.match(host.until(is_ok)[-1])
        host.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_planner_idle_time_counts_starvation_between_moves(make: Factory) -> None:
    sim, host = make(motion=True, speed=10)
    host.send("G1 X10 F6000")  # 10 ms of motion at speed 10
    host.until(is_ok)
    assert sim.wait_for(lambda s: s.firmware.planner.is_empty(time.monotonic()), 2)
    time.sleep(0.05)  # the host "starves" the planner; this sleep is the thing measured
    host.send("G1 X20 F6000")
    host.until(is_ok)
    assert 0.04 <= sim.stats.planner_idle_s <= 0.5
    host.send("M400")
    host.until(is_ok)
    host.send("G1 X30 F6000")  # after M400 the planner was drained on purpose: not starvation
    host.until(is_ok)
    assert sim.stats.planner_idle_s <= 0.5 and sim.stats.moves == 3
