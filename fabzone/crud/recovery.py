"""Putting jobs and machines back in their real state when the hub starts after an unclean stop."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from fabzone.crud._base import unit_of_work
from fabzone.crud.jobs import apply_transition
from fabzone.models import Job, Machine, utcnow
from fabzone.states import JobState, MachineState

_BUSY = (MachineState.STARTING, MachineState.RUNNING, MachineState.PAUSED)


@dataclass
class RecoverySummary:
    interrupted: list[str] = field(default_factory=list)  # job ids: were streaming, part on the bed
    requeued: list[str] = field(default_factory=list)  # job ids: were starting, nothing sent
    kept: list[str] = field(default_factory=list)  # job ids: their machine's own host runs them
    machines_awaiting_clear: list[str] = field(default_factory=list)
    machines_idle: list[str] = field(default_factory=list)
    machines_offline: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(vars(self).values())


@unit_of_work
def recover_after_crash(
    session: Session, *, machine_ids: Collection[str] | None = None, reattach: Collection[str] = ()
) -> RecoverySummary:
    """Run once at hub start, before the scheduler and the drivers. Idempotent; one transaction.

    - running/paused jobs -> interrupted (detail: lines_acked as last written by update_progress); their
      machine -> awaiting_clear with a dirty bed: a half-made part is on it.
    - starting jobs -> queued, keeping their place. ASSUMPTION (the coordinator guarantees it): no byte of
      a job is sent before the job is `running` in the database, so a `starting` job made nothing.
      Their machine -> idle (bed unchanged, so awaiting_clear if it was already dirty).
    - starting/running/paused machines left without a job -> offline until their driver reconnects.
    Queued jobs are not touched, so none is lost or duplicated.

    `machine_ids` limits recovery to the machines this hub drives, for several hubs on one PostgreSQL;
    a job whose machine is not in the list is left alone. Default: all machines.

    `reattach`: machines whose own host streams the job (OctoPrint): their running/paused jobs stay as
    they are (and so do the machines) for the driver to reconcile when it connects.
    """
    summary = RecoverySummary()
    scope = None if machine_ids is None else set(machine_ids)
    on_machine = [JobState.STARTING.value, JobState.RUNNING.value, JobState.PAUSED.value]
    stmt = select(Job).where(col(Job.state).in_(on_machine)).order_by(col(Job.id)).with_for_update()
    freed: set[str] = set()
    for job in session.exec(stmt.execution_options(populate_existing=True)).all():
        if scope is not None and job.machine_id not in scope:
            continue
        if job.machine_id is not None:
            freed.add(job.machine_id)
        if job.state != JobState.STARTING and job.machine_id in reattach:
            summary.kept.append(job.id)
            continue
        if job.state == JobState.STARTING:
            detail = {"reason": "hub restarted before the job started"}
            apply_transition(session, job, JobState.QUEUED, detail=detail, bed_touched=False)
            summary.requeued.append(job.id)
        else:
            _interrupt(session, job)
            summary.interrupted.append(job.id)

    machines = select(Machine).order_by(col(Machine.id)).with_for_update()
    now = utcnow()
    for machine in session.exec(machines.execution_options(populate_existing=True)).all():
        if scope is not None and machine.id not in scope:
            continue
        if machine.current_job_id is not None:
            holder = session.get(Job, machine.current_job_id)
            if holder is None or holder.machine_id != machine.id or holder.state not in on_machine:
                machine.current_job_id = None  # a stale pointer would block the machine forever
        if machine.state in _BUSY and machine.current_job_id is None:
            machine.state = MachineState.OFFLINE
            machine.state_reason = "hub restarted"
            machine.updated_at = now
            summary.machines_offline.append(machine.id)
        elif machine.id in freed:
            if machine.state == MachineState.AWAITING_CLEAR:
                summary.machines_awaiting_clear.append(machine.id)
            elif machine.state == MachineState.IDLE:
                summary.machines_idle.append(machine.id)
    session.flush()
    return summary


def _interrupt(session: Session, job: Job) -> None:
    machine = session.get(Machine, job.machine_id) if job.machine_id else None
    if machine is not None and machine.state == MachineState.IDLE:
        # An idle machine holding a running job is a broken row; make the transition legal, then sync.
        machine.state = MachineState.OFFLINE
    # awaiting_clear, not offline: a technician must see the half part now. A machine in error keeps it
    # (the firmware's words); its reset leads to awaiting_clear anyway.
    keep_error = machine is not None and machine.state == MachineState.ERROR
    apply_transition(
        session,
        job,
        JobState.INTERRUPTED,
        detail={"lines_acked": job.lines_acked, "reason": "hub restarted"},
        fields={"error": "the hub stopped while the job was running", "error_code": "job.interrupted"},
        bed_touched=True,
        machine_state=None if keep_error else MachineState.AWAITING_CLEAR,
    )
