"""Nothing lost on a crash: SIGKILL the hub (a real `fabzone serve` process) at different moments."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gcode_samples import prusa_mk3s, write
from tests.support import Hub, SimProcess, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ON_MACHINE = {"starting", "running", "paused"}


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


def check_invariants(hub: Hub, tickets: set[str], in_flight: set[str] = frozenset()) -> dict[str, dict]:
    """What must hold after any restart; returns the jobs by ticket. `in_flight`: names of uploads
    cut off by the kill — their job may exist (stored, answer lost) but at most once each."""
    jobs = hub.jobs()
    by_ticket = {j["ticket"]: j for j in jobs}
    assert len(by_ticket) == len(jobs), "a ticket appears twice"
    assert tickets <= set(by_ticket), f"lost {tickets - set(by_ticket)}"
    extra = [by_ticket[t]["display_name"] for t in set(by_ticket) - tickets]
    assert len(extra) == len(set(extra)) and set(extra) <= in_flight, f"unexpected jobs {extra}"
    machines = hub.machines()
    for machine in machines.values():
        holding = [j for j in jobs if j["machine_id"] == machine["id"] and j["state"] in ON_MACHINE]
        assert len(holding) <= 1, f"{machine['id']} holds {len(holding)} jobs"
    for job in jobs:
        if job["state"] == "interrupted":
            # The part is half made: its machine waits for a technician (or went on after a clear).
            assert job["lines_acked"] is not None
    return by_ticket


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
    tickets = set()
    for i in range(5):
        resp = hub.submit(gcode, name=f"cube {i}")
        assert resp.status_code == 201, resp.text
        tickets.add(resp.json()["ticket"])

    # Wait until both printers are streaming and the database has seen acknowledged lines.
    def two_streaming() -> list[dict] | None:
        streaming = [j for j in hub.jobs() if j["state"] == "running" and (j["lines_acked"] or 0) > 0]
        return streaming if len(streaming) == 2 else None

    running = wait_until(two_streaming, 60, 0.1, "two jobs streaming")
    acked_before = {j["ticket"]: j["lines_acked"] for j in running}
    hub.kill()

    hub.start()
    jobs = check_invariants(hub, tickets)
    for ticket, acked in acked_before.items():
        job = jobs[ticket]
        assert job["state"] == "interrupted", job
        assert job["lines_acked"] >= acked
    machines = hub.machines()
    assert {m["state"] for m in machines.values()} == {"awaiting_clear"}
    # Nothing starts on a bed with a half-made part on it.
    time.sleep(1.0)
    assert [j["state"] for j in hub.jobs() if j["state"] in ON_MACHINE] == []
    queued = [t for t, j in jobs.items() if j["state"] == "queued"]
    assert len(queued) == 3

    # A technician clears one bed and re-queues one interrupted job: printing goes on.
    assert hub.http.post("/api/machines/mk3s-1/clear", json={"result": "bad"}).status_code == 200
    requeue = next(iter(acked_before))
    assert hub.http.post(f"/api/jobs/{requeue}/requeue").status_code == 200
    wait_until(lambda: any(j["state"] == "running" for j in hub.jobs()), 30, 0.1, "a job running again")
    check_invariants(hub, tickets)


def test_repeated_sigkill_at_random_moments(hub: Hub, tmp_path: Path) -> None:
    rng = random.Random(7)
    gcode = write(tmp_path, "small.gcode", prusa_mk3s(layers=8))
    big = write(tmp_path, "big.gcode", prusa_mk3s(layers=4) + "G4 P0\n" * 200_000)
    tickets: set[str] = set()
    for round_no in range(4):
        # Submissions racing the kill: a 201 means the job must survive; a cut-off upload must vanish.
        stop = threading.Event()
        accepted: list[str] = []

        def submit_loop(
            stop: threading.Event = stop, round_no: int = round_no, accepted: list[str] = accepted
        ) -> None:
            while not stop.is_set():
                try:
                    resp = hub.submit(gcode if rng.random() < 0.8 else big, name=f"r{round_no}")
                except httpx.HTTPError:
                    return
                if resp.status_code == 201:
                    accepted.append(resp.json()["ticket"])

        submitter = threading.Thread(target=submit_loop)
        submitter.start()
        time.sleep(rng.uniform(0.2, 2.5))
        hub.kill()
        stop.set()
        submitter.join(timeout=30)
        tickets |= set(accepted)

        hub.start()
        jobs = check_invariants(hub, tickets, in_flight={f"r{round_no}"})
        tickets |= set(jobs)
        # Clear every machine waiting for it and re-queue what was interrupted, as technicians would.
        for machine in hub.machines().values():
            if machine["state"] == "awaiting_clear":
                hub.http.post(f"/api/machines/{machine['id']}/clear")
        for job in hub.jobs():
            if job["state"] == "interrupted":
                assert hub.http.post(f"/api/jobs/{job['id']}/requeue").status_code == 200
    # A cut-off upload leaves no half file that could ever be taken for a job.
    assert list((tmp_path / "data" / "files" / "tmp").glob("*.part")) == []
