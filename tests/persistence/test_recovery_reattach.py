"""Recovery keeps jobs whose machine's own host streams them (OctoPrint); the machine mirrors them on reattach."""

from __future__ import annotations

from persist_helpers import MK3S, add_job, add_machines
from sqlalchemy import Engine

from fabzone import crud
from fabzone.scheduler import claim_next
from fabzone.states import JobState, MachineState


def _running(engine: Engine, machine_id: str, *, paused: bool = False) -> str:
    job = add_job(engine, [MK3S])
    claim = claim_next(engine, machine_id=machine_id)
    assert claim is not None and claim[0].id == job.id
    crud.transition_job(engine, job.id, JobState.RUNNING)
    crud.update_progress(engine, job.id, 10)
    if paused:
        crud.transition_job(engine, job.id, JobState.PAUSED)
    return job.id


def test_recovery_keeps_reattachable_jobs(db_engine: Engine) -> None:
    add_machines(db_engine, [("octo", MK3S), ("octo-p", MK3S), ("serial", MK3S)])
    octo, paused, serial = (
        _running(db_engine, "octo"),
        _running(db_engine, "octo-p", paused=True),
        _running(db_engine, "serial"),
    )
    summary = crud.recover_after_crash(db_engine, reattach=["octo", "octo-p"])
    assert sorted(summary.kept) == sorted([octo, paused])
    assert summary.interrupted == [serial]
    for job_id, machine_id, state in ((octo, "octo", JobState.RUNNING), (paused, "octo-p", JobState.PAUSED)):
        job = crud.get_job(db_engine, job_id)
        machine = crud.get_machine(db_engine, machine_id)
        assert job is not None and job.state == state
        assert machine is not None and machine.current_job_id == job_id
        assert machine.state == MachineState(state.value)


def test_reattach_after_outage(db_engine: Engine) -> None:
    add_machines(db_engine, [("octo", MK3S), ("octo-p", MK3S), ("free", MK3S)])
    job_id = _running(db_engine, "octo")
    paused_id = _running(db_engine, "octo-p", paused=True)
    for machine_id in ("octo", "octo-p", "free"):
        crud.machine_offline(db_engine, machine_id, "OctoPrint unreachable")
    # The job is kept while the machine is offline; back, the machine mirrors it again.
    machine, job = crud.machine_reattached(db_engine, "octo")
    assert job is not None and job.id == job_id and machine.state == MachineState.RUNNING
    machine, job = crud.machine_reattached(db_engine, "octo-p")
    assert job is not None and job.id == paused_id and machine.state == MachineState.PAUSED
    machine, job = crud.machine_reattached(db_engine, "free")
    assert job is None and machine.state == MachineState.IDLE
    # It can still end normally.
    ended = crud.job_finished(db_engine, job_id, "completed", lines_acked=20)
    assert ended.state == JobState.COMPLETED
    assert crud.get_machine(db_engine, "octo").state == MachineState.AWAITING_CLEAR  # type: ignore[union-attr]
