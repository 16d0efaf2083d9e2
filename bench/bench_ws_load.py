"""200 WebSocket clients on one hub with 20 busy simulated printers (issue 3 §6).

Prints, in one run: the delay from an event's publication in the hub to its arrival at each client
(p50/p99 over every delivery), the hub's CPU (share of one core) and its peak resident memory, beside
the targets (p99 < 100 ms, < 1 core, < 300 MB). The printers are `python -m drivers.sim marlin`
processes of their own (as real printers are other devices), the hub a `fabzone serve` process, the
clients asyncio WebSockets in this process.

    .venv/bin/python bench/bench_ws_load.py [--clients 200] [--printers 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402

from tests.gcode_samples import prusa_mk3s, write  # noqa: E402
from tests.support import Hub, SimProcess, wait_until  # noqa: E402

TICKS = 100  # /proc/<pid>/stat clock ticks per second (Linux default USER_HZ)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def client(url: str, delays: list[float], counts: list[int], stop: asyncio.Event) -> None:
    async with websockets.connect(url, max_queue=None) as ws:
        received = 0
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            now = time.time()
            # The hub writes `"at":<float>` third in every event (events.py); slicing it out instead of
            # parsing whole events keeps 200 clients in one process from becoming the bottleneck. A
            # message may hold several events (`?batch=1`, as the pages ask).
            start = raw.find('"at":')
            while start >= 0:
                end = raw.find(",", start)
                delays.append(now - float(raw[start + 5 : end]))
                received += 1
                start = raw.find('"at":', end)
        counts.append(received)


async def run_clients(
    url: str, n: int, seconds: float, pid: int
) -> tuple[list[float], list[int], float, float]:
    delays: list[float] = []
    counts: list[int] = []
    stop = asyncio.Event()
    tasks = [asyncio.create_task(client(url, delays, counts, stop)) for _ in range(n)]
    await asyncio.sleep(2)  # all connected and settled
    delays.clear()
    cpu0, t0, own0 = cpu_seconds(pid), time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    cpu1, t1, own1 = cpu_seconds(pid), time.monotonic(), time.process_time()
    print(f"load generator (the {n} clients, this process): {(own1 - own0) / (t1 - t0):.2f} cores")
    stop.set()
    await asyncio.gather(*tasks)
    return delays, counts, (cpu1 - cpu0) / (t1 - t0), t1 - t0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--printers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--sim-speed", type=float, default=1.0, help="1 = printers at real speed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        sims = [
            SimProcess("prusa-mk3s", tmp, f"sim{i}", "--speed", str(args.sim_speed))
            for i in range(args.printers)
        ]
        machines = "".join(
            f'[[machines]]\nid = "p{i}"\nname = "P{i}"\nport = "{s.port}"\nprofile = "prusa-mk3s"\n\n'
            for i, s in enumerate(sims)
        )
        config = tmp / "fabzone.toml"
        config.write_text(f'[hub]\ndata_dir = "{tmp / "data"}"\nsubmit_per_minute = 1000\n\n{machines}')
        hub = Hub(["serve", "--config", str(config)], tmp).start()
        assert hub.proc is not None
        pid = hub.proc.popen.pid
        try:
            wait_until(
                lambda: all(m["state"] == "idle" for m in hub.machines().values()), 60, 0.2, "printers online"
            )
            gcode = write(tmp, "long.gcode", prusa_mk3s(layers=400))
            for i in range(args.printers):
                assert hub.submit(gcode, name=f"job {i}").status_code == 201
            wait_until(
                lambda: sum(j["state"] == "running" for j in hub.jobs()) == args.printers,
                60,
                0.2,
                "all printing",
            )
            url = f"ws://127.0.0.1:{hub.port}/api/events?batch=1"
            delays, counts, cores, span = asyncio.run(run_clients(url, args.clients, args.seconds, pid))
            still_running = sum(j["state"] == "running" for j in hub.jobs())
            peak = vm_hwm_mb(pid)
        finally:
            hub.close()
            for s in sims:
                s.stop()

    delays.sort()
    p50 = statistics.median(delays) * 1000
    p99 = delays[int(len(delays) * 0.99)] * 1000
    per_client = statistics.mean(counts) / span
    print(f"{args.clients} clients, {args.printers} printing simulated printers, {span:.0f} s measured")
    print(f"printers still printing at the end: {still_running}/{args.printers}")
    print(f"events delivered: {len(delays):,} ({per_client:.1f} per client per second)\n")
    print(f"{'measure':40} {'fabzone':>10} {'target':>10}")
    print(f"{'delay publish -> client, p50 (ms)':40} {p50:10.1f} {'':>10}")
    print(f"{'delay publish -> client, p99 (ms)':40} {p99:10.1f} {'< 100':>10}")
    print(f"{'hub CPU (cores)':40} {cores:10.2f} {'< 1':>10}")
    print(f"{'hub peak resident memory (MB)':40} {peak:10.1f} {'< 300':>10}")
    return 0 if p99 < 100 and cores < 1 and peak < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
