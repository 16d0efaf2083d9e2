"""Every allowed job transition (and every forbidden one) through crud, each with its JobEvent row."""

from __future__ import annotations

import itertools

import pytest
from persist_helpers import MK3S, add_job, add_machines
from sqlalchemy import Engine

from fabzone import crud
from fabzone.models import Job
from fabzone.scheduler import claim_next
from fabzone.states import JOB_TRANSITIONS, JobState, MachineState, TransitionError

J = JobState
_PRIORITY = itertools.count(1000)


def _job_in(engine: Engine, state: JobState, machine: str = "m1") -> Job:
    """A fresh job driven to `state` the way the hub would get it there."""
    if state == J.PENDING_APPROVAL:
        return add_job(engine, initial_state=J.PENDING_APPROVAL)
    if state in (J.REJECTED,):
        job = add_job(engine, initial_state=J.PENDING_APPROVAL)
        return crud.reject_job(engine, job.id, "no")
    # Ever higher priority: jobs earlier pairs sent back to the queue must not be claimed instead.
    job = add_job(engine, priority=next(_PRIORITY))
    if state == J.QUEUED:
        return job
    if state == J.CANCELLED:
        return crud.cancel_job(engine, job.id)
    claim = claim_next(engine, machine_id=machine)
    assert claim is not None and claim[0].id == job.id
    if state == J.STARTING:
        return claim[0]
    job = crud.transition_job(engine, job.id, J.RUNNING)
    if state == J.RUNNING:
        return job
    if state == J.PAUSED:
        return crud.transition_job(engine, job.id, J.PAUSED)
    outcome = {J.COMPLETED: "completed", J.FAILED: "failed", J.INTERRUPTED: "interrupted"}[state]
    return crud.job_finished(engine, job.id, outcome, lines_acked=10, reason="x")  # type: ignore[arg-type]


def _reset_machine(engine: Engine) -> None:
    machine = crud.get_machine(engine, "m1")
    assert machine is not None
    if machine.state == MachineState.AWAITING_CLEAR:
        crud.clear_bed(engine, "m1")


@pytest.mark.timeout(60)
def test_every_job_transition(db_engine: Engine) -> None:
    add_machines(db_engine, [("m1", MK3S)])
    for source in JobState:
        for target in JobState:
            _reset_machine(db_engine)
            job = _job_in(db_engine, source)
            assert job.state == source
            before = crud.job_events(db_engine, job.id)
            if target in JOB_TRANSITIONS[source]:
                after_job = crud.transition_job(db_engine, job.id, target, detail={"why": "test"})
                assert after_job.state == target
                events = crud.job_events(db_engine, job.id)
                assert len(events) == len(before) + 1
                assert (events[-1].from_state, events[-1].to_state) == (source, target)
                assert events[-1].detail == {"why": "test"}
                assert events[-1].at.tzinfo is not None
            else:
                with pytest.raises(TransitionError) as info:
                    crud.transition_job(db_engine, job.id, target)
                assert info.value.code == "job.invalid_transition"
                assert crud.get_job(db_engine, job.id).state == source  # type: ignore[union-attr]
                assert len(crud.job_events(db_engine, job.id)) == len(before)
            # The machine is consistent with its job after every transition.
            machine = crud.get_machine(db_engine, "m1")
            assert machine is not None
            current = crud.get_job(db_engine, job.id)
            assert current is not None
            if current.state in (J.STARTING, J.RUNNING, J.PAUSED) and current.machine_id == "m1":
                assert machine.current_job_id == job.id
                assert machine.state == MachineState(current.state.value)
            elif machine.current_job_id is not None:
                # The job left the machine; the machine holds the one being set up, never a stale id.
                holder = crud.get_job(db_engine, machine.current_job_id)
                assert holder is not None and holder.state in (J.STARTING, J.RUNNING, J.PAUSED)
            if machine.current_job_id is not None:
                # Leave nothing on m1 for the next pair.
                crud.job_finished(db_engine, machine.current_job_id, "cancelled", lines_acked=0)


def test_first_event_and_timestamps(db_engine: Engine) -> None:
    add_machines(db_engine, [("m1", MK3S)])
    job = add_job(db_engine)
    events = crud.job_events(db_engine, job.id)
    assert [(e.from_state, e.to_state) for e in events] == [(None, J.QUEUED)]
    assert job.queued_at is not None and job.created_at.tzinfo is not None
    assert claim_next(db_engine) is not None
    job = crud.transition_job(db_engine, job.id, J.RUNNING)
    assert job.started_at is not None and job.finished_at is None
    job = crud.job_finished(db_engine, job.id, "completed", lines_acked=100)
    assert job.finished_at is not None and job.progress == 1.0
    assert job.finished_at >= job.started_at >= job.queued_at  # type: ignore[operator]
    events = crud.job_events(db_engine, job.id)
    assert [e.to_state for e in events] == [J.QUEUED, J.STARTING, J.RUNNING, J.COMPLETED]
    assert events[-1].detail == {"lines_acked": 100}
    assert all(e.machine_id == "m1" for e in events[1:])


def test_machine_transitions(db_engine: Engine) -> None:
    add_machines(db_engine, [("m1", MK3S)], online=False)
    assert crud.get_machine(db_engine, "m1").state == MachineState.OFFLINE  # type: ignore[union-attr]
    m = crud.set_machine_state(db_engine, "m1", MachineState.MAINTENANCE, reason="nozzle swap")
    assert (m.state, m.state_reason) == (MachineState.MAINTENANCE, "nozzle swap")
    with pytest.raises(TransitionError):
        crud.set_machine_state(db_engine, "m1", MachineState.RUNNING)
    m = crud.set_machine_state(db_engine, "m1", MachineState.IDLE)
    assert m.state_reason is None
    m = crud.set_machine_state(db_engine, "m1", MachineState.ERROR, reason="Error:Thermal Runaway")
    # error -> idle is not allowed: a reset goes through awaiting_clear, someone looks at the bed.
    with pytest.raises(TransitionError):
        crud.set_machine_state(db_engine, "m1", MachineState.IDLE)
    crud.set_machine_state(db_engine, "m1", MachineState.AWAITING_CLEAR, bed_clear=False)
    # Never idle with a dirty bed, even through set_machine_state.
    with pytest.raises(TransitionError):
        crud.set_machine_state(db_engine, "m1", MachineState.IDLE)
    with pytest.raises(ValueError):
        crud.set_machine_state(db_engine, "m1", MachineState.OFFLINE, state="idle")
    with pytest.raises(crud.NotFoundError):
        crud.set_machine_state(db_engine, "nope", MachineState.OFFLINE)


def test_cancel_approve_reject_requeue_fail(db_engine: Engine) -> None:
    add_machines(db_engine, [("m1", MK3S)])
    laser = add_job(db_engine, initial_state=J.PENDING_APPROVAL)
    assert claim_next(db_engine) is None  # not approved yet
    assert crud.approve_job(db_engine, laser.id, by="tech").state == J.QUEUED
    queued = add_job(db_engine)
    assert crud.cancel_job(db_engine, queued.id).state == J.CANCELLED
    job, _ = claim_next(db_engine)  # type: ignore[misc]
    with pytest.raises(crud.OnMachineError) as info:
        crud.cancel_job(db_engine, job.id)
    assert info.value.code == "job.on_machine"
    crud.transition_job(db_engine, job.id, J.RUNNING)
    assert crud.update_progress(db_engine, job.id, 40) is True
    assert crud.get_job(db_engine, job.id).progress == pytest.approx(0.4)  # type: ignore[union-attr]
    assert crud.update_progress(db_engine, job.id, 50, 200) is True
    assert crud.get_job(db_engine, job.id).progress == pytest.approx(0.25)  # type: ignore[union-attr]
    job = crud.job_finished(db_engine, job.id, "interrupted", lines_acked=55, reason="link lost")
    assert (job.state, job.lines_acked, job.error) == (J.INTERRUPTED, 55, "link lost")
    assert crud.update_progress(db_engine, job.id, 60) is False  # not on a machine any more
    crud.clear_bed(db_engine, "m1", result="bad")
    assert crud.get_job(db_engine, job.id).result == "bad"  # type: ignore[union-attr]
    requeued = crud.requeue_interrupted(db_engine, job.id)
    assert (requeued.state, requeued.lines_acked, requeued.machine_id) == (J.QUEUED, 0, None)
    assert requeued.result is None
    assert requeued.queued_at == job.queued_at  # keeps its place in the queue
    job2, _ = claim_next(db_engine)  # type: ignore[misc]
    assert job2.id == job.id
    crud.transition_job(db_engine, job.id, J.RUNNING)
    crud.job_finished(db_engine, job.id, "interrupted", lines_acked=5)
    failed = crud.fail_interrupted(db_engine, job.id, "technician: filament ran out")
    assert (failed.state, failed.error) == (J.FAILED, "technician: filament ran out")
    with pytest.raises(TransitionError):
        crud.fail_interrupted(db_engine, add_job(db_engine).id, "not interrupted")


def test_return_to_queue_keeps_bed_and_place(db_engine: Engine) -> None:
    add_machines(db_engine, [("m1", MK3S)])
    job = add_job(db_engine)
    claim_next(db_engine)
    back = crud.return_to_queue(db_engine, job.id, reason="arming timed out")
    assert (back.state, back.machine_id, back.queued_at) == (J.QUEUED, None, job.queued_at)
    m = crud.get_machine(db_engine, "m1")
    assert m is not None and (m.state, m.bed_clear, m.current_job_id) == (MachineState.IDLE, True, None)
    claim_next(db_engine)
    crud.return_to_queue(db_engine, job.id, reason="port vanished", machine_state=MachineState.OFFLINE)
    m = crud.get_machine(db_engine, "m1")
    assert m is not None and (m.state, m.state_reason) == (MachineState.OFFLINE, "port vanished")
