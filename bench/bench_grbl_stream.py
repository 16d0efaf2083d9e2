"""Streaming benchmark: GrblDriver with character counting against send-response, on the GRBL simulator.

    .venv/bin/python bench/bench_grbl_stream.py [--lines 20000] [--skip-motion] [--estop-tries 20]
        [--estop-only]

A raster of short `G1X..S..` lines (~14 bytes), `grbl-laser-400` profile (128-byte RX buffer), the
simulator in its own process (`drivers.sim.grbl`) at 115200 baud with a 2 ms USB reply latency:

(a) check mode (`$C`, no motion) so the wire is the limit: lines/s and the share of the wire used,
    character counting and send-response (the same driver, the profile's `streaming` switched), one run;
(b) the same file with motion at its feed rate: job time against the time the moves need;
(c) time from `emergency_stop()` to 0x18 in the simulator's wire log with GRBL's RX buffer full,
    p50 / max over `--estop-tries` tries (both clocks are the machine's CLOCK_MONOTONIC);
(d) the same through the whole hub, as a technician's button does it: a `fabzone serve` process
    drives the simulator, a laser job is approved, armed and cutting with GRBL's RX buffer full, and
    `POST /api/machines/<id>/estop` is timed from just before the request is written to the socket to
    0x18 in the simulator's wire log (three processes, one CLOCK_MONOTONIC).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drivers.base import DriverEvent, DriverState, JobEnded  # noqa: E402
from drivers.grbl import GrblDriver  # noqa: E402
from drivers.grbl.lines import iter_job  # noqa: E402
from drivers.profiles import Profile, get_profile  # noqa: E402
from tests.support import Hub, wait_until  # noqa: E402

BAUD = 115200
LATENCY_MS = 2.0
FEED = 6000  # mm/min: 100 mm/s
STEP_MM = 0.25  # 2.5 ms a segment at FEED: the moves need ~400 lines/s, about half the wire
ROW = 200  # segments per raster row

# The simulator in a child process that answers `stats`, `rx_free` and `resets_after <t>` on stdin.
_SIM_CHILD = """
import dataclasses, json, sys
from drivers.profiles import get_profile
from drivers.sim.grbl import GrblSimulator
motion = sys.argv[2] == "motion"
sim = GrblSimulator(get_profile(sys.argv[1]), motion=motion, baud=int(sys.argv[3]),
                    usb_latency_s=float(sys.argv[4]) / 1000.0)
print(sim.start(), flush=True)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "stats":
        out = dataclasses.asdict(sim.stats)
    elif cmd == "rx_free":
        out = sim.firmware.rx.free
    elif cmd == "resets_after":
        out = [t for t, b in list(sim.wire_log) if b == 0x18 and t >= float(arg)]
    else:
        break
    print(json.dumps(out), flush=True)
sim.stop()
"""


class SimProcess:
    def __init__(self, profile: Profile, motion: bool) -> None:
        args = [profile.id, "motion" if motion else "none", str(BAUD), str(LATENCY_MS)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SIM_CHILD, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = self.proc.stdout.readline().strip()

    def ask(self, command: str) -> object:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def write_raster(path: Path, lines: int) -> None:
    """Serpentine rows of STEP_MM segments with varying power; a `G1Y..S0` line between rows."""
    with path.open("w") as fh:
        fh.write(f"G21G90\nG0X10Y10\nM4S0\nG1F{FEED}\n")
        for i in range(lines):
            row, col = divmod(i, ROW + 1)
            if col == ROW:
                fh.write(f"G1Y{10 + (row + 1) * 0.1:.1f}S0\n")
                continue
            step = col + 1 if row % 2 == 0 else ROW - col - 1
            fh.write(f"G1X{10 + step * STEP_MM:.2f}S{(i * 37) % 1000}\n")
        fh.write("M5\n")


def move_seconds(path: Path) -> float:
    """What the file's G1 moves need at FEED (the simulator moves without acceleration)."""
    x = y = 10.0
    total = 0.0
    for line in iter_job(path, 80):
        t = line.text
        if not t.startswith("G1") or "F" in t:
            continue
        nx, ny = x, y
        for word in ("X", "Y"):
            if word in t:
                value = float(t.split(word)[1].split("S")[0])
                nx, ny = (value, ny) if word == "X" else (nx, value)
        total += ((nx - x) ** 2 + (ny - y) ** 2) ** 0.5 / (FEED / 60.0)
        x, y = nx, ny
    return total


def run_job(driver: GrblDriver, path: Path, ended: list[JobEnded], done: threading.Event) -> float:
    done.clear()
    ended.clear()
    started = time.perf_counter()
    driver.start_job("bench", path)
    if not done.wait(900) or ended[0].outcome != "completed":
        raise SystemExit(f"job did not complete: {ended}")
    return time.perf_counter() - started


def connect(profile: Profile, port: str) -> tuple[GrblDriver, list[JobEnded], threading.Event]:
    ended: list[JobEnded] = []
    done = threading.Event()

    def on_event(event: DriverEvent) -> None:
        if isinstance(event, JobEnded):
            ended.append(event)
            done.set()

    driver = GrblDriver(profile, port, on_event=on_event)
    driver.connect(timeout=10)
    return driver, ended, done


def check_mode_rate(profile: Profile, path: Path, lines: int) -> tuple[float, int]:
    sim = SimProcess(profile, motion=False)
    try:
        driver, ended, done = connect(profile, sim.port)
        driver.set_check_mode(True)
        seconds = run_job(driver, path, ended, done)
        high_water = driver.flow.high_water
        driver.set_check_mode(False)
        driver.close()
        stats = sim.ask("stats")
        assert isinstance(stats, dict) and stats["bytes_dropped"] == 0, stats
    finally:
        sim.close()
    return lines / seconds, high_water


def motion_run(profile: Profile, path: Path) -> tuple[float, dict[str, float]]:
    sim = SimProcess(profile, motion=True)
    try:
        driver, ended, done = connect(profile, sim.port)
        seconds = run_job(driver, path, ended, done)
        driver.close()
        stats = sim.ask("stats")
        assert isinstance(stats, dict)
    finally:
        sim.close()
    return seconds, stats


def estop_latency(profile: Profile, tmp: Path, tries: int) -> list[float]:
    slow = tmp / "slow.gcode"
    _slow_laser_file(slow)
    sim = SimProcess(profile, motion=True)
    out: list[float] = []
    try:
        driver, _ended, done = connect(profile, sim.port)
        for _ in range(tries):
            done.clear()
            driver.start_job("estop", slow)  # 12-byte lines: full = less than two lines free
            deadline = time.monotonic() + 20
            while not (driver.flow.bytes > 110 and int(sim.ask("rx_free")) < 26):  # type: ignore[call-overload]
                if time.monotonic() > deadline:
                    raise SystemExit("the RX buffer never filled")
                time.sleep(0.02)
            called = time.monotonic()
            driver.emergency_stop()
            seen: list[float] = []
            while not seen:
                time.sleep(0.05)
                seen = sim.ask(f"resets_after {called}")  # type: ignore[assignment]
            out.append(seen[0] - called)
            done.wait(5)
            driver.unlock()
            assert driver.status.state is DriverState.IDLE
        driver.close()
    finally:
        sim.close()
    return out


def _slow_laser_file(path: Path) -> None:
    """40 s of 0.5 mm moves at 5 mm/s: GRBL's planner fills, then its RX buffer, and stays full."""
    path.write_text(
        "G21G90\nM4S0\nG1F300\n" + "".join(f"G1X{10 + i * 0.5:.1f}S500\n" for i in range(400)) + "M5\n"
    )


def _machine(hub: Hub, machine_id: str) -> dict[str, Any]:
    return hub.http.get(f"/api/machines/{machine_id}").json()  # type: ignore[no-any-return]


def hub_estop_latency(profile: Profile, tmp: Path, tries: int) -> tuple[list[float], list[float]]:
    """(d): per try, (request sent → 0x18 on the simulator's wire, request sent → the API's answer)."""
    slow = tmp / "hub-slow.gcode"
    _slow_laser_file(slow)
    sim = SimProcess(profile, motion=True)
    config = tmp / "fabzone.toml"
    config.write_text(
        f'[hub]\ndata_dir = "{tmp / "hub-data"}"\n\n'
        f'[[machines]]\nid = "laser-1"\nname = "Laser"\ndriver = "grbl"\nport = "{sim.port}"\n'
        f'profile = "{profile.id}"\n'
    )
    hub = Hub(["serve", "--config", str(config)], tmp)
    to_wire: list[float] = []
    to_answer: list[float] = []
    try:
        hub.start()
        wait_until(lambda: _machine(hub, "laser-1")["state"] == "idle", 30, what="the laser online")
        for i in range(tries):
            res = hub.submit(slow, kind="laser", name=f"estop {i}")
            if res.status_code != 201:
                raise SystemExit(f"job refused: {res.status_code} {res.text[:300]}")
            job = res.json()
            hub.http.post(f"/api/jobs/{job['id']}/approve").raise_for_status()
            wait_until(lambda: _machine(hub, "laser-1")["live"]["arming"], 20, what="waiting to arm")
            hub.http.post("/api/machines/laser-1/arm").raise_for_status()
            # Cutting, with GRBL's 128-byte RX buffer full (less than two 12-byte lines free).
            wait_until(lambda: int(sim.ask("rx_free")) < 26, 20, 0.02, "the RX buffer full")  # type: ignore[call-overload]
            # The client's connection is open and warm (keep-alive, the polls above): what is timed is
            # the request, the hub's HTTP stack, the token check and the driver's write.
            request = hub.http.build_request("POST", "/api/machines/laser-1/estop")
            sent = time.monotonic()
            answer = hub.http.send(request)
            answered = time.monotonic()
            answer.raise_for_status()
            seen: list[float] = []
            while not seen:
                seen = sim.ask(f"resets_after {sent}")  # type: ignore[assignment]
                if not seen:
                    time.sleep(0.02)
            to_wire.append(seen[0] - sent)
            to_answer.append(answered - sent)
            # Stopped mid-cut: the job ends cancelled, GRBL locks (ALARM:3). A technician unlocks it and
            # clears the bed; the laser is free for the next try.
            hub.wait_job(job["id"], {"cancelled", "failed"}, 20)
            wait_until(lambda: _machine(hub, "laser-1")["state"] == "error", 20, what="the laser in error")
            hub.http.post("/api/machines/laser-1/unlock").raise_for_status()
            wait_until(lambda: _machine(hub, "laser-1")["state"] == "awaiting_clear", 20, what="unlocked")
            hub.http.post("/api/machines/laser-1/clear", json={}).raise_for_status()
            wait_until(lambda: _machine(hub, "laser-1")["state"] == "idle", 20, what="the laser idle")
    finally:
        hub.close()
        sim.close()
    return to_wire, to_answer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--skip-motion", action="store_true", help="skip (b), the slowest part")
    parser.add_argument("--estop-tries", type=int, default=20)
    parser.add_argument("--estop-only", action="store_true", help="only (c) and (d), the emergency stop")
    args = parser.parse_args()
    profile = get_profile("grbl-laser-400")
    send_response = profile.model_copy(
        update={"flow": profile.flow.model_copy(update={"streaming": "send_response"})}
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-grbl-"))
    raster = tmp / "raster.gcode"
    write_raster(raster, args.lines)
    job = [x.text for x in iter_job(raster, 80)]
    size = sum(len(t) + 1 for t in job) / len(job)
    wire = BAUD / 10 / size
    print(f"{len(job)} lines, {size:.1f} bytes a line with its \\n; the wire carries {wire:,.0f} lines/s\n")

    rows: list[tuple[str, str, str]] = []
    if not args.estop_only:
        cc, hw = check_mode_rate(profile, raster, len(job))
        sr, _ = check_mode_rate(send_response, raster, len(job))
        rows += [
            ("(a) check mode, char counting: lines/s", f"{cc:,.0f} = {cc / wire:.1%} of the wire", "≥ 90 %"),
            ("(a) check mode, send-response: lines/s", f"{sr:,.0f} = {sr / wire:.1%} of the wire", "–"),
            ("(a) char counting / send-response", f"{cc / sr:.2f}×", "≥ 2×"),
            ("(a) most bytes in flight (budget 128)", f"{hw}", "≤ 128"),
        ]
    if not args.skip_motion and not args.estop_only:
        need = move_seconds(raster)
        took, stats = motion_run(profile, raster)
        rows.append(
            (
                f"(b) motion at F{FEED}: job time / time the moves need",
                f"{took:.1f} s / {need:.1f} s = {took / need:.1%} (planner idle {stats['planner_idle_s']:.2f} s,"
                f" RX high water {stats['rx_high_water']}, dropped {stats['bytes_dropped']})",
                "≤ 102 %",
            )
        )
    lat = sorted(x * 1000 for x in estop_latency(profile, tmp, args.estop_tries))
    rows.append(
        (
            f"(c) emergency_stop() → 0x18 on the wire, RX full ({len(lat)} tries)",
            f"p50 {statistics.median(lat):.1f} ms, max {lat[-1]:.1f} ms",
            "< 50 ms",
        )
    )
    wire_ms, answer_ms = (
        sorted(x * 1000 for x in xs) for xs in hub_estop_latency(profile, tmp, args.estop_tries)
    )
    rows += [
        (
            f"(d) POST /api/machines/<id>/estop → 0x18 on the wire, RX full ({len(wire_ms)} tries)",
            f"p50 {statistics.median(wire_ms):.1f} ms, max {wire_ms[-1]:.1f} ms",
            "< 50 ms",
        ),
        (
            "(d) POST /api/machines/<id>/estop → the API's answer",
            f"p50 {statistics.median(answer_ms):.1f} ms, max {answer_ms[-1]:.1f} ms",
            "–",
        ),
    ]
    header = ("measure", "result", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
