"""The scheduler: the race-free claim of a queued job for an idle compatible machine, and its asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection

from sqlalchemy import Engine, and_, exists
from sqlmodel import Session, col, select

from fabzone.crud._base import Bind, unit_of_work
from fabzone.crud.jobs import apply_transition, return_to_queue
from fabzone.crud.queries import QUEUE_ORDER
from fabzone.models import Job, JobCandidate, Machine, utcnow
from fabzone.states import JobState, MachineState, check_machine_transition

log = logging.getLogger(__name__)

# Jobs tried in one claim whose every compatible machine was locked by a concurrent claimer (PostgreSQL);
# past this the claim gives up and the next wake-up tries again.
_MAX_SKIPPED_JOBS = 50


def _machine_available(machine_id: str | None, machine_ids: Collection[str] | None) -> list:  # type: ignore[type-arg]
    # Never a machine whose bed is not clear, that is disabled, or that already holds a job.
    conditions = [
        Machine.state == MachineState.IDLE,
        Machine.enabled == True,  # noqa: E712
        Machine.bed_clear == True,  # noqa: E712
        col(Machine.current_job_id).is_(None),
    ]
    if machine_id is not None:
        conditions.append(Machine.id == machine_id)
    if machine_ids is not None:
        # Several hubs on one database: each claims only for the machines it drives.
        conditions.append(col(Machine.id).in_(list(machine_ids)))
    return conditions


@unit_of_work
def _claim(
    session: Session, machine_id: str | None, machine_ids: Collection[str] | None
) -> tuple[Job, Machine] | None:
    available = _machine_available(machine_id, machine_ids)
    # Compatibility is a join on JobCandidate (portable SQL, no JSON operators).
    has_free_machine = exists(
        select(JobCandidate.job_id)
        .join(Machine, col(Machine.profile_id) == col(JobCandidate.profile_id))
        .where(col(JobCandidate.job_id) == col(Job.id), *available)
    )
    skipped: list[str] = []
    for _ in range(_MAX_SKIPPED_JOBS):
        job_query = select(Job).where(Job.state == JobState.QUEUED, has_free_machine)
        if skipped:
            job_query = job_query.where(col(Job.id).not_in(skipped))
        # PostgreSQL: lock the job row, skipping rows another hub is claiming right now. In READ COMMITTED
        # a locked row is re-checked against the WHERE on its latest version, so a job another claim just
        # moved to `starting` is passed over, never returned. SQLite renders no FOR UPDATE: the whole
        # transaction runs under BEGIN IMMEDIATE, one writer at a time.
        job_query = (
            job_query.order_by(*QUEUE_ORDER)
            .limit(1)
            .with_for_update(skip_locked=True, of=Job.__table__)  # type: ignore[attr-defined]
            .execution_options(populate_existing=True)
        )
        job = session.exec(job_query).first()
        if job is None:
            return None
        machine_query = (
            select(Machine)
            .join(JobCandidate, col(JobCandidate.profile_id) == col(Machine.profile_id))
            .where(JobCandidate.job_id == job.id, and_(*available))
            # Longest-idle machine first, spreading the wear.
            .order_by(col(Machine.updated_at), col(Machine.id))
            .limit(1)
            .with_for_update(skip_locked=True, of=Machine.__table__)  # type: ignore[attr-defined]
            .execution_options(populate_existing=True)
        )
        machine = session.exec(machine_query).first()
        if machine is None:
            skipped.append(job.id)  # its machines are being claimed by another hub: try the next job
            continue
        check_machine_transition(machine.state, MachineState.STARTING)
        apply_transition(
            session, job, JobState.STARTING, fields={"machine_id": machine.id}, detail={"machine": machine.id}
        )
        machine.state = MachineState.STARTING
        machine.state_reason = None
        machine.current_job_id = job.id
        machine.updated_at = utcnow()
        session.flush()
        return job, machine
    return None


def claim_next(
    bind: Bind, *, machine_id: str | None = None, machine_ids: Collection[str] | None = None
) -> tuple[Job, Machine] | None:
    """In one transaction: the highest-priority, oldest queued job that an idle, enabled, bed-clear machine
    can make (JobCandidate), both set to `starting`, with a JobEvent. None when nothing fits.

    Race-free across threads and processes: `FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE`
    on SQLite. A job is never given twice; a machine never holds two jobs.
    """
    return _claim(bind, machine_id, machine_ids)


def claim_all(
    bind: Bind, *, machine_id: str | None = None, machine_ids: Collection[str] | None = None
) -> list[tuple[Job, Machine]]:
    """claim_next until it returns None (each claim its own transaction)."""
    if isinstance(bind, Session):
        bind = bind.get_bind()  # type: ignore[assignment]
    claims = []
    while (claim := claim_next(bind, machine_id=machine_id, machine_ids=machine_ids)) is not None:
        claims.append(claim)
    return claims


OnAssigned = Callable[[Job, Machine], Awaitable[None]]


class Scheduler:
    """Wakes on `poke()` (a job queued, a machine idle) and every `interval` seconds as a safety net, and
    hands every claim to `on_assigned` (which should return quickly: it starts the job on the machine's
    coordinator). If `on_assigned` raises, the job goes back to the queue (keeping its place) and the
    machine offline with the error, so one broken machine cannot swallow the queue."""

    def __init__(
        self,
        engine: Engine,
        on_assigned: OnAssigned,
        *,
        interval: float = 2.0,
        machine_ids: Collection[str] | None = None,
    ) -> None:
        self.engine = engine
        self.machine_ids = list(machine_ids) if machine_ids is not None else None
        self.on_assigned = on_assigned
        self.interval = interval
        self.assigned = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Ask for a scheduling pass soon. Call from the event loop."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="fabzone-scheduler")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the claim in progress (a thread cannot be cancelled halfway), then end the loop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run_once(self) -> int:
        """Claim until nothing fits; returns how many jobs were assigned."""
        count = 0
        while not self._stopping:
            claim = await asyncio.to_thread(claim_next, self.engine, machine_ids=self.machine_ids)
            if claim is None:
                break
            job, machine = claim
            count += 1
            self.assigned += 1
            try:
                await self.on_assigned(job, machine)
            except Exception as exc:
                log.exception("could not start job %s on machine %s; back to the queue", job.id, machine.id)
                await asyncio.to_thread(
                    return_to_queue,
                    self.engine,
                    job.id,
                    reason=f"could not start: {exc}",
                    machine_state=MachineState.OFFLINE,
                )
        return count

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before the pass: a poke that arrives while claiming causes one more pass.
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                # The database may be restarting; the safety wake retries.
                log.exception("scheduling pass failed")
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
