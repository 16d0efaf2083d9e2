"""The asyncio Scheduler: wakes on poke, assigns by priority, puts a job back when a start fails."""

from __future__ import annotations

import asyncio

import pytest
from persist_helpers import ENDER, MK3S, add_job, add_machines, finish_cycle
from sqlalchemy import Engine

from fabzone import crud
from fabzone.models import Job, Machine
from fabzone.scheduler import Scheduler
from fabzone.states import JobState, MachineState


@pytest.mark.timeout(30)
async def test_scheduler_assigns_on_poke(db_engine: Engine) -> None:
    add_machines(db_engine, [("m1", MK3S)])
    low = add_job(db_engine, priority=0)
    high = add_job(db_engine, priority=2)
    assigned: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def on_assigned(job: Job, machine: Machine) -> None:
        assert job.state == JobState.STARTING and machine.current_job_id == job.id
        await assigned.put((job.id, machine.id))

    # A long safety interval: only poke() can make the second assignment happen quickly.
    scheduler = Scheduler(db_engine, on_assigned, interval=60)
    await scheduler.start()
    try:
        first = await asyncio.wait_for(assigned.get(), 10)
        assert first == (high.id, "m1")
        await asyncio.to_thread(finish_cycle, db_engine, high.id, "m1")
        scheduler.poke()  # the bed was cleared
        assert await asyncio.wait_for(assigned.get(), 10) == (low.id, "m1")
        other = add_job(db_engine, [ENDER])
        add_machines(db_engine, [("e1", ENDER)])
        scheduler.poke()
        assert await asyncio.wait_for(assigned.get(), 10) == (other.id, "e1")
    finally:
        await scheduler.stop()
    assert scheduler.assigned == 3


@pytest.mark.timeout(30)
async def test_failed_start_goes_back_to_queue(db_engine: Engine) -> None:
    add_machines(db_engine, [("broken", MK3S)])
    job = add_job(db_engine)
    attempted = asyncio.Event()

    async def on_assigned(job: Job, machine: Machine) -> None:
        attempted.set()
        raise RuntimeError("no coordinator for this machine")

    scheduler = Scheduler(db_engine, on_assigned, interval=0.05)
    await scheduler.start()
    try:
        await asyncio.wait_for(attempted.wait(), 10)
    finally:
        await scheduler.stop()
    back = crud.get_job(db_engine, job.id)
    assert back is not None and (back.state, back.machine_id) == (JobState.QUEUED, None)
    machine = crud.get_machine(db_engine, "broken")
    assert machine is not None and machine.state == MachineState.OFFLINE
    assert machine.state_reason is not None and "no coordinator" in machine.state_reason
    assert scheduler.assigned == 1  # offline: not retried in a hot loop
