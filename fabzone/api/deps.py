"""Shared request dependencies: the hub, a database session, the caller's language, error replies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from sqlmodel import Session

from fabzone import crud, i18n
from fabzone.coordinator import MachineCoordinator
from fabzone.crud import NotFoundError
from fabzone.hub import Hub
from fabzone.models import Job


def get_hub(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


T = TypeVar("T")


def get_session(hub: Annotated[Hub, Depends(get_hub)]) -> Iterator[Session]:
    with hub.session() as session:
        yield session


async def in_session(hub: Hub, fn: Callable[[Session], T]) -> T:
    """`fn(session)` in a worker thread, for async endpoints. Never on the event loop: SQLite's write
    lock (BEGIN IMMEDIATE, db.py) may be held by a sync endpoint's session, whose closing the loop
    itself schedules, so waiting for it there froze the hub until busy_timeout ("database is locked")."""

    def work() -> T:
        with hub.session() as session:
            return fn(session)

    return await asyncio.to_thread(work)


def pick_language(explicit: str | None, accept_language: str | None) -> str:
    """`it`, `zh` or `en`: the form field wins, then the browser's Accept-Language."""
    for candidate in [explicit or "", *(accept_language or "").split(",")]:
        base = candidate.split(";")[0].strip().replace("_", "-").split("-")[0].lower()
        if base in i18n.LANGUAGES:
            return base
    return i18n.DEFAULT_LANGUAGE


def request_language(request: Request) -> str:
    return pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def job_or_404(session: Session, job_ref: str) -> Job:
    """The job by id or ticket code; a NotFoundError becomes 404 `job.not_found` (errors.py)."""
    job = crud.get_job(session, job_ref)
    if job is None:
        raise NotFoundError("job", job_ref)
    return job


def coordinator_or_404(hub: Hub, machine_id: str, lang: str) -> MachineCoordinator:
    """The coordinator of a machine this hub drives; 404 `machine.not_found` otherwise (another hub's
    machine on a shared database included)."""
    coordinator = hub.coordinators.get(machine_id)
    if coordinator is None:
        raise api_error(404, "machine.not_found", lang, machine=machine_id)
    return coordinator


def api_error(status: int, code: str, lang: str = "en", **params: Any) -> HTTPException:
    """An error with a stable code (pages translate it) and a message in the caller's language."""
    from fabzone.i18n import message

    return HTTPException(
        status, detail={"code": code, "message": message(code, lang, params), "params": params}
    )


HubDep = Annotated[Hub, Depends(get_hub)]
SessionDep = Annotated[Session, Depends(get_session)]
LangDep = Annotated[str, Depends(request_language)]
