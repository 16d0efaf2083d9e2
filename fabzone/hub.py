"""The hub: wires settings, database, file store, event bus, scheduler and one coordinator per machine."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlmodel import Session

from drivers import driver_class
from drivers.profiles import Profile, get_profile
from fabzone import crud, db, signing
from fabzone.config import MachineConfig, Settings
from fabzone.coordinator import MachineCoordinator
from fabzone.events import EventBus
from fabzone.filestore import FileStore
from fabzone.models import Job, Machine
from fabzone.scheduler import Scheduler
from fabzone.states import MachineState

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.hub.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = db.create_db_engine(settings.database_url)
        self.files = FileStore(settings.files_dir)
        self.bus = EventBus(queue_size=settings.hub.ws_queue_size)
        self.scheduler = Scheduler(
            self.engine, self._on_assigned, machine_ids=[m.id for m in settings.machines]
        )
        self.coordinators: dict[str, MachineCoordinator] = {}
        self.recovery: Any = None
        self.signing_key = signing.load_or_create_key(settings.hub.data_dir)
        self.mqtt_publisher: Any = None

    @property
    def profiles(self) -> dict[str, Profile]:
        """The profiles of the machines in this hall (what an upload is checked against)."""
        return {m.profile: get_profile(m.profile) for m in self.settings.machines}

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    async def start(self) -> None:
        await asyncio.to_thread(db.migrate, self.engine)
        removed = self.files.clean_temp()
        if removed:
            log.info("removed %d half-received uploads", removed)
        with self.session() as session:
            # Before anything runs: what a killed hub left behind becomes interrupted / re-queued.
            crud.upsert_machines(
                session, [self._machine_row(m) for m in self.settings.machines], disable_missing=False
            )
            # OctoPrint streams its job itself: such a job survived the hub and is reconciled on connect.
            reattach = [
                m.id
                for m in self.settings.machines
                if getattr(driver_class(m.driver), "survives_host_restart", False)
            ]
            self.recovery = crud.recover_after_crash(
                session, machine_ids=self.coordinator_ids, reattach=reattach
            )
            # Until its driver connects, no machine of ours is available (a clean stop left them idle).
            for machine in crud.list_machines(session):
                if machine.id in self.coordinator_ids and machine.state == MachineState.IDLE:
                    crud.machine_offline(session, machine.id, "connecting")
        if self.recovery.changed:
            log.info("recovered after an unclean stop: %s", self.recovery)
        for cfg in self.settings.machines:
            coordinator = MachineCoordinator(
                cfg,
                get_profile(cfg.profile),
                self.engine,
                self.bus,
                self.files.path_for,
                self.scheduler.poke,
                arm_timeout_s=self.settings.hub.arm_timeout_s,
                driver_options=self._driver_options(cfg),
            )
            self.coordinators[cfg.id] = coordinator
            await coordinator.start()
        await self.scheduler.start()
        hub = self.settings.hub
        if hub.mqtt_publish and hub.mqtt_url:
            from fabzone.mqtt_out import HubPublisher

            self.mqtt_publisher = HubPublisher(
                hub.mqtt_url,
                hub.site,
                self.bus,
                [(m.id, m.name) for m in self.settings.machines],
                discovery=hub.mqtt_discovery,
                discovery_prefix=hub.mqtt_discovery_prefix,
            )
            await self.mqtt_publisher.start()

    async def stop(self) -> None:
        if self.mqtt_publisher is not None:
            await self.mqtt_publisher.stop()
        await self.scheduler.stop()
        await asyncio.gather(*(c.stop() for c in self.coordinators.values()), return_exceptions=True)
        self.engine.dispose()

    async def _on_assigned(self, job: Job, machine: Machine) -> None:
        coordinator = self.coordinators.get(machine.id)
        if coordinator is None:
            # A machine in the database that this hub does not drive (another hub's, or removed
            # from the fleet file): give the job back.
            raise RuntimeError(f"machine {machine.id} is not driven by this hub")
        await coordinator.run_job(job, machine)

    @property
    def coordinator_ids(self) -> list[str]:
        return [m.id for m in self.settings.machines]

    def _machine_row(self, cfg: MachineConfig) -> dict[str, Any]:
        profile = get_profile(cfg.profile)
        return {
            "id": cfg.id,
            "name": cfg.name,
            "site": cfg.site or self.settings.hub.site,
            "profile_id": cfg.profile,
            # A printer behind OctoPrint keeps its firmware profile (validation) but is driven by REST.
            "protocol": "octoprint" if cfg.driver == "octoprint" else profile.protocol,
            "connection": cfg.connection,
            "settings": {"baud": cfg.baud} if cfg.baud else {},
        }

    def _driver_options(self, cfg: MachineConfig) -> dict[str, Any]:
        if cfg.driver != "mqtt":
            return {}
        hub = self.settings.hub
        base = (hub.public_url or f"http://{hub.host}:{hub.port}").rstrip("/")

        def file_url(path: Path) -> str:
            # The store's file name is the content's sha256 (fabzone/filestore.py).
            return f"{base}/api/files/{path.name}?{signing.signed_query(self.signing_key, path.name)}"

        return {"file_url": file_url}

    def job_queued(self) -> None:
        self.scheduler.poke()
