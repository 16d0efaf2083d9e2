"""The state-changing operations and queries on jobs and machines; each call is one short transaction.

Every function takes a `Session` (committed by the call) or an `Engine` (a session of its own) first.
Job transitions are checked against `fabzone.states` and written as `JobEvent` rows in the same
transaction. The scheduler's claim lives in `fabzone.scheduler`.
"""

from fabzone.crud._base import NotFoundError, OnMachineError
from fabzone.crud.jobs import (
    apply_transition,
    approve_job,
    cancel_job,
    create_job,
    fail_interrupted,
    job_finished,
    reject_job,
    requeue_interrupted,
    return_to_queue,
    transition_job,
    update_progress,
)
from fabzone.crud.machines import (
    UpsertSummary,
    clear_bed,
    machine_offline,
    machine_online,
    machine_reattached,
    set_machine_state,
    upsert_machines,
)
from fabzone.crud.queries import (
    get_job,
    get_machine,
    job_candidates,
    job_events,
    list_jobs,
    list_machines,
    list_queue,
    normalize_ticket,
    queue_positions,
)
from fabzone.crud.recovery import RecoverySummary, recover_after_crash

__all__ = [
    "NotFoundError",
    "OnMachineError",
    "RecoverySummary",
    "UpsertSummary",
    "apply_transition",
    "approve_job",
    "cancel_job",
    "clear_bed",
    "create_job",
    "fail_interrupted",
    "get_job",
    "get_machine",
    "job_candidates",
    "job_events",
    "job_finished",
    "list_jobs",
    "list_machines",
    "list_queue",
    "machine_offline",
    "machine_online",
    "machine_reattached",
    "normalize_ticket",
    "queue_positions",
    "recover_after_crash",
    "reject_job",
    "requeue_interrupted",
    "return_to_queue",
    "set_machine_state",
    "transition_job",
    "update_progress",
    "upsert_machines",
]
