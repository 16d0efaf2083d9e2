"""Nothing lost on a crash: SIGKILL the hub (a real `fabzone serve` process) at different moments."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.gcode import iter_commands
from tests.gcode_samples import prusa_mk3s, write
from tests.support import Hub, SimProcess, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ON_MACHINE = {"starting", "running", "paused"}
FINAL = {"completed", "failed", "cancelled"}


def file_lines(path: Path) -> int:
    """The job lines the driver streams (and counts in `lines_acked`): every line carrying a command."""
    return sum(1 for _ in iter_commands(path))


@pytest.fixture
def fleet(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    """Two simulated MK3S and a fleet file; the database is SQLite or a fresh PostgreSQL schema."""
    # The simulators are separate processes, like real printers: they outlive the hub.
    sims = [SimProcess("prusa-mk3s", tmp_path, f"sim{i}", "--speed", "60") for i in range(2)]
    config = tmp_path / "fabzone.toml"
    machines = "\n".join(
        f'[[machines]]\nid = "mk3s-{i + 1}"\nname = "MK3S {i + 1}"\ndriver = "marlin"\n'
        f'port = "{sim.port}"\nprofile = "prusa-mk3s"\n'
        for i, sim in enumerate(sims)
    )
    config.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "data"}"\ndatabase_url = "{db_url}"\n\n{machines}', encoding="utf-8"
    )
    yield config
    for sim in sims:
        sim.stop()


def check_invariants(
    hub: Hub,
    tickets: set[str],
    lines: Mapping[str, int],
    in_flight: Collection[str] = (),
) -> dict[str, dict[str, Any]]:
    """What must hold after any restart; returns the jobs by ticket. `lines`: the file's job lines by
    the job's display name. `in_flight`: names of uploads cut off by the kill — their job may exist
    (stored, answer lost), but one at most: uploads go one at a time."""
    jobs = hub.jobs()
    by_ticket = {j["ticket"]: j for j in jobs}
    assert len(by_ticket) == len(jobs), "a ticket appears twice"
    assert tickets <= set(by_ticket), f"lost {tickets - set(by_ticket)}"
    extra = [by_ticket[t]["display_name"] for t in set(by_ticket) - tickets]
    assert len(extra) <= 1 and set(extra) <= set(in_flight), f"unexpected jobs {extra}"
    machines = hub.machines()
    for machine in machines.values():
        holding = [j for j in jobs if j["machine_id"] == machine["id"] and j["state"] in ON_MACHINE]
        assert len(holding) <= 1, f"{machine['id']} holds {len(holding)} jobs"
    for job in jobs:
        if job["state"] == "interrupted":
            # Progress is written at most once a second, so a job killed in its first second may show 0;
            # never more than the file has (lines_acked counts the file's commands, not the driver's).
            assert 0 <= job["lines_acked"] <= lines[job["display_name"]], job
    return by_ticket


def check_nothing_starts_on(hub: Hub, machine_ids: set[str], seconds: float = 1.0) -> None:
    """A bed with a half-made part on it takes no job until a technician clears it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        machines = hub.machines()
        assert {machines[m]["state"] for m in machine_ids} <= {"awaiting_clear"}, machines
        busy = [j for j in hub.jobs() if j["machine_id"] in machine_ids and j["state"] in ON_MACHINE]
        assert busy == [], busy
        time.sleep(0.2)


def clear_beds(hub: Hub) -> None:
    """A technician takes the part off every machine waiting for it."""
    for machine in hub.machines().values():
        if machine["state"] == "awaiting_clear":
            assert hub.http.post(f"/api/machines/{machine['id']}/clear").status_code == 200


@pytest.fixture
def hub(fleet: Path, tmp_path: Path) -> Iterator[Hub]:
    """The hub under test; stopped at teardown even when the test fails half-way."""
    hub = Hub(["serve", "--config", str(fleet)], tmp_path)
    try:
        yield hub.start()
    finally:
        hub.close()


def test_sigkill_mid_print_then_restart(hub: Hub, tmp_path: Path) -> None:
    gcode = write(tmp_path, "cube.gcode", prusa_mk3s(layers=40))
    total = file_lines(gcode)
    tickets = set()
    for i in range(5):
        resp = hub.submit(gcode, name=f"cube {i}")
        assert resp.status_code == 201, resp.text
        tickets.add(resp.json()["ticket"])

    # Wait until both printers are streaming and the database has seen acknowledged lines.
    def two_streaming() -> list[dict[str, Any]]:
        streaming = [j for j in hub.jobs() if j["state"] == "running" and (j["lines_acked"] or 0) > 0]
        return streaming if len(streaming) == 2 else []

    running = wait_until(two_streaming, 60, 0.1, "two jobs streaming")
    acked_before = {j["ticket"]: j["lines_acked"] for j in running}
    hub.kill()

    hub.start()
    jobs = check_invariants(hub, tickets, {f"cube {i}": total for i in range(5)})
    machines = hub.machines()
    for ticket, acked in acked_before.items():
        job = jobs[ticket]
        assert job["state"] == "interrupted", job
        # What the database had seen before the kill, or a little more; never past the file's end.
        assert 0 < acked <= job["lines_acked"] <= total, (acked, job)
        assert machines[job["machine_id"]]["state"] == "awaiting_clear"  # the half-made part is on it
    assert {m["state"] for m in machines.values()} == {"awaiting_clear"}
    # Nothing starts on a bed with a half-made part on it.
    check_nothing_starts_on(hub, set(machines))
    queued = [t for t, j in jobs.items() if j["state"] == "queued"]
    assert len(queued) == 3

    # A technician clears one bed and re-queues one interrupted job: printing goes on, on that machine.
    assert hub.http.post("/api/machines/mk3s-1/clear", json={"result": "bad"}).status_code == 200
    requeue = next(iter(acked_before))
    assert hub.http.post(f"/api/jobs/{requeue}/requeue").status_code == 200
    wait_until(
        lambda: any(j["state"] == "running" and j["machine_id"] == "mk3s-1" for j in hub.jobs()),
        30,
        0.1,
        "a job running again on the cleared machine",
    )
    assert hub.machines()["mk3s-2"]["state"] == "awaiting_clear"
    check_invariants(hub, tickets, {f"cube {i}": total for i in range(5)})


def test_repeated_sigkill_at_random_moments(hub: Hub, tmp_path: Path) -> None:
    rng = random.Random(7)
    gcode = write(tmp_path, "small.gcode", prusa_mk3s(layers=40))  # ~3 s of streaming at --speed 60
    big = write(tmp_path, "big.gcode", prusa_mk3s(layers=4) + "G4 P0\n" * 200_000)
    lines: dict[str, int] = {}
    tickets: set[str] = set()
    streaming_hits = 0

    def streaming() -> list[dict[str, Any]]:
        clear_beds(hub)  # jobs that ended meanwhile: the technicians take the parts
        # The database's progress lags the printer by up to a second: the live view says how far the
        # job really is, and it must be well before the end, so it cannot finish before the kill.
        live = {m["live"]["job_id"]: m["live"]["lines_acked"] for m in hub.machines().values()}
        return [
            j
            for j in hub.jobs()
            if j["state"] == "running"
            and j["lines_acked"] > 0
            and live.get(j["id"], 1 << 30) < lines[j["display_name"]] // 2
        ]

    for round_no in range(4):
        names = {gcode: f"r{round_no}", big: f"r{round_no} big"}
        lines.update({names[gcode]: file_lines(gcode), names[big]: file_lines(big)})
        # Submissions racing the kill: a 201 means the job must survive; a cut-off upload must vanish.
        stop = threading.Event()
        accepted: list[str] = []

        def submit_loop(
            stop: threading.Event = stop, names: dict[Path, str] = names, accepted: list[str] = accepted
        ) -> None:
            while not stop.is_set():
                path = gcode if rng.random() < 0.8 else big
                try:
                    resp = hub.submit(path, name=names[path])
                except httpx.HTTPError:
                    return
                if resp.status_code == 201:
                    accepted.append(resp.json()["ticket"])

        submitter = threading.Thread(target=submit_loop)
        submitter.start()
        aimed = round_no % 2 == 1
        if aimed:
            # This kill must land while a job streams: once the database shows its progress.
            wait_until(streaming, 60, 0.05, "a job streaming")
        else:
            time.sleep(rng.uniform(0.2, 2.5))
        before = {j["ticket"]: j for j in hub.jobs()}
        hub.kill()
        stop.set()
        submitter.join(timeout=30)
        tickets |= set(accepted)

        hub.start()
        jobs = check_invariants(hub, tickets, lines, in_flight=set(names.values()))
        tickets |= set(jobs)
        # Ended jobs stay as they were; a job streaming at the kill is interrupted with at least the
        # progress seen before it (or, just before the kill, finished).
        assert set(before) <= set(jobs), f"lost {set(before) - set(jobs)}"
        hits = 0
        for ticket, old in before.items():
            new = jobs[ticket]
            if old["state"] in FINAL | {"interrupted"}:
                assert (new["state"], new["lines_acked"]) == (old["state"], old["lines_acked"]), (old, new)
            elif old["state"] in ("running", "paused"):
                assert new["state"] in {"interrupted", *FINAL}, (old, new)
                if new["state"] == "interrupted":
                    assert old["lines_acked"] <= new["lines_acked"], (old, new)
                    hits += old["lines_acked"] > 0
        if aimed:
            assert hits >= 1, f"the kill missed the streaming job: {before}"
        streaming_hits += hits
        # Every bed with a half-made part waits for a technician, and nothing starts on it meanwhile;
        # nothing failed, so no machine is in error.
        dirty = {j["machine_id"] for j in jobs.values() if j["state"] == "interrupted"}
        check_nothing_starts_on(hub, dirty)
        states = {m["id"]: m["state"] for m in hub.machines().values()}
        assert set(states.values()) <= {"offline", "idle", "starting", "running", "awaiting_clear"}, states
        # Clear every machine waiting for it and re-queue what was interrupted, as technicians would.
        clear_beds(hub)
        for job in hub.jobs():
            if job["state"] == "interrupted":
                assert hub.http.post(f"/api/jobs/{job['id']}/requeue").status_code == 200
    assert streaming_hits >= 2
    # A cut-off upload leaves no half file that could ever be taken for a job.
    assert list((tmp_path / "data" / "files" / "tmp").glob("*.part")) == []
