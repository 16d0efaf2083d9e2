"""One coordinator per machine (Home Assistant's pattern): owns the driver, its availability and status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from drivers.base import (
    ConnectionChanged,
    Driver,
    DriverError,
    DriverEvent,
    DriverState,
    DriverStatus,
    JobEnded,
    StatusChanged,
)
from drivers.profiles import Profile
from fabzone import crud
from fabzone.arming import ArmingGate
from fabzone.coalesce import Coalescer
from fabzone.config import MachineConfig
from fabzone.events import EventBus
from fabzone.machine_link import MachineLink
from fabzone.models import Job, Machine
from fabzone.states import JobState, MachineState, TransitionError
from fabzone.telemetry import TemperatureHistory
from fabzone.views import job_public, live_view, machine_public

log = logging.getLogger(__name__)
T = TypeVar("T")

# Pages get at most 4 progress/temperature updates per second per machine (issue 3 §4); the DB row
# gets the acknowledged line count once a second, which is what a crash leaves behind.
EVENT_INTERVAL_S = 0.25
DB_PROGRESS_INTERVAL_S = 1.0


class NotAwaitingArm(DriverError):
    """`arm` on a machine that has no job waiting to be armed."""


class MachineCoordinator:
    def __init__(
        self,
        config: MachineConfig,
        profile: Profile,
        engine: Engine,
        bus: EventBus,
        files: Callable[[str], Path],
        poke_scheduler: Callable[[], None],
        *,
        backoff: tuple[float, float] = (0.5, 30.0),
        arm_timeout_s: float = 300.0,
        driver_options: dict[str, Any] | None = None,
    ) -> None:
        self.arm_timeout_s = arm_timeout_s
        self.arming: ArmingGate | None = None
        self.config = config
        self.profile = profile
        self.engine = engine
        self.bus = bus
        self._files = files
        self._poke = poke_scheduler
        self.driver: Driver | None = None
        self.driver_status = DriverStatus()
        self.temperature_history = TemperatureHistory()
        self.online = False
        self.job_id: str | None = None
        # Held while a job goes from `running` in the database to the driver: pause, resume and
        # cancel wait for it, so a click in that moment acts on the job instead of a 409.
        self._starting = asyncio.Lock()
        self._estops = 0  # emergency stops pressed: one during a start means the job was stopped
        self._db_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.link = MachineLink(self, backoff, driver_options or {})
        self._status_events = Coalescer(EVENT_INTERVAL_S, self._publish_status)
        self._progress_writes = Coalescer(DB_PROGRESS_INTERVAL_S, self._write_progress)
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def machine_id(self) -> str:
        return self.config.id

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.link.start()

    async def stop(self) -> None:
        await self.link.stop()

    async def reconnect(self) -> None:
        """A technician asks for a new connection (after power-cycling a halted machine)."""
        self.link.lost.set()

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one crud operation in a worker thread, in this machine's order."""

        def work() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                return fn(session, *args, **kwargs)

        async with self._db_lock:
            return await asyncio.to_thread(work)

    # -- driver events (called on the driver's threads) ------------------------------------------

    def _from_driver_thread(self, event: DriverEvent) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_driver_event, event)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        # Keep a reference: the loop holds tasks only weakly.
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_driver_event(self, event: DriverEvent) -> None:
        if isinstance(event, StatusChanged):
            self._on_status(event.status)
        elif isinstance(event, JobEnded):
            self._spawn(self._on_job_ended(event))
        elif isinstance(event, ConnectionChanged) and not event.online:
            self.link.lost.set()

    def _on_status(self, status: DriverStatus) -> None:
        previous = self.driver_status
        self.driver_status = status
        self.temperature_history.add(status.temperatures)
        if status.state == DriverState.ERROR and previous.state != DriverState.ERROR:
            self._spawn(self._machine_error(status.message or "firmware error"))
        if status.job_id and {status.state, previous.state} == {DriverState.PAUSED, DriverState.RUNNING}:
            # The machine paused or resumed by itself (a laser's door, a printer's filament sensor):
            # the job follows, as it does when a technician pauses.
            self._spawn(self._follow_driver(status.job_id, status.state == DriverState.PAUSED))
        if status.job_id:
            self._progress_writes.trigger()
        self._status_events.trigger()

    def _write_progress(self) -> None:
        status = self.driver_status
        if status.job_id:
            self._spawn(self._db(crud.update_progress, status.job_id, status.lines_acked, status.lines_total))

    def _publish_status(self) -> None:
        self.bus.publish("status", {"machine_id": self.machine_id, **self.live_status()})

    async def _machine_error(self, reason: str) -> None:
        machine = await self._db(crud.set_machine_state, self.machine_id, MachineState.ERROR, reason=reason)
        self._publish_machine(machine)

    async def _on_job_ended(self, event: JobEnded) -> None:
        # A firmware that stopped keeps the machine in error (with its words) until a technician resets
        # it; every other end leaves a part on the bed for a technician to clear.
        error = self.driver_status.state == DriverState.ERROR
        job = await self._db(
            crud.job_finished,
            event.job_id,
            event.outcome,
            lines_acked=event.lines_acked,
            reason=event.reason,
            machine_state=MachineState.ERROR if error else MachineState.AWAITING_CLEAR,
        )
        self.job_id = None
        self._publish_job(job)
        self._publish_machine(await self._db(crud.get_machine, self.machine_id))

    # -- commands from the scheduler and the API -------------------------------------------------

    async def run_job(self, job: Job, machine: Machine) -> None:
        """The scheduler claimed `job` for this machine (both `starting`). The job is `running` in the
        database before the first byte goes out, so a crash in between leaves it safely re-queueable.
        A laser first waits, still `starting`, for a technician to arm it (in a task of its own: the
        scheduler must not wait for a person)."""
        if self.driver is None or not self.online or self.driver_status.state == DriverState.ERROR:
            offline = self.driver is None or not self.online
            back = await self._db(
                crud.return_to_queue,
                job.id,
                reason="machine offline" if offline else (self.driver_status.message or "machine error"),
                machine_state=MachineState.OFFLINE if offline else MachineState.ERROR,
            )
            self._publish_job(back)
            return
        if self.profile.kind == "laser":
            self._spawn(self._arm_then_start(job))
        else:
            await self._start(job)

    async def _arm_then_start(self, job: Job) -> None:
        gate = ArmingGate(job.id, self.arm_timeout_s)
        self.arming = gate
        # The job left the queue for this laser: the pages move it onto the laser's card now, not
        # once it is armed (the scheduler's claim publishes nothing by itself).
        self._publish_job(await self._db(crud.get_job, job.id))
        self._publish_machine(await self._db(crud.get_machine, self.machine_id))
        outcome = await gate.wait()
        self.arming = None
        if outcome == "armed":
            await self._start(job)
            return
        if outcome == "timeout":
            log.info(
                "%s: job %s not armed within %.0f s: back to the queue",
                self.machine_id,
                job.id,
                self.arm_timeout_s,
            )
            back = await self._db(crud.return_to_queue, job.id, reason="not armed in time")
        else:
            # Cancelled or emergency-stopped before the first byte: nothing was made.
            back = await self._db(
                crud.transition_job, job.id, JobState.CANCELLED, detail={"reason": "stopped before arming"}
            )
        self._publish_job(back)
        self._publish_machine(await self._db(crud.get_machine, self.machine_id))
        self._poke()

    async def _start(self, job: Job) -> None:
        driver = self._require_driver()
        estops = self._estops
        async with self._starting:
            job = await self._db(crud.transition_job, job.id, JobState.RUNNING)
            machine = await self._db(crud.get_machine, self.machine_id)
            self.job_id = job.id
            self._publish_job(job)
            self._publish_machine(machine)
            total = (job.analysis or {}).get("lines") or job.lines_total
            try:
                await asyncio.to_thread(driver.start_job, job.id, self._files(job.sha256), total)
            except DriverError as exc:
                if self._estops != estops:
                    # The emergency stop came before the driver took the job (the firmware is halted,
                    # so the driver refused it): the job was stopped by a person, not lost.
                    await self._on_job_ended(JobEnded(job.id, "cancelled", 0, "emergency stop"))
                    return
                log.error("%s: could not start job %s: %s", self.machine_id, job.id, exc)
                await self._on_job_ended(JobEnded(job.id, "interrupted", 0, f"could not start: {exc}"))

    def arm(self) -> None:
        """A technician at the laser confirms: operator present, lid closed, extraction on."""
        if self.arming is None:
            raise NotAwaitingArm(self.machine_id)
        self.arming.arm()

    async def unlock(self) -> Machine | None:
        """After an alarm (GRBL `$X`): the firmware takes commands again; the bed still needs a look."""
        driver = self._require_driver()
        unlock = getattr(driver, "unlock", None)
        if unlock is not None:
            await asyncio.to_thread(unlock)
        return await self._error_dealt_with()

    async def reset(self) -> Machine | None:
        """A technician dealt with an error: the device is told (an MQTT device's `reset`), then the
        machine waits for its bed to be looked at."""
        if self.driver is not None:
            await asyncio.to_thread(self.driver.reset_after_error)
        return await self._error_dealt_with()

    async def _error_dealt_with(self) -> Machine | None:
        """error -> awaiting_clear (any other state stays); the machine as it now is, published."""
        machine = await self._db(crud.get_machine, self.machine_id)
        if machine is not None and machine.state == MachineState.ERROR:
            machine = await self._db(crud.set_machine_state, self.machine_id, MachineState.AWAITING_CLEAR)
        self._publish_machine(machine)
        return machine

    def _require_job(self) -> str:
        if self.job_id is None:
            raise DriverError(f"machine {self.machine_id} has no job")
        return self.job_id

    async def _job_transition(self, job_id: str, target: JobState) -> None:
        job = await self._db(crud.transition_job, job_id, target)
        self._publish_job(job)
        self._publish_machine(await self._db(crud.get_machine, self.machine_id))

    def _require_driver(self) -> Driver:
        if self.driver is None:
            raise DriverError(f"machine {self.machine_id} is offline")
        return self.driver

    async def pause(self) -> None:
        async with self._starting:
            job_id = self._require_job()
            await asyncio.to_thread(self._require_driver().pause)
        await self._follow_driver(job_id, paused=True)

    async def resume(self) -> None:
        async with self._starting:
            job_id = self._require_job()
            await asyncio.to_thread(self._require_driver().resume)
        await self._follow_driver(job_id, paused=False)

    async def _follow_driver(self, job_id: str, paused: bool) -> None:
        """running <-> paused once: both the API call and the driver's own report lead here, in either
        order, so finding the job already there is not an error."""
        target = JobState.PAUSED if paused else JobState.RUNNING
        try:
            await self._job_transition(job_id, target)
        except TransitionError as exc:
            if exc.current != target:
                raise

    async def cancel(self) -> None:
        if self.arming is not None:
            self.arming.abort()  # nothing was sent yet
            return
        # The driver reports JobEnded(cancelled) once the firmware has the cancel commands.
        async with self._starting:
            await asyncio.to_thread(self._require_driver().cancel)

    def emergency_stop(self) -> None:
        """Straight to the driver, on the caller's thread: no queue, no lock, no database first."""
        self._estops += 1
        if self.arming is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.arming.abort)
        self._require_driver().emergency_stop()

    # -- what the API and the pages see ------------------------------------------------------------

    def live_status(self) -> dict[str, Any]:
        return live_view(self.driver_status, self.online, self.arming.public() if self.arming else None)

    def _publish_machine(self, machine: Machine | None) -> None:
        if machine is not None:
            self.bus.publish("machine", machine_public(machine) | {"live": self.live_status()})

    def _publish_job(self, job: Job | None) -> None:
        if job is not None:
            self.bus.publish("job", job_public(job))
