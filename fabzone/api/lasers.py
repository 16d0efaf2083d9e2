"""Laser safety endpoints: approve or reject a laser job, arm a laser at the machine, unlock after an alarm."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from drivers.base import DriverError, NotReady
from fabzone import crud
from fabzone.api.auth import TechDep
from fabzone.api.deps import (
    HubDep,
    LangDep,
    SessionDep,
    api_error,
    coordinator_or_404,
    job_or_404,
)
from fabzone.coordinator import NotAwaitingArm
from fabzone.views import job_public, machine_public

router = APIRouter(tags=["lasers"])


class RejectBody(BaseModel):
    reason: str = Field(default="", max_length=500)


@router.post("/api/jobs/{job_ref}/approve")
def approve_job(
    job_ref: str, hub: HubDep, session: SessionDep, lang: LangDep, _tech: TechDep
) -> dict[str, Any]:
    """A technician looked at a laser job (material, design) and lets it into the queue."""
    job = job_or_404(session, job_ref)
    job = crud.approve_job(session, job.id)
    hub.bus.publish("job", job_public(job))
    hub.job_queued()
    return job_public(job)


@router.post("/api/jobs/{job_ref}/reject")
def reject_job(
    job_ref: str,
    hub: HubDep,
    session: SessionDep,
    lang: LangDep,
    _tech: TechDep,
    body: RejectBody | None = None,
) -> dict[str, Any]:
    """The maker sees the reason on the ticket page."""
    job = job_or_404(session, job_ref)
    job = crud.reject_job(session, job.id, (body.reason if body else "") or None)
    hub.bus.publish("job", job_public(job))
    return job_public(job)


@router.post("/api/machines/{machine_id}/arm")
async def arm_laser(machine_id: str, hub: HubDep, lang: LangDep, _tech: TechDep) -> dict[str, Any]:
    """At the machine: operator present, lid closed, extraction on. Only now does the job's first byte go
    out."""
    coordinator = coordinator_or_404(hub, machine_id, lang)
    try:
        coordinator.arm()  # async route: on the hub's loop, where the gate's event lives
    except NotAwaitingArm:
        raise api_error(409, "machine.not_awaiting_arm", lang, machine=machine_id) from None
    return {"ok": True}


@router.post("/api/machines/{machine_id}/unlock")
async def unlock_laser(machine_id: str, hub: HubDep, lang: LangDep, _tech: TechDep) -> dict[str, Any]:
    """After an alarm: GRBL `$X`; the machine then waits for its bed to be checked and cleared."""
    coordinator = coordinator_or_404(hub, machine_id, lang)
    try:
        machine = await coordinator.unlock()
    except NotReady as exc:
        # The driver says why (laser mode off, a work offset, a job running): the technician must read
        # it, not "not connected".
        raise api_error(409, "machine.not_ready", lang, machine=machine_id, reason=str(exc)) from None
    except DriverError as exc:
        if coordinator.driver is None:
            raise api_error(409, "machine.offline", lang, machine=machine_id) from None
        raise api_error(409, "machine.not_ready", lang, machine=machine_id, reason=str(exc)) from None
    return machine_public(machine) if machine else {"ok": True}
