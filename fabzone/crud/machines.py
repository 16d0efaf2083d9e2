"""Machine operations: the fleet file upsert, state changes, online/offline, and clearing the bed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlmodel import Session, select

from fabzone.crud._base import lock_machine, unit_of_work
from fabzone.models import Job, Machine, utcnow
from fabzone.states import JOB_FINAL, JobState, MachineState, TransitionError, check_machine_transition

# What the fleet file owns; state, bed_clear and current/last job are the hub's, kept across restarts.
FLEET_FIELDS = ("name", "site", "profile_id", "protocol", "connection", "settings")
_SETTABLE = frozenset({*FLEET_FIELDS, "enabled", "bed_clear", "current_job_id", "last_job_id"})
Result = Literal["good", "bad"]


@dataclass
class UpsertSummary:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    # In the database but no longer in the fleet file: disabled, never deleted (jobs refer to them).
    disabled: list[str] = field(default_factory=list)


def _get(spec: Any, name: str, default: Any = None) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(name, default)
    return getattr(spec, name, default)


@unit_of_work
def upsert_machines(
    session: Session, machines_from_fleet: Iterable[Any], *, disable_missing: bool = True
) -> UpsertSummary:
    """Insert or update the fleet's machines (mappings or objects with Machine's field names).

    Keeps state, bed_clear and jobs of existing rows. `enabled` is changed only when the spec gives it.
    New machines start `offline` with a clear bed: their driver brings them online (`machine_online`).
    """
    summary = UpsertSummary()
    seen: set[str] = set()
    now = utcnow()
    for spec in machines_from_fleet:
        machine_id = str(_get(spec, "id"))
        seen.add(machine_id)
        values = {name: _get(spec, name) for name in FLEET_FIELDS if _get(spec, name) is not None}
        enabled = _get(spec, "enabled")
        existing = session.get(Machine, machine_id, with_for_update=True)
        if existing is None:
            values.setdefault("name", machine_id)
            machine = Machine(id=machine_id, state=MachineState.OFFLINE, updated_at=now, **values)
            machine.enabled = True if enabled is None else bool(enabled)
            session.add(machine)
            summary.added.append(machine_id)
            continue
        for name, value in values.items():
            setattr(existing, name, value)
        if enabled is not None:
            existing.enabled = bool(enabled)
        existing.updated_at = now
        summary.updated.append(machine_id)
    # A hub sharing the database with others (disable_missing=False) leaves their machines alone.
    for machine in session.exec(select(Machine).where(Machine.enabled == True)).all():  # noqa: E712
        if disable_missing and machine.id not in seen:
            machine.enabled = False
            machine.updated_at = now
            summary.disabled.append(machine.id)
    session.flush()
    return summary


def _set_state(machine: Machine, target: MachineState, reason: str | None) -> None:
    check_machine_transition(machine.state, target)
    machine.state = target
    machine.state_reason = reason
    machine.updated_at = utcnow()


@unit_of_work
def set_machine_state(
    session: Session, machine_id: str, target: MachineState, *, reason: str | None = None, **fields: Any
) -> Machine:
    """Any machine transition of the table, with `reason` (e.g. the firmware's words) and other fields.

    A machine is never idle with a dirty bed or a job: that would let the scheduler give it a job.
    """
    target = MachineState(target)
    machine = lock_machine(session, machine_id)
    for name, value in fields.items():
        if name not in _SETTABLE:
            raise ValueError(f"machine field {name!r} cannot be set here")
        setattr(machine, name, value)
    if target == MachineState.IDLE and (not machine.bed_clear or machine.current_job_id is not None):
        raise TransitionError("machine", machine.state, target)
    _set_state(machine, target, reason)
    session.flush()
    return machine


@unit_of_work
def machine_online(session: Session, machine_id: str) -> Machine:
    """The driver (re)connected: offline -> idle if the bed is clear, else awaiting_clear. Idempotent."""
    machine = lock_machine(session, machine_id)
    if machine.state == MachineState.OFFLINE:
        clear = machine.bed_clear and machine.current_job_id is None
        _set_state(machine, MachineState.IDLE if clear else MachineState.AWAITING_CLEAR, None)
        session.flush()
    return machine


@unit_of_work
def machine_reattached(session: Session, machine_id: str) -> tuple[Machine, Job | None]:
    """A driver whose host streams jobs itself (OctoPrint) is back: a running/paused job it held stays
    on the machine, which mirrors it again (offline -> running/paused); without one, `machine_online`."""
    machine = lock_machine(session, machine_id)
    job = session.get(Job, machine.current_job_id) if machine.current_job_id else None
    if job is None or job.machine_id != machine_id or job.state not in (JobState.RUNNING, JobState.PAUSED):
        return machine_online(session, machine_id), None
    target = MachineState(job.state.value)
    if machine.state in (MachineState.OFFLINE, MachineState.RUNNING, MachineState.PAUSED):
        _set_state(machine, target, None)
        session.flush()
    return machine, job


@unit_of_work
def machine_offline(session: Session, machine_id: str, reason: str | None = None) -> Machine:
    """The driver lost the machine. A job on it must be ended by the caller (job_finished, 'interrupted')."""
    machine = lock_machine(session, machine_id)
    # Maintenance is a technician's hold: unplugging the machine for the repair must not end it (the
    # next connect would make it idle and give it a job).
    if machine.state not in (MachineState.OFFLINE, MachineState.MAINTENANCE):
        _set_state(machine, MachineState.OFFLINE, reason)
        session.flush()
    elif machine.state == MachineState.OFFLINE and reason and machine.state_reason != reason:
        # Still offline, now for a known reason (e.g. "connecting" -> OctoPrint refused the API key).
        machine.state_reason = reason
        machine.updated_at = utcnow()
        session.flush()
    return machine


@unit_of_work
def clear_bed(session: Session, machine_id: str, *, result: Result | None = None) -> Machine:
    """A technician emptied the bed: awaiting_clear -> idle (offline/maintenance: bed marked clear only).

    `result` ("good"/"bad") is recorded on the job whose part was on the bed.
    """
    if result not in (None, "good", "bad"):
        raise ValueError(f"result is 'good', 'bad' or None, not {result!r}")
    machine = lock_machine(session, machine_id)
    if machine.current_job_id is not None:
        raise TransitionError("machine", machine.state, MachineState.IDLE)
    if machine.state == MachineState.AWAITING_CLEAR:
        _set_state(machine, MachineState.IDLE, None)
    elif machine.state not in (MachineState.OFFLINE, MachineState.MAINTENANCE):
        # idle/error/busy: there is no bed to confirm (error is reset to awaiting_clear first).
        raise TransitionError("machine", machine.state, MachineState.IDLE)
    machine.bed_clear = True
    machine.updated_at = utcnow()
    if result is not None and machine.last_job_id is not None:
        job = session.get(Job, machine.last_job_id, with_for_update=True)
        if job is not None and (job.state in JOB_FINAL or job.state == JobState.INTERRUPTED):
            job.result = result
            job.updated_at = utcnow()
    session.flush()
    return machine
