"""Peak hub memory while validating and streaming a 100 MB G-code file (issue 2 §10 e; target < 150 MB).

Runs a real `fabzone serve` process against a simulated printer in another process (no motion, so
the wire is the limit), uploads the file over HTTP, and reads the hub's peak resident set (VmHWM in
/proc/<pid>/status) after validation and after streaming for a while (or to the end with --full).
Also the hub process's CPU seconds (user + system, /proc/<pid>/stat) per 10,000 lines streamed: the
whole hub (driver threads, event loop, database progress writes, event bus), not the driver alone.

    .venv/bin/python bench/bench_hub_memory.py [--mb 100] [--stream-seconds 60] [--full]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import Hub, SimProcess  # noqa: E402

TARGET_MB = 150


def make_file(path: Path, megabytes: float) -> int:
    """Short extruding segments inside the MK3S volume, heaters on at the start and off at the end."""
    lines = 0
    target = int(megabytes * 1024 * 1024)
    with path.open("w") as fh:
        fh.write("M140 S60\nM104 S215\nM190 S60\nM109 S215\nG28\nG90\nM82\nG92 E0\n")
        e = 0.0
        i = 0
        while fh.tell() < target:
            block = []
            for _ in range(1000):
                x = 50 + (i % 100)
                y = 50 + (i // 100) % 100
                e += 0.05
                block.append(f"G1 X{x}.123 Y{y}.456 E{e:.4f}\n")
                i += 1
            fh.write("".join(block))
            lines += 1000
        fh.write("M104 S0\nM140 S0\nM84\n")
    return lines + 11


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=100)
    parser.add_argument("--stream-seconds", type=float, default=60)
    parser.add_argument("--full", action="store_true", help="stream the whole file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        gcode = tmp / "big.gcode"
        t0 = time.monotonic()
        lines = make_file(gcode, args.mb)
        size_mb = gcode.stat().st_size / 1024 / 1024
        print(
            f"file: {size_mb:.1f} MB, {lines:,} lines (generated in {time.monotonic() - t0:.1f} s)",
            flush=True,
        )

        sim = SimProcess("prusa-mk3s", tmp, "sim", "--no-motion", "--speed", "1000")
        config = tmp / "fabzone.toml"
        config.write_text(
            f'[hub]\ndata_dir = "{tmp / "data"}"\nmax_upload_mb = {args.mb + 10}\n\n'
            f'[[machines]]\nid = "mk3s"\nname = "MK3S"\nport = "{sim.port}"\nprofile = "prusa-mk3s"\n'
        )
        hub = Hub(["serve", "--config", str(config)], tmp).start()
        assert hub.proc is not None
        pid = hub.proc.popen.pid
        idle_mb = vm_rss_mb(pid)
        try:
            t0 = time.monotonic()
            resp = hub.submit(gcode, name="100 MB")
            upload_s = time.monotonic() - t0
            if resp.status_code != 201:
                print(f"upload refused: {resp.status_code} {resp.text[:500]}")
                return 1
            job_id = resp.json()["id"]
            after_validation = vm_hwm_mb(pid)
            running = hub.wait_job(job_id, {"running", "completed", "failed"}, 60)
            t_stream = time.monotonic()
            cpu0, acked0 = cpu_seconds(pid), running["lines_acked"] or 0
            deadline = None if args.full else t_stream + args.stream_seconds
            next_report = t_stream + 60
            while True:
                job = hub.job(job_id)
                if job["state"] != "running" or (deadline and time.monotonic() > deadline):
                    break
                if time.monotonic() >= next_report:
                    next_report += 60
                    print(
                        f"  {time.monotonic() - t_stream:5.0f} s: {job['lines_acked'] or 0:,} lines, "
                        f"peak {vm_hwm_mb(pid):.1f} MB",
                        flush=True,
                    )
                time.sleep(1)
            streamed_s = time.monotonic() - t_stream
            cpu = cpu_seconds(pid) - cpu0
            acked = job["lines_acked"] or 0
            peak = vm_hwm_mb(pid)
            print()
            print(f"{'measure':44} {'fabzone':>12} {'target':>10}")
            print(f"{'hub resident at rest (MB)':44} {idle_mb:12.1f} {'':>10}")
            print(f"{'upload + validation of the file (s)':44} {upload_s:12.1f} {'':>10}")
            print(
                f"{'peak resident after validation (MB)':44} {after_validation:12.1f} {'< ' + str(TARGET_MB):>10}"
            )
            print(f"{'lines streamed (in ' + f'{streamed_s:.0f} s)':44} {acked:12,} {'':>10}")
            print(f"{'streaming rate (lines/s)':44} {acked / streamed_s:12,.0f} {'':>10}")
            per_10k = cpu / max(1, acked - acked0) * 10_000
            print(f"{'hub process CPU s per 10,000 lines streamed':44} {per_10k:12.2f} {'':>10}")
            print(
                f"{'peak resident, validation + streaming (MB)':44} {peak:12.1f} {'< ' + str(TARGET_MB):>10}"
            )
            print(f"job state at the end: {job['state']} ({running['state']} at first look)")
            return 0 if peak < TARGET_MB else 1
        finally:
            hub.close()
            sim.stop()


if __name__ == "__main__":
    sys.exit(main())
