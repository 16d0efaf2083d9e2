"""JSON views of jobs and machines: what the API answers and what the event bus publishes."""

from __future__ import annotations

from typing import Any

from drivers.base import DriverStatus
from drivers.profiles import ProfileError, get_profile
from fabzone.models import Job, Machine
from fabzone.states import JobState, MachineState


def _profile_kind(profile_id: str) -> str | None:
    try:
        return get_profile(profile_id).kind
    except ProfileError:
        return None  # a machine row whose profile file was removed


def machine_public(machine: Machine) -> dict[str, Any]:
    return {
        "id": machine.id,
        "name": machine.name,
        "profile": machine.profile_id,
        "kind": _profile_kind(machine.profile_id),
        "state": MachineState(machine.state).value,
        "state_reason": machine.state_reason,
        "current_job_id": machine.current_job_id,
        "bed_clear": machine.bed_clear,
    }


def job_public(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "ticket": job.ticket,
        "display_name": job.display_name,
        "maker_name": job.maker_name,
        "file_name": job.file_name,
        "kind": job.kind,
        "language": job.language,
        "state": JobState(job.state).value,
        "machine_id": job.machine_id,
        "progress": job.progress,
        "lines_acked": job.lines_acked,
        "lines_total": job.lines_total,
        "error_code": job.error_code,
        "error": job.error,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def live_view(status: DriverStatus, online: bool, arming: dict[str, Any] | None) -> dict[str, Any]:
    """What a machine's driver says right now (the `live` part of a machine, and `status` events)."""
    return {
        "online": online,
        "driver_state": status.state.value,
        "job_id": status.job_id,
        "lines_acked": status.lines_acked,
        "lines_total": status.lines_total,
        "progress": status.progress,
        "temperatures": {k: {"actual": t.actual, "target": t.target} for k, t in status.temperatures.items()},
        "message": status.message,
        "firmware": status.firmware,
        "arming": arming,
        # Protocol-specific live figures (a laser's power, position, door): shown as they come.
        "extra": status.extra,
    }
