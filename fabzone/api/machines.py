"""`/api/machines`: the fleet with live status; clear the bed, emergency stop, reconnect."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from drivers.base import DriverError
from fabzone import crud
from fabzone.api.auth import TechDep
from fabzone.api.deps import HubDep, LangDep, SessionDep, api_error, coordinator_or_404, in_session
from fabzone.states import MachineState, TransitionError
from fabzone.views import machine_public

router = APIRouter(prefix="/api/machines", tags=["machines"])


@router.get("")
def list_machines(hub: HubDep, session: SessionDep) -> list[dict[str, Any]]:
    out = []
    for machine in crud.list_machines(session):
        coordinator = hub.coordinators.get(machine.id)
        live = coordinator.live_status() if coordinator else {"online": False}
        out.append(machine_public(machine) | {"live": live})
    return out


@router.get("/{machine_id}")
def get_machine(machine_id: str, hub: HubDep, session: SessionDep, lang: LangDep) -> dict[str, Any]:
    coordinator = coordinator_or_404(hub, machine_id, lang)
    machine = crud.get_machine(session, machine_id)
    assert machine is not None  # every coordinator's machine has its row from the hub's start
    return machine_public(machine) | {"live": coordinator.live_status()}


class ClearBody(BaseModel):
    result: Literal["good", "bad"] | None = None


@router.post("/{machine_id}/clear")
def clear_bed(
    machine_id: str,
    hub: HubDep,
    session: SessionDep,
    lang: LangDep,
    _tech: TechDep,
    body: ClearBody | None = None,
) -> dict[str, Any]:
    """A technician confirms the bed is empty (and may mark the last part good or bad)."""
    coordinator_or_404(hub, machine_id, lang)
    machine = crud.clear_bed(session, machine_id, result=body.result if body else None)
    hub.bus.publish("machine", machine_public(machine))
    hub.scheduler.poke()
    return machine_public(machine)


@router.post("/{machine_id}/estop")
def emergency_stop(machine_id: str, hub: HubDep, lang: LangDep, _tech: TechDep) -> dict[str, Any]:
    """Emergency stop: straight to the driver (M112 outside every queue); a sync route so nothing on
    the event loop can delay it."""
    coordinator = coordinator_or_404(hub, machine_id, lang)
    try:
        coordinator.emergency_stop()
    except DriverError:
        raise api_error(409, "machine.offline", lang, machine=machine_id) from None
    return {"ok": True}


@router.post("/{machine_id}/reconnect")
async def reconnect(machine_id: str, hub: HubDep, lang: LangDep, _tech: TechDep) -> dict[str, Any]:
    """After a technician power-cycled a halted machine: drop the link and connect again."""
    await coordinator_or_404(hub, machine_id, lang).reconnect()
    return {"ok": True}


@router.post("/{machine_id}/reset")
async def reset_error(machine_id: str, hub: HubDep, lang: LangDep, _tech: TechDep) -> dict[str, Any]:
    """A technician has dealt with an error: the device is told if it needs to be (MQTT `reset`), and
    the machine waits for its bed to be cleared. Only from `error`: an offline machine stays offline
    until it answers (409 `machine.invalid_transition`)."""
    coordinator = coordinator_or_404(hub, machine_id, lang)
    current = await in_session(hub, lambda session: crud.get_machine(session, machine_id))
    if current is not None and current.state != MachineState.ERROR:
        raise TransitionError("machine", current.state, MachineState.AWAITING_CLEAR)
    try:
        machine = await coordinator.reset()
    except DriverError as exc:
        raise api_error(409, "machine.reset_failed", lang, machine=machine_id, reason=str(exc)) from None
    assert machine is not None
    return machine_public(machine)


@router.get("/{machine_id}/temperatures")
def temperatures(
    machine_id: str, hub: HubDep, lang: LangDep, seconds: float = Query(default=600, gt=0, le=3600)
) -> list[dict[str, Any]]:
    """Temperatures of the last `seconds` (at most one sample a second, ten minutes kept), oldest
    first: `[{"t": unix, "T": {"actual", "target"}, "B": {…}}, …]`."""
    return coordinator_or_404(hub, machine_id, lang).temperature_history.since(seconds)


class MaintenanceBody(BaseModel):
    on: bool


@router.post("/{machine_id}/maintenance")
def maintenance(
    machine_id: str, body: MaintenanceBody, hub: HubDep, session: SessionDep, lang: LangDep, _tech: TechDep
) -> dict[str, Any]:
    """A technician takes a machine out of service (it takes no job) or puts it back: idle if it is
    connected with a clear bed, awaiting_clear if something may be on the bed, offline if not connected."""
    coordinator = coordinator_or_404(hub, machine_id, lang)
    machine = crud.get_machine(session, machine_id)
    if machine is None:
        raise api_error(404, "machine.not_found", lang, machine=machine_id)
    if body.on:
        target = MachineState.MAINTENANCE
    elif machine.state != MachineState.MAINTENANCE:
        return machine_public(machine) | {"live": coordinator.live_status()}  # already in service
    elif not coordinator.online:
        target = MachineState.OFFLINE
    elif machine.bed_clear and machine.current_job_id is None:
        target = MachineState.IDLE
    else:
        target = MachineState.AWAITING_CLEAR
    machine = crud.set_machine_state(session, machine_id, target, reason=None)
    body_out = machine_public(machine) | {"live": coordinator.live_status()}
    hub.bus.publish("machine", body_out)
    hub.scheduler.poke()
    return body_out
