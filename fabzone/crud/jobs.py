"""Job operations: create, every state transition (with its JobEvent row), finish, cancel, progress."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Float, case, cast, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from fabzone.crud._base import NotFoundError, OnMachineError, lock_job, lock_machine, unit_of_work
from fabzone.models import Job, JobCandidate, JobEvent, Machine, new_ticket, utcnow
from fabzone.states import (
    JOB_FINAL,
    JOB_ON_MACHINE,
    JobState,
    MachineState,
    TransitionError,
    check_job_transition,
    check_machine_transition,
)

Outcome = Literal["completed", "failed", "cancelled", "interrupted"]
FINISH_OUTCOMES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED})
# States a machine may be left in when a job ends with something on the bed: none of them takes a job.
BED_NOT_CLEAR_STATES = frozenset({MachineState.AWAITING_CLEAR, MachineState.ERROR, MachineState.OFFLINE})
_PROTECTED_FIELDS = frozenset({"id", "ticket", "state", "created_at"})
_TICKET_ATTEMPTS = 20


@unit_of_work
def create_job(
    session: Session,
    *,
    display_name: str,
    maker_name: str,
    language: str,
    file_name: str,
    sha256: str,
    file_size: int,
    kind: str,
    analysis: dict[str, Any],
    candidate_profiles: list[str],
    requested_profile: str | None = None,
    priority: int = 0,
    initial_state: JobState = JobState.QUEUED,
    maker_secret_hash: str | None = None,
) -> Job:
    """A new job (queued, or pending_approval for lasers) with its candidate profiles and first JobEvent."""
    initial_state = JobState(initial_state)
    if initial_state not in (JobState.QUEUED, JobState.PENDING_APPROVAL):
        raise ValueError(f"a job starts queued or pending_approval, not {initial_state}")
    if not candidate_profiles:
        raise ValueError("a job needs at least one profile its file was validated for")
    now = utcnow()
    lines_total = int(analysis.get("lines", 0) or 0) if isinstance(analysis, dict) else 0
    for _attempt in range(_TICKET_ATTEMPTS):
        job = Job(
            ticket=new_ticket(),
            display_name=display_name,
            maker_name=maker_name,
            language=language,
            file_name=file_name,
            sha256=sha256,
            file_size=file_size,
            kind=kind,
            analysis=analysis,
            requested_profile=requested_profile,
            maker_secret_hash=maker_secret_hash,
            priority=priority,
            state=initial_state,
            lines_total=lines_total,
            created_at=now,
            updated_at=now,
            queued_at=now if initial_state == JobState.QUEUED else None,
        )
        try:
            # A savepoint, so a ticket collision (unique index) retries without losing the transaction.
            with session.begin_nested():
                session.add(job)
                session.flush()
        except IntegrityError:
            # The savepoint's rollback already dropped the pending row from the session.
            if job in session:
                session.expunge(job)
            continue
        break
    else:  # pragma: no cover - 31^6 codes; only a nearly full table gets here
        raise RuntimeError("could not find a free ticket code")
    for profile_id in dict.fromkeys(candidate_profiles):
        session.add(JobCandidate(job_id=job.id, profile_id=profile_id))
    session.add(JobEvent(job_id=job.id, at=now, from_state=None, to_state=initial_state))
    session.flush()
    return job


def apply_transition(
    session: Session,
    job: Job,
    target: JobState,
    *,
    detail: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
    bed_touched: bool | None = None,
    machine_state: MachineState | None = None,
    machine_reason: str | None = None,
) -> Job:
    """Move a locked job to `target`, keep its machine consistent, write the JobEvent. No commit.

    `bed_touched`: whether the job may have left something on the bed (default: it was running/paused).
    """
    target = JobState(target)
    current = JobState(job.state)
    check_job_transition(current, target)
    now = utcnow()
    for name, value in (fields or {}).items():
        if name in _PROTECTED_FIELDS or name not in Job.model_fields:
            raise ValueError(f"job field {name!r} cannot be set by a transition")
        setattr(job, name, value)
    event_machine = job.machine_id
    job.state = target
    job.updated_at = now
    if target == JobState.QUEUED and job.queued_at is None:
        # Only the first time: a job sent back to the queue keeps its place (its age), it has waited.
        job.queued_at = now
    if target == JobState.RUNNING and job.started_at is None:
        job.started_at = now
    if target in JOB_FINAL:
        job.finished_at = now
    if target == JobState.COMPLETED:
        job.progress = 1.0

    if job.machine_id is not None and current in JOB_ON_MACHINE:
        machine = lock_machine(session, job.machine_id)
        if bed_touched is None:
            bed_touched = current in (JobState.RUNNING, JobState.PAUSED)
        _sync_machine(job, machine, current, target, bed_touched, machine_state, machine_reason, now)
        if target == JobState.QUEUED:
            job.machine_id = None  # back in the pool; the JobEvent keeps the machine it left
    session.add(
        JobEvent(
            job_id=job.id,
            at=now,
            from_state=current,
            to_state=target,
            machine_id=event_machine,
            detail=detail,
        )
    )
    session.flush()
    return job


def _sync_machine(
    job: Job,
    machine: Machine,
    current: JobState,
    target: JobState,
    bed_touched: bool,
    machine_state: MachineState | None,
    reason: str | None,
    now: Any,
) -> None:
    machine.updated_at = now
    if reason is not None:
        machine.state_reason = reason
    if target in JOB_ON_MACHINE:
        # running <-> paused (and starting -> running): the machine mirrors its job.
        mirrored = MachineState(target.value)
        if machine.state in (MachineState.STARTING, MachineState.RUNNING, MachineState.PAUSED):
            check_machine_transition(machine.state, mirrored)
            machine.state = mirrored
        return
    # The job leaves the machine.
    if machine.current_job_id == job.id:
        machine.current_job_id = None
    if bed_touched:
        # Every way a running job ends leaves something on the bed: a part, half a part, a purge line.
        machine.bed_clear = False
        machine.last_job_id = job.id
        wanted = MachineState(machine_state or MachineState.AWAITING_CLEAR)
        if wanted not in BED_NOT_CLEAR_STATES:
            raise ValueError(f"a machine with a part on its bed cannot be {wanted}")
        if machine_state is None and machine.state in (MachineState.OFFLINE, MachineState.ERROR):
            return  # already told (link lost / firmware error); reconnect or reset leads to awaiting_clear
        check_machine_transition(machine.state, wanted)
        machine.state = wanted
        return
    # Nothing was sent (the job was only starting): the bed is as it was.
    wanted = MachineState(
        machine_state or (MachineState.IDLE if machine.bed_clear else MachineState.AWAITING_CLEAR)
    )
    if machine.state == MachineState.STARTING or machine_state is not None:
        check_machine_transition(machine.state, wanted)
        machine.state = wanted


@unit_of_work
def transition_job(
    session: Session, job_id: str, target: JobState, *, detail: dict[str, Any] | None = None, **fields: Any
) -> Job:
    """Any transition of the table; the machine follows (running/paused mirrored, freed when the job leaves).

    Raises TransitionError (not allowed), NotFoundError, ValueError (unknown field).
    """
    return apply_transition(
        session, lock_job(session, job_id), JobState(target), detail=detail, fields=fields
    )


@unit_of_work
def job_finished(
    session: Session,
    job_id: str,
    outcome: Outcome | JobState,
    *,
    lines_acked: int,
    reason: str | None = None,
    error_code: str | None = None,
    machine_state: MachineState = MachineState.AWAITING_CLEAR,
) -> Job:
    """A job ended on its machine: job -> outcome; machine -> awaiting_clear (or error/offline), bed dirty.

    `reason` is stored as the job's error for failed/interrupted and as the machine's state_reason.
    """
    target = JobState(outcome)
    if target not in FINISH_OUTCOMES:
        raise ValueError(f"a finished job is completed, failed, cancelled or interrupted, not {target}")
    job = lock_job(session, job_id)
    fields: dict[str, Any] = {"lines_acked": lines_acked}
    if job.lines_total:
        fields["progress"] = min(1.0, lines_acked / job.lines_total)
    if target in (JobState.FAILED, JobState.INTERRUPTED):
        fields["error"] = reason
        fields["error_code"] = error_code or f"job.{target.value}"
    detail: dict[str, Any] = {"lines_acked": lines_acked}
    if reason:
        detail["reason"] = reason
    return apply_transition(
        session,
        job,
        target,
        detail=detail,
        fields=fields,
        bed_touched=True,
        machine_state=machine_state,
        machine_reason=reason if machine_state != MachineState.AWAITING_CLEAR else None,
    )


@unit_of_work
def cancel_job(session: Session, job_id: str) -> Job:
    """Cancel a job that is not on a machine (pending_approval / queued). On-machine jobs: OnMachineError."""
    job = lock_job(session, job_id)
    if job.state in JOB_ON_MACHINE:
        raise OnMachineError(job.state, JobState.CANCELLED)
    return apply_transition(session, job, JobState.CANCELLED)


@unit_of_work
def approve_job(session: Session, job_id: str, *, by: str | None = None) -> Job:
    """A technician approved a (laser) job: pending_approval -> queued."""
    detail = {"by": by} if by else None
    return apply_transition(session, lock_job(session, job_id), JobState.QUEUED, detail=detail)


@unit_of_work
def reject_job(session: Session, job_id: str, reason: str | None = None) -> Job:
    detail = {"reason": reason} if reason else None
    fields = {"error": reason, "error_code": "job.declined"}
    return apply_transition(
        session, lock_job(session, job_id), JobState.REJECTED, detail=detail, fields=fields
    )


@unit_of_work
def requeue_interrupted(session: Session, job_id: str) -> Job:
    """Technician: run an interrupted job again from the start (it keeps its place in the queue)."""
    job = lock_job(session, job_id)
    detail = {"previous_machine": job.machine_id, "previous_lines_acked": job.lines_acked}
    fields = {
        "machine_id": None,
        "lines_acked": 0,
        "progress": 0.0,
        "started_at": None,
        "error": None,
        "error_code": None,
        "result": None,
    }
    return apply_transition(session, job, JobState.QUEUED, detail=detail, fields=fields)


@unit_of_work
def fail_interrupted(session: Session, job_id: str, reason: str) -> Job:
    """Technician: an interrupted job will not be made again."""
    job = lock_job(session, job_id)
    # Not a general "fail": a job on a machine fails through job_finished; others raise TransitionError.
    if job.state in JOB_ON_MACHINE:
        raise OnMachineError(job.state, JobState.FAILED)
    fields = {"error": reason, "error_code": "job.interrupted_failed"}
    return apply_transition(session, job, JobState.FAILED, detail={"reason": reason}, fields=fields)


@unit_of_work
def update_progress(session: Session, job_id: str, lines_acked: int, lines_total: int | None = None) -> bool:
    """Cheap progress write (no JobEvent, just an UPDATE). False if the job is not running/paused."""
    values: dict[str, Any] = {"lines_acked": lines_acked, "updated_at": utcnow()}
    if lines_total is not None:
        values["lines_total"] = lines_total
        values["progress"] = min(1.0, lines_acked / lines_total) if lines_total > 0 else 0.0
    stmt = (
        update(Job)
        .where(Job.id == job_id)  # type: ignore[arg-type]
        .where(Job.state.in_([JobState.RUNNING.value, JobState.PAUSED.value]))  # type: ignore[attr-defined]
        .values(**values)
    )
    if lines_total is None:
        # Progress from the stored total, computed by the database so no read is needed first.
        stmt = stmt.values(progress=_progress_expr(lines_acked))
    result = session.exec(stmt)  # type: ignore[call-overload]
    if result.rowcount == 0 and session.get(Job, job_id) is None:
        raise NotFoundError("job", job_id)
    return bool(result.rowcount)


def _progress_expr(lines_acked: int) -> Any:
    total = Job.__table__.c.lines_total  # type: ignore[attr-defined]
    return case(
        (total <= 0, 0.0),
        (total <= lines_acked, 1.0),
        else_=cast(lines_acked, Float) / total,
    )


@unit_of_work
def return_to_queue(
    session: Session,
    job_id: str,
    *,
    reason: str | None = None,
    machine_state: MachineState = MachineState.IDLE,
) -> Job:
    """A `starting` job the machine could not take (arming timed out, link lost before the first byte):
    job -> queued, keeping its place; machine -> idle (or offline/error with `reason`), bed unchanged."""
    job = lock_job(session, job_id)
    detail = {"reason": reason} if reason else None
    if job.state != JobState.STARTING:
        raise TransitionError("job", job.state, JobState.QUEUED)
    wanted = MachineState(machine_state)
    return apply_transition(
        session,
        job,
        JobState.QUEUED,
        detail=detail,
        bed_touched=False,
        machine_state=None if wanted == MachineState.IDLE else wanted,
        machine_reason=reason if wanted != MachineState.IDLE else None,
    )
