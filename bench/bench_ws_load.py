"""200 WebSocket clients on one hub with 20 busy simulated printers (issue 3 §6).

Prints, in one run, beside the targets (p99 < 100 ms, < 1 core, < 300 MB):
- the delay from an event's publication in the hub to its arrival at each client (p50/p99 over every
  delivery: the fan-out, progress included, which the hub coalesces to 4 a second per machine first);
- the delay from a status change to every client: a technician pauses or resumes printer p0 every
  two seconds through the API, and each client's arrival of p0's new machine state is timed from the
  moment the request was sent (state changes are not coalesced);
- the hub's CPU (share of one core) and its peak resident memory. The printers are `python -m drivers.sim marlin`
processes of their own (as real printers are other devices), the hub a `fabzone serve` process, the
clients asyncio WebSockets in this process.

    .venv/bin/python bench/bench_ws_load.py [--clients 200] [--printers 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


PROBE_MACHINE = "p0"


async def client(
    url: str, delays: list[float], counts: list[int], stop: asyncio.Event, arrivals: list[tuple[str, float]]
) -> None:
    async with websockets.connect(url, max_queue=None) as ws:
        received = 0
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            now = time.time()
            if '"type":"machine"' in raw and f'"id":"{PROBE_MACHINE}"' in raw:
                # Rare (the probe's state changes): parsed whole, the rest is only sliced.
                message = json.loads(raw)
                for event in message if isinstance(message, list) else [message]:
                    if event.get("type") == "machine" and event["data"].get("id") == PROBE_MACHINE:
                        arrivals.append((event["data"]["state"], now))
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


async def probe_state_changes(hub: Hub, seconds: float) -> list[tuple[str, float]]:
    """Pause / resume p0 every two seconds; (the state asked for, when the request was sent)."""
    job_id = next(j["id"] for j in hub.jobs() if j["machine_id"] == PROBE_MACHINE and j["state"] == "running")
    sent: list[tuple[str, float]] = []
    end = time.monotonic() + seconds - 2
    while time.monotonic() < end:
        target, action = ("paused", "pause") if len(sent) % 2 == 0 else ("running", "resume")
        sent.append((target, time.time()))
        resp = await asyncio.to_thread(hub.http.post, f"/api/jobs/{job_id}/{action}")
        assert resp.status_code == 200, resp.text
        await asyncio.sleep(2)
    if len(sent) % 2:  # leave it printing
        await asyncio.to_thread(hub.http.post, f"/api/jobs/{job_id}/resume")
    return sent


def state_change_delays(
    sent: list[tuple[str, float]], per_client: list[list[tuple[str, float]]]
) -> list[float]:
    """For each change and each client: its first arrival of that state after the request was sent."""
    delays = []
    for target, at in sent:
        for arrivals in per_client:
            first = next((t for state, t in arrivals if state == target and t >= at), None)
            if first is not None:
                delays.append(first - at)
    return delays


async def run_clients(
    url: str, n: int, seconds: float, pid: int, hub: Hub
) -> tuple[list[float], list[int], float, float, list[float], int]:
    delays: list[float] = []
    counts: list[int] = []
    arrivals: list[list[tuple[str, float]]] = [[] for _ in range(n)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(client(url, delays, counts, stop, arrivals[i])) for i in range(n)]
    await asyncio.sleep(2)  # all connected and settled
    delays.clear()
    cpu0, t0, own0 = cpu_seconds(pid), time.monotonic(), time.process_time()
    sent = await probe_state_changes(hub, seconds)
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    cpu1, t1, own1 = cpu_seconds(pid), time.monotonic(), time.process_time()
    print(f"load generator (the {n} clients, this process): {(own1 - own0) / (t1 - t0):.2f} cores")
    stop.set()
    await asyncio.gather(*tasks)
    changes = state_change_delays(sent, arrivals)
    expected = len(sent) * n
    return delays, counts, (cpu1 - cpu0) / (t1 - t0), t1 - t0, changes, expected


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
            delays, counts, cores, span, changes, expected = asyncio.run(
                run_clients(url, args.clients, args.seconds, pid, hub)
            )
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
    changes.sort()
    c50 = statistics.median(changes) * 1000
    c99 = changes[int(len(changes) * 0.99)] * 1000
    print(f"{'state change (API) -> client, p50 (ms)':40} {c50:10.1f} {'':>10}")
    print(f"{'state change (API) -> client, p99 (ms)':40} {c99:10.1f} {'< 100':>10}")
    print(f"{'  state changes seen / expected':40} {len(changes):>10} {expected:>10}")
    print(f"{'hub CPU (cores)':40} {cores:10.2f} {'< 1':>10}")
    print(f"{'hub peak resident memory (MB)':40} {peak:10.1f} {'< 300':>10}")
    ok = p99 < 100 and c99 < 100 and len(changes) == expected and cores < 1 and peak < 300
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
