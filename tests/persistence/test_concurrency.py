"""Concurrent claims from threads and from two real processes: no job given twice, no machine doubly busy."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from persist_helpers import ENDER, MK3S, add_job, add_machines, check_history, finish_cycle
from sqlalchemy import Engine

from fabzone.scheduler import claim_next

WORKER = Path(__file__).with_name("claim_worker.py")


def _fleet(engine: Engine, n_machines: int, n_jobs: int) -> None:
    add_machines(engine, [(f"m{i:02d}", MK3S if i % 2 else ENDER) for i in range(n_machines)])
    for i in range(n_jobs):
        profiles = [MK3S, ENDER] if i % 3 == 0 else [MK3S] if i % 3 == 1 else [ENDER]
        add_job(engine, profiles, priority=i % 4)


@pytest.mark.timeout(60)
def test_two_processes_claim_each_job_once(db_engine: Engine, db_url: str) -> None:
    n_jobs, n_machines = 200, 20
    _fleet(db_engine, n_machines, n_jobs)
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:  # both start claiming at the same moment
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        counts = []
        for proc in procs:
            out, _ = proc.communicate(timeout=50)
            assert proc.returncode == 0
            counts.append(int(out.strip()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert sum(counts) == n_jobs
    assert min(counts) > 0, f"one worker never claimed anything: {counts} — no contention was tested"
    per_machine = check_history(db_engine, n_jobs)
    assert len(per_machine) == n_machines


@pytest.mark.timeout(60)
def test_threads_claim_each_job_once(db_engine: Engine) -> None:
    n_jobs, n_machines = 100, 10
    _fleet(db_engine, n_machines, n_jobs)
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    counts: list[int] = []

    def worker() -> None:
        claimed = 0
        try:
            start.wait()
            while (claim := claim_next(db_engine)) is not None or _queued_left(db_engine):
                if claim is not None:
                    claimed += 1
                    finish_cycle(db_engine, claim[0].id, claim[1].id)
        except BaseException as exc:
            errors.append(exc)
        counts.append(claimed)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=50)
    assert not errors, errors
    assert sum(counts) == n_jobs
    check_history(db_engine, n_jobs)


def _queued_left(engine: Engine) -> bool:
    from fabzone import crud
    from fabzone.states import JobState

    return bool(crud.list_jobs(engine, [JobState.QUEUED], limit=1))
