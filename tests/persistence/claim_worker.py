"""A hub-like process for the concurrency test: claims jobs from one database until the queue is empty.

Usage: python claim_worker.py DATABASE_URL — prints "ready", waits for a line on stdin (so two workers
start together), then prints the number of jobs it claimed.
"""

from __future__ import annotations

import sys

from persist_helpers import finish_cycle

from fabzone import crud
from fabzone.db import create_db_engine
from fabzone.scheduler import claim_next
from fabzone.states import JobState


def main() -> None:
    engine = create_db_engine(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    claimed = 0
    while True:
        claim = claim_next(engine)
        if claim is None:
            # Nothing fits: either the queue is empty (done) or the other worker holds every machine.
            if not crud.list_jobs(engine, [JobState.QUEUED], limit=1):
                break
            continue
        job, machine = claim
        claimed += 1
        finish_cycle(engine, job.id, machine.id)
    print(claimed, flush=True)
    engine.dispose()


if __name__ == "__main__":
    main()
