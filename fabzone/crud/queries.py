"""Read-only queries for the API, the pages and the CLI."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import nulls_last, or_
from sqlmodel import Session, col, select

from fabzone.crud._base import read_only
from fabzone.models import TICKET_ALPHABET, Job, JobCandidate, JobEvent, Machine
from fabzone.states import JobState

# The claim's order: priority (higher first), then age in the queue; id breaks exact ties deterministically.
QUEUE_ORDER = (col(Job.priority).desc(), nulls_last(col(Job.queued_at).asc()), col(Job.id).asc())


def normalize_ticket(text: str) -> str:
    """What a maker types (spaces, dashes, lower case) -> the stored ticket code."""
    return "".join(ch for ch in text.upper() if ch in TICKET_ALPHABET)


@read_only
def get_job(session: Session, id_or_ticket: str) -> Job | None:
    job = session.get(Job, id_or_ticket)
    if job is None:
        ticket = normalize_ticket(id_or_ticket)
        if ticket:
            job = session.exec(select(Job).where(Job.ticket == ticket)).first()
    return job


@read_only
def list_jobs(
    session: Session,
    states: Iterable[JobState] | None = None,
    *,
    machine_id: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Job]:
    """Newest first. `since`: jobs created or finished at or after that time (history pages)."""
    stmt = select(Job)
    if states is not None:
        stmt = stmt.where(col(Job.state).in_([JobState(s).value for s in states]))
    if machine_id is not None:
        stmt = stmt.where(Job.machine_id == machine_id)
    if since is not None:
        stmt = stmt.where(or_(col(Job.created_at) >= since, col(Job.finished_at) >= since))
    stmt = stmt.order_by(col(Job.created_at).desc(), col(Job.id)).offset(offset).limit(limit)
    return list(session.exec(stmt).all())


@read_only
def list_queue(session: Session) -> list[Job]:
    """Queued jobs in the order the scheduler considers them."""
    stmt = select(Job).where(Job.state == JobState.QUEUED).order_by(*QUEUE_ORDER)
    return list(session.exec(stmt).all())


@read_only
def queue_positions(session: Session) -> dict[str, int]:
    """job id -> 1-based place in the queue (priority, then age). A job may start earlier when a machine
    only it fits becomes free; this is the order the scheduler tries."""
    stmt = select(Job.id).where(Job.state == JobState.QUEUED).order_by(*QUEUE_ORDER)
    return {job_id: n for n, job_id in enumerate(session.exec(stmt).all(), start=1)}


@read_only
def job_candidates(session: Session, job_id: str) -> list[str]:
    stmt = select(JobCandidate.profile_id).where(JobCandidate.job_id == job_id)
    return sorted(session.exec(stmt).all())


@read_only
def job_events(session: Session, job_id: str) -> list[JobEvent]:
    stmt = select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))
    return list(session.exec(stmt).all())


@read_only
def get_machine(session: Session, machine_id: str) -> Machine | None:
    return session.get(Machine, machine_id)


@read_only
def list_machines(session: Session, *, enabled_only: bool = False) -> list[Machine]:
    stmt = select(Machine)
    if enabled_only:
        stmt = stmt.where(Machine.enabled == True)  # noqa: E712
    return list(session.exec(stmt.order_by(col(Machine.id))).all())
