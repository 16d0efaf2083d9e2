"""Helpers for the persistence tests (also imported by claim_worker.py): fleets, jobs, history checks."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from fabzone import crud
from fabzone.db import open_session
from fabzone.models import Job, JobEvent
from fabzone.states import JOB_FINAL, JobState

MK3S = "prusa-mk3s"
ENDER = "creality-ender3"


def add_machines(engine: Engine, specs: list[tuple[str, str]], *, online: bool = True) -> None:
    """(id, profile) pairs; online -> idle with a clear bed."""
    crud.upsert_machines(
        engine, [{"id": mid, "name": mid.upper(), "profile_id": prof} for mid, prof in specs]
    )
    if online:
        for mid, _ in specs:
            crud.machine_online(engine, mid)


def add_job(engine: Engine, profiles: list[str] | None = None, **kwargs: Any) -> Job:
    params: dict[str, Any] = {
        "display_name": "cube",
        "maker_name": "Marco",
        "language": "it",
        "file_name": "prova-città.gcode",
        "sha256": "0" * 64,
        "file_size": 1234,
        "kind": "printer",
        "analysis": {"lines": 100},
        "candidate_profiles": profiles or [MK3S],
    }
    params.update(kwargs)
    return crud.create_job(engine, **params)


def finish_cycle(engine: Engine, job_id: str, machine_id: str) -> None:
    """What the hub does after a claim, compressed: run, complete, technician clears the bed."""
    crud.transition_job(engine, job_id, JobState.RUNNING)
    crud.job_finished(engine, job_id, "completed", lines_acked=100)
    crud.clear_bed(engine, machine_id, result="good")


def check_history(engine: Engine, n_jobs: int) -> dict[str, int]:
    """Every job claimed exactly once and completed; per machine, claims never overlap. Returns claims/machine."""
    with open_session(engine, readonly=True) as session:
        events = session.exec(select(JobEvent).order_by(col(JobEvent.id))).all()
        jobs = session.exec(select(Job)).all()
    assert len(jobs) == n_jobs
    assert all(j.state == JobState.COMPLETED for j in jobs), {j.state for j in jobs}
    claims: dict[str, int] = defaultdict(int)
    holding: dict[str, str | None] = defaultdict(lambda: None)
    per_machine: dict[str, int] = defaultdict(int)
    for ev in events:
        if ev.to_state == JobState.STARTING:
            claims[ev.job_id] += 1
            assert ev.machine_id is not None
            # On one machine, events are serialised by its row lock, so id order is the real order.
            assert holding[ev.machine_id] is None, f"{ev.machine_id} got {ev.job_id} while holding another"
            holding[ev.machine_id] = ev.job_id
            per_machine[ev.machine_id] += 1
        elif ev.to_state in JOB_FINAL and ev.machine_id is not None:
            assert holding[ev.machine_id] == ev.job_id
            holding[ev.machine_id] = None
    assert len(claims) == n_jobs
    assert set(claims.values()) == {1}, "a job was claimed twice"
    return dict(per_machine)
