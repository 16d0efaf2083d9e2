"""Shared plumbing for the operations: one transaction per call, row locks, not-found errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session, select

from fabzone.db import open_session
from fabzone.models import Job, Machine
from fabzone.states import TransitionError

P = ParamSpec("P")
R = TypeVar("R")

Bind = Session | Engine


class NotFoundError(LookupError):
    """No job / machine with that id; `code` is stable for the API."""

    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"no {what} {key!r}")
        self.code = f"{what}.not_found"
        self.key = key


class OnMachineError(TransitionError):
    """The job is on a machine: the driver must stop it first (then `job_finished(..., 'cancelled')`)."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__("job", current, target)
        self.code = "job.on_machine"


def unit_of_work(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Bind, P], R]:
    """Run `fn` as one short transaction: commit on success, roll back on any error.

    Accepts a Session (committed here; its objects are not expired so results stay readable without
    reopening a transaction, which on SQLite would hold the write lock) or an Engine (own session).
    """

    @functools.wraps(fn)
    def wrapper(bind: Bind, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if isinstance(bind, Session):
            return _run(bind, fn, *args, **kwargs)
        with open_session(bind) as session:
            return _run(session, fn, *args, **kwargs)

    return wrapper


def _run(session: Session, fn: Callable[..., R], *args: object, **kwargs: object) -> R:
    try:
        result = fn(session, *args, **kwargs)
        expire, session.expire_on_commit = session.expire_on_commit, False
        try:
            session.commit()
        finally:
            session.expire_on_commit = expire
        return result
    except BaseException:
        session.rollback()
        raise


def read_only(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Bind, P], R]:
    """A query: with an Engine it gets a deferred (non-locking on SQLite) session of its own."""

    @functools.wraps(fn)
    def wrapper(bind: Bind, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if isinstance(bind, Session):
            return fn(bind, *args, **kwargs)
        # close() ends the transaction without expiring the objects (rollback() would expire them).
        with open_session(bind, readonly=True) as session:
            return fn(session, *args, **kwargs)

    return wrapper


# Row locks. On PostgreSQL FOR UPDATE makes concurrent hubs queue on the row; on SQLite the clause is not
# rendered and BEGIN IMMEDIATE already serialises writers. populate_existing: a row the session saw
# earlier is re-read, so a check never runs against a stale copy.
def lock_job(session: Session, job_id: str) -> Job:
    stmt = select(Job).where(Job.id == job_id).with_for_update().execution_options(populate_existing=True)
    job = session.exec(stmt).first()
    if job is None:
        raise NotFoundError("job", job_id)
    return job


def lock_machine(session: Session, machine_id: str) -> Machine:
    stmt = (
        select(Machine)
        .where(Machine.id == machine_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    machine = session.exec(stmt).first()
    if machine is None:
        raise NotFoundError("machine", machine_id)
    return machine
