"""The hub on MQTT: every machine's state (retained) and job events under fabzone/v1/<site>/hub/,
plus optional Home Assistant discovery; an EventBus subscriber like a WebSocket client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from drivers.mqtt import contract
from fabzone.events import Event, EventBus

log = logging.getLogger(__name__)

_LIVE_KEYS = (
    "online",
    "driver_state",
    "job_id",
    "progress",
    "lines_acked",
    "lines_total",
    "temperatures",
    "message",
)


class HubPublisher:
    def __init__(
        self,
        url: str,
        site: str,
        bus: EventBus,
        machines: list[tuple[str, str]],
        *,
        discovery: bool = False,
        discovery_prefix: str = "homeassistant",
    ) -> None:
        self.url = contract.BrokerUrl.parse(url)
        self.site = site
        self.base = f"{contract.ROOT}/{site}/hub"
        self.bus = bus
        self.machines = machines  # (id, name)
        self.discovery = discovery
        self.discovery_prefix = discovery_prefix
        self._state: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self._client = contract.make_client(self.url, f"fabzone-hub-{site}-publisher", persistent=False)
        # The hub's own availability: the broker says `offline` for a hub that died (its last will).
        self._client.will_set(f"{self.base}/availability", "offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect

    async def start(self) -> None:
        contract.connect_async(self._client, self.url, persistent=False)
        self._client.loop_start()
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        info = self._client.publish(f"{self.base}/availability", "offline", qos=1, retain=True)
        with contextlib.suppress(RuntimeError, ValueError):
            await asyncio.to_thread(info.wait_for_publish, 2)
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT publisher: broker refused: %s", reason)
            return
        client.publish(f"{self.base}/availability", "online", qos=1, retain=True)
        if self.discovery:
            for machine_id, name in self.machines:
                for topic, config in self.discovery_configs(machine_id, name):
                    client.publish(topic, json.dumps(config), qos=1, retain=True)
        # After a broker restart without persistence the retained states are gone: publish them again.
        for machine_id in list(self._state):
            self._publish_state(machine_id)

    async def _run(self) -> None:
        sub = self.bus.subscribe()
        try:
            while True:
                if sub.dropped:
                    # We fell behind (broker very slow): take a fresh queue, lose nothing retained.
                    sub = self.bus.subscribe()
                self._handle(await sub.get())
        finally:
            self.bus.unsubscribe(sub)

    def _handle(self, event: Event) -> None:
        data = event.data
        if event.type == "machine":
            machine_id = str(data.get("id"))
            live = data.get("live") or {}
            fields = {k: data.get(k) for k in ("name", "kind", "state", "state_reason", "current_job_id")}
            self._merge(machine_id, {**fields, **{k: live.get(k) for k in _LIVE_KEYS if k in live}})
        elif event.type == "status":
            machine_id = str(data.get("machine_id"))
            self._merge(machine_id, {k: data.get(k) for k in _LIVE_KEYS if k in data})
        elif event.type == "job":
            payload = {"v": contract.VERSION, "type": "job", "seq": event.seq, "at": event.at, "data": data}
            self._client.publish(f"{self.base}/events", json.dumps(payload), qos=1)
            self.published += 1

    def _merge(self, machine_id: str, fields: dict[str, Any]) -> None:
        self._state[machine_id] = {**self._state.get(machine_id, {}), **fields}
        self._publish_state(machine_id)

    def _publish_state(self, machine_id: str) -> None:
        payload = {"v": contract.VERSION, "ts": round(time.time(), 3), "machine_id": machine_id}
        payload.update(self._state[machine_id])
        self._client.publish(
            f"{self.base}/machines/{machine_id}/state", json.dumps(payload), qos=0, retain=True
        )
        self.published += 1

    def discovery_configs(self, machine_id: str, name: str) -> list[tuple[str, dict[str, Any]]]:
        """Home Assistant MQTT discovery: one sensor for the state, one for the progress, grouped
        under one device, available while the hub's availability topic says `online`."""
        unique = f"fabzone_{self.site}_{machine_id}".replace("-", "_").replace(".", "_")
        device = {
            "identifiers": [unique],
            "name": name,
            "manufacturer": "fabzone",
            "model": "fabzone machine",
        }
        state_topic = f"{self.base}/machines/{machine_id}/state"
        common = {
            "state_topic": state_topic,
            "availability_topic": f"{self.base}/availability",
            "device": device,
        }
        return [
            (
                f"{self.discovery_prefix}/sensor/{unique}_state/config",
                {
                    **common,
                    "name": "State",
                    "unique_id": f"{unique}_state",
                    "value_template": "{{ value_json.state }}",
                    "json_attributes_topic": state_topic,
                },
            ),
            (
                f"{self.discovery_prefix}/sensor/{unique}_progress/config",
                {
                    **common,
                    "name": "Progress",
                    "unique_id": f"{unique}_progress",
                    "unit_of_measurement": "%",
                    "value_template": "{{ ((value_json.progress or 0) * 100) | round(1) }}",
                },
            ),
        ]
