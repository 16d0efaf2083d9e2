"""A coordinator's link to its machine: connect with backoff, hold the driver until lost, reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from drivers import driver_class
from drivers.base import Driver, DriverError, DriverState
from fabzone import crud

if TYPE_CHECKING:
    from fabzone.coordinator import MachineCoordinator

# The logger the coordinator has always used: log filters and captured logs keep working.
log = logging.getLogger("fabzone.coordinator")


class MachineLink:
    """Keeps `coordinator.driver` connected and `coordinator.online` (and the machine's row) true."""

    def __init__(
        self,
        coordinator: MachineCoordinator,
        backoff: tuple[float, float],
        driver_options: dict[str, Any],  # what only the hub knows (MQTT: file URLs)
    ) -> None:
        self._c = coordinator
        self._driver_options = driver_options
        self._backoff = backoff
        self.lost = asyncio.Event()  # set: drop the driver and connect again
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connection_loop(), name=f"coordinator-{self._c.machine_id}")

    async def stop(self) -> None:
        self._stopping = True
        self.lost.set()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._c.driver:
            await asyncio.to_thread(self._c.driver.close)

    async def _connection_loop(self) -> None:
        c = self._c
        delay = self._backoff[0]
        while not self._stopping:
            driver = self._make_driver()
            try:
                await asyncio.to_thread(driver.connect)
            except DriverError as exc:
                await asyncio.to_thread(driver.close)
                if c.online or delay == self._backoff[0]:
                    # Log when availability flips, not on every retry (HA's coordinator rule).
                    log.warning("%s: cannot connect to %s: %s", c.machine_id, c.config.connection, exc)
                await self._went_offline(str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            delay = self._backoff[0]
            c.driver = driver
            self.lost.clear()
            await self._came_online()
            await self.lost.wait()
            c.driver = None
            await asyncio.to_thread(driver.close)
            # Let the driver's own JobEnded/ConnectionChanged callbacks land before reconnecting.
            await asyncio.sleep(0)
            await self._went_offline("connection lost")

    def _make_driver(self) -> Driver:
        c = self._c
        cls = driver_class(c.config.driver)
        options = c.config.driver_options()  # network drivers: API key (from the env), port, baud
        options = {**options, **self._driver_options}
        return cls(c.profile, c.config.connection, on_event=c._from_driver_thread, **options)  # type: ignore[no-any-return]

    async def _came_online(self) -> None:
        c = self._c
        c.online = True
        log.info("%s: online (%s)", c.machine_id, c.driver_status.firmware or c.config.driver)
        driver = c.driver
        if driver is not None and getattr(driver, "survives_host_restart", False):
            await self._reattach(driver)
            return
        machine = await c._db(crud.machine_online, c.machine_id)
        c._publish_machine(machine)
        c._poke()

    async def _reattach(self, driver: Driver) -> None:
        """The machine's own host streams the job (OctoPrint): a job it held across our restart or an
        outage is still `running`/`paused` here; the driver follows it again or reports how it ended."""
        c = self._c
        machine, job = await c._db(crud.machine_reattached, c.machine_id)
        c._publish_machine(machine)
        if job is None:
            c._poke()
            return
        c.job_id = job.id
        log.info("%s: following job %s again", c.machine_id, job.id)
        total = (job.analysis or {}).get("lines") or job.lines_total
        try:
            await asyncio.to_thread(driver.reattach, job.id, total)  # type: ignore[attr-defined]
        except DriverError as exc:
            log.warning("%s: could not reconcile job %s: %s", c.machine_id, job.id, exc)
            self.lost.set()
            return
        status = driver.status
        if status.job_id == job.id and status.state in (DriverState.RUNNING, DriverState.PAUSED):
            # Paused or resumed on OctoPrint while we were away: the job follows.
            await c._follow_driver(job.id, status.state == DriverState.PAUSED)

    async def _went_offline(self, reason: str) -> None:
        c = self._c
        was_online = c.online
        c.online = False
        machine = await c._db(crud.machine_offline, c.machine_id, reason)
        if was_online:
            log.warning("%s: offline: %s", c.machine_id, reason)
        if machine is not None:
            c._publish_machine(machine)
