"""Streaming benchmark: MarlinDriver against a naive one-line-at-a-time sender, both on the simulator.

    .venv/bin/python bench/bench_marlin_stream.py [--lines 20000] [--repeat 3] [--skip-motion]

(a) no motion, no baud limit: lines/s (target: driver >= 1.5x naive), simulator in a subprocess;
    driver and naive runs alternate `--repeat` times (a machine's load drifts over both alike) and
    the medians are compared;
(b) 115200 baud, no motion: lines/s as a share of what the wire carries (target >= 95 %), in-process;
(c) 250000 baud, moves needing ~90 % of the wire time: planner starvation (target < 1 %), simulator
    in a subprocess that reports its stats;
(d) 1 % of lines corrupted: every line executed exactly once, resend count (simulator in-process);
CPU: CPU seconds per 10,000 lines during (a), medians: the bench process's (`time.process_time()`:
the MarlinDriver's two threads, or the naive sender; no hub, see bench_hub_memory.py for a whole hub)
and the simulator process's (`python -m drivers.sim marlin`, from /proc/<pid>/stat).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import serial

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drivers.base import DriverEvent, JobEnded  # noqa: E402
from drivers.gcode import iter_commands, numbered_line  # noqa: E402
from drivers.marlin import MarlinDriver  # noqa: E402
from drivers.profiles import Profile, get_profile  # noqa: E402
from drivers.sim.marlin import MarlinFaults, MarlinSimulator  # noqa: E402

SEGMENT_MM = 0.4
HANDSHAKE = {"M110 N0", "M115", "M155 S2", "M400", "M105"}


def write_job(path: Path, lines: int, feed_mm_min: float | None) -> None:
    """`lines` short serpentine segments of SEGMENT_MM (~30-byte `G1 X.. Y.. E..` lines)."""
    per_row = 400
    with path.open("w") as fh:
        fh.write("G90\nM83\nG1 X10 Y10\n")
        if feed_mm_min:
            fh.write(f"G1 F{feed_mm_min:.0f}\n")
        for i in range(lines):
            row, col = divmod(i + 1, per_row)
            x = 10 + (col if row % 2 == 0 else per_row - col) * SEGMENT_MM
            y = 10 + row * SEGMENT_MM
            fh.write(f"G1 X{x:.3f} Y{y:.3f} E{0.01 + (i % 7) * 0.001:.4f}\n")


def numbered_bytes(path: Path) -> float:
    """Average bytes on the wire per job line, N and checksum included (numbered from N1 as sent)."""
    sizes = [len(numbered_line(n, c)) for n, (_, c) in enumerate(iter_commands(path), start=1)]
    return sum(sizes) / len(sizes)


@dataclass
class Run:
    seconds: float
    lines: int
    resends: int = 0

    @property
    def rate(self) -> float:
        return self.lines / self.seconds


def run_driver(profile: Profile, port: str, path: Path, timeout: float = 600) -> tuple[Run, MarlinDriver]:
    ended = threading.Event()
    result: list[JobEnded] = []

    def on_event(event: DriverEvent) -> None:
        if isinstance(event, JobEnded):
            result.append(event)
            ended.set()

    driver = MarlinDriver(profile, port, on_event=on_event)
    driver.connect(timeout=10)
    lines = sum(1 for _ in iter_commands(path))
    started = time.perf_counter()
    driver.start_job("bench", path, lines)
    if not ended.wait(timeout) or result[0].outcome != "completed":
        raise SystemExit(f"driver job did not complete: {result}")
    run = Run(time.perf_counter() - started, lines, driver.flow.rewinds)
    driver.close()
    return run, driver


def run_naive(profile: Profile, port: str, path: Path) -> Run:
    """Send one numbered line, wait for its `ok`, repeat (printcore/OctoPrint's ackMax 1, with a
    buffered reader rather than a 1 ms sleep so only the protocol is compared)."""
    ser = serial.serial_for_url(port, baudrate=profile.baud, timeout=5)
    buf = b""

    def wait_ok() -> None:
        nonlocal buf
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"ok"):
                    return
                if line.startswith(b"Resend") or line.startswith(b"Error"):
                    raise SystemExit(f"naive sender got {line!r}")
            chunk = ser.read(max(1, ser.in_waiting))
            if not chunk:
                raise SystemExit("naive sender: no ok within 5 s")
            buf += chunk

    ser.reset_input_buffer()
    ser.write(b"M110 N0\n")
    wait_ok()
    commands = [c for _, c in iter_commands(path)]
    started = time.perf_counter()
    for n, command in enumerate(commands, start=1):
        ser.write(numbered_line(n, command))
        wait_ok()
    seconds = time.perf_counter() - started
    ser.close()
    return Run(seconds, len(commands))


def executed_once(sim: MarlinSimulator, path: Path) -> bool:
    """Every job line ran once, in order (see tests/drivers/test_marlin_driver.py executed_job)."""
    out: list[str] = []
    for c in sim.executed:
        if c in HANDSHAKE or c[:1] not in ("G", "M", "T") or (out and out[-1] == c):
            continue
        out.append(c)
    return out == [c for _, c in iter_commands(path)]


def with_sim(profile: Profile, fn, **kw):  # type: ignore[no-untyped-def]
    sim = MarlinSimulator(profile, **kw)
    port = sim.start()
    try:
        return fn(sim, port)
    finally:
        sim.stop()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_subprocess(profile: Profile, fn):  # type: ignore[no-untyped-def]
    """Run `fn(port)` against `python -m drivers.sim marlin --no-motion` in another process: the
    simulator then neither shares our GIL nor our CPU account. Returns fn's result, the simulator's
    CPU seconds during it and this process's."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.sim", "marlin", "--no-motion", "--profile", profile.id],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        sim0, own0 = process_cpu(proc.pid), time.process_time()
        result = fn(port)
        return result, process_cpu(proc.pid) - sim0, time.process_time() - own0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# A simulator in its own process that reports its stats when told to: for (c), so that its wire and
# planner timing never waits on this process's GIL.
_SIM_CHILD = """
import dataclasses, json, sys
from drivers.profiles import get_profile
from drivers.sim.marlin import MarlinSimulator
sim = MarlinSimulator(get_profile(sys.argv[1]), motion=True, baud=int(sys.argv[2]))
print(sim.start(), flush=True)
sys.stdin.readline()
print(json.dumps(dataclasses.asdict(sim.stats)), flush=True)
sim.stop()
"""


def stats_subprocess(profile: Profile, baud: int, fn) -> tuple[object, dict[str, float]]:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SIM_CHILD, profile.id, str(baud)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        result = fn(proc.stdout.readline().strip())
        proc.stdin.write("stats\n")
        proc.stdin.flush()
        stats = json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return result, stats


@dataclass
class Compared:
    """(a): alternating runs of the driver and the naive sender against fresh simulator processes."""

    driver: list[Run]
    naive: list[Run]
    cpu: dict[str, list[float]]  # CPU s per 10,000 lines: driver, driver_sim, naive, naive_sim

    @staticmethod
    def median_rate(runs: list[Run]) -> float:
        return statistics.median(r.rate for r in runs)

    @property
    def ratio(self) -> float:
        return self.median_rate(self.driver) / self.median_rate(self.naive)

    @property
    def pair_ratios(self) -> list[float]:
        return [d.rate / n.rate for d, n in zip(self.driver, self.naive, strict=True)]


def compare_unbounded(profile: Profile, path: Path, repeat: int) -> Compared:
    out = Compared([], [], {"driver": [], "driver_sim": [], "naive": [], "naive_sim": []})
    for _ in range(repeat):
        for name, runner in (
            ("driver", lambda p: run_driver(profile, p, path)[0]),
            ("naive", lambda p: run_naive(profile, p, path)),
        ):
            run, sim_cpu, own_cpu = in_subprocess(profile, runner)
            getattr(out, name).append(run)
            out.cpu[name].append(own_cpu / run.lines * 10_000)
            out.cpu[f"{name}_sim"].append(sim_cpu / run.lines * 10_000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each sender in (a)")
    parser.add_argument("--skip-motion", action="store_true", help="skip (c), the slowest part")
    args = parser.parse_args()
    profile = get_profile("marlin-generic")
    tmp = Path(tempfile.mkdtemp(prefix="bench-marlin-"))
    flat = tmp / "flat.gcode"
    write_job(flat, args.lines, None)
    size = numbered_bytes(flat)
    rows: list[tuple[str, str, str, str]] = []
    print(f"{args.lines} job lines, {size:.1f} bytes per numbered line on the wire\n", flush=True)

    # (a)
    a = compare_unbounded(profile, flat, args.repeat)
    pairs = a.pair_ratios
    rows.append(
        (
            f"(a) no motion, no baud: lines/s (median of {args.repeat})",
            f"{a.median_rate(a.driver):,.0f}",
            f"{a.median_rate(a.naive):,.0f}",
            f"{a.ratio:.2f}x (runs {min(pairs):.2f}-{max(pairs):.2f}x)",
        )
    )

    # (b)
    p115 = profile.model_copy(update={"baud": 115200})
    wire = 115200 / 10 / size
    drv, _ = with_sim(p115, lambda s, p: run_driver(p115, p, flat), motion=False, baud=115200)
    naive = with_sim(p115, lambda s, p: run_naive(p115, p, flat), motion=False, baud=115200)
    rows.append(
        (
            f"(b) 115200 baud: lines/s (wire {wire:,.0f})",
            f"{drv.rate:,.0f} = {drv.rate / wire:.1%}",
            f"{naive.rate:,.0f} = {naive.rate / wire:.1%}",
            "",
        )
    )

    # (c)
    if not args.skip_motion:
        wire_s = size * 10 / 250000
        # The moves take wire_s / 0.9: keeping up needs 90 % of the wire's capacity.
        feed = SEGMENT_MM / (wire_s / 0.9) * 60
        moving = tmp / "moving.gcode"
        write_job(moving, args.lines, feed)

        def starvation(runner):  # type: ignore[no-untyped-def]
            run, stats = stats_subprocess(profile, 250000, runner)
            idle = stats["planner_idle_s"]
            return f"{idle / run.seconds:.2%} ({idle:.2f} s of {run.seconds:.1f} s)"

        rows.append(
            (
                f"(c) 250000 baud, moves need 90 % of wire (F{feed:.0f}): starvation",
                starvation(lambda p: run_driver(profile, p, moving)[0]),
                starvation(lambda p: run_naive(profile, p, moving)),
                "",
            )
        )

    # (d)
    def corrupted(sim: MarlinSimulator, port: str) -> str:
        run, driver = run_driver(profile, port, flat)
        once = executed_once(sim, flat) and sim.stats.moves == args.lines + 1  # + the G1 X10 Y10
        s = sim.stats
        return (
            f"exactly once: {'yes' if once else 'NO'}; {s.resends_requested} Resend: "
            f"({s.corrupted_lines} damaged), {driver.flow.rewinds} rewinds, "
            f"{driver.flow.stale_ignored} stale ignored; {run.rate:,.0f} lines/s"
        )

    faults = MarlinFaults(corrupt_rate=0.01)
    rows.append(("(d) 1 % corrupted", with_sim(profile, corrupted, motion=False, faults=faults), "-", ""))

    med = {k: statistics.median(v) for k, v in a.cpu.items()}
    rows.append(
        ("(a) CPU s per 10,000 lines: sender (no hub)", f"{med['driver']:.2f}", f"{med['naive']:.2f}", "")
    )
    rows.append(
        ("(a) CPU s per 10,000 lines: simulator", f"{med['driver_sim']:.2f}", f"{med['naive_sim']:.2f}", "")
    )

    widths = [max(len(r[i]) for r in [("measure", "driver", "naive", "ratio"), *rows]) for i in range(4)]
    for row in [("measure", "driver", "naive", "ratio"), tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
