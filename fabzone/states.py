"""Job and machine states and the one table of allowed transitions for each (see DESIGN.md)."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    INTERRUPTED = "interrupted"


class MachineState(StrEnum):
    OFFLINE = "offline"
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    AWAITING_CLEAR = "awaiting_clear"
    ERROR = "error"
    MAINTENANCE = "maintenance"


J = JobState
JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    J.PENDING_APPROVAL: frozenset({J.QUEUED, J.REJECTED, J.CANCELLED}),
    # queued -> starting is the scheduler's claim.
    J.QUEUED: frozenset({J.STARTING, J.CANCELLED}),
    # starting -> queued: the machine could not take it (arming timed out, link lost before the
    # first byte) so nothing was made and the job goes back to the queue.
    J.STARTING: frozenset({J.RUNNING, J.QUEUED, J.FAILED, J.CANCELLED}),
    J.RUNNING: frozenset({J.PAUSED, J.COMPLETED, J.FAILED, J.CANCELLED, J.INTERRUPTED}),
    J.PAUSED: frozenset({J.RUNNING, J.FAILED, J.CANCELLED, J.INTERRUPTED}),
    J.INTERRUPTED: frozenset({J.QUEUED, J.FAILED}),
    J.COMPLETED: frozenset(),
    J.FAILED: frozenset(),
    J.CANCELLED: frozenset(),
    J.REJECTED: frozenset(),
}

JOB_FINAL = frozenset(s for s, nxt in JOB_TRANSITIONS.items() if not nxt)
# Jobs that hold a machine.
JOB_ON_MACHINE = frozenset({J.STARTING, J.RUNNING, J.PAUSED})

M = MachineState
MACHINE_TRANSITIONS: dict[MachineState, frozenset[MachineState]] = {
    # Back online: idle if the bed is known clear, awaiting_clear if a part may be on it.
    # offline -> running/paused: a machine whose own host kept printing while the hub could not see it
    # (OctoPrint streams the file itself) comes back with its job.
    M.OFFLINE: frozenset({M.IDLE, M.AWAITING_CLEAR, M.ERROR, M.MAINTENANCE, M.RUNNING, M.PAUSED}),
    M.IDLE: frozenset({M.STARTING, M.OFFLINE, M.ERROR, M.MAINTENANCE}),
    M.STARTING: frozenset({M.RUNNING, M.IDLE, M.OFFLINE, M.ERROR, M.AWAITING_CLEAR}),
    # Every way a job ends leaves something on the bed (a part, a half part, a purge line).
    M.RUNNING: frozenset({M.PAUSED, M.AWAITING_CLEAR, M.OFFLINE, M.ERROR}),
    M.PAUSED: frozenset({M.RUNNING, M.AWAITING_CLEAR, M.OFFLINE, M.ERROR}),
    M.AWAITING_CLEAR: frozenset({M.IDLE, M.OFFLINE, M.ERROR, M.MAINTENANCE}),
    # A technician resets an error; the bed still has to be checked.
    M.ERROR: frozenset({M.AWAITING_CLEAR, M.OFFLINE, M.MAINTENANCE}),
    M.MAINTENANCE: frozenset({M.IDLE, M.AWAITING_CLEAR, M.OFFLINE}),
}

# Machines that may be handed a job.
MACHINE_ACCEPTS_JOBS = frozenset({M.IDLE})


class TransitionError(ValueError):
    """A state change the table does not allow; `code` is stable for the API and the pages."""

    def __init__(self, what: str, current: str, target: str) -> None:
        super().__init__(f"{what} cannot go from {current} to {target}")
        self.code = f"{what}.invalid_transition"
        self.current = current
        self.target = target


def check_job_transition(current: JobState, target: JobState) -> None:
    if target not in JOB_TRANSITIONS[current]:
        raise TransitionError("job", current, target)


def check_machine_transition(current: MachineState, target: MachineState) -> None:
    if current != target and target not in MACHINE_TRANSITIONS[current]:
        raise TransitionError("machine", current, target)
