"""The event bus: numbered events, a replay ring for reconnecting pages, bounded queues per subscriber."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Event:
    seq: int
    type: str  # "job" | "machine" | "progress" ...
    data: dict[str, Any]
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "type": self.type, "at": self.at, "data": self.data}

    @cached_property
    def json(self) -> str:
        """Serialised once, whatever the number of clients (the fan-out is the hot path)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)


class Subscriber:
    """One client's queue. Bounded (Moonraker's rule): a client that cannot keep up is dropped,
    never allowed to slow the hub or grow memory."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = False

    async def get(self) -> Event:
        return await self.queue.get()


class EventBus:
    """Runs on the hub's event loop; `publish` is not thread-safe (coordinators hop onto the loop).

    Sequence numbers restart with every hub boot; `boot_id` tells a page that reconnects to a new
    hub that its `since` refers to another life and it must reload the snapshot.
    """

    def __init__(self, history: int = 10_000, queue_size: int = 1_000) -> None:
        self.boot_id = uuid.uuid4().hex[:12]
        self._seq = 0
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[Subscriber] = set()
        self._queue_size = queue_size
        self.published = 0
        self.sent = 0  # events written to WebSocket clients (counted by the endpoint)
        self.dropped_clients = 0

    @property
    def seq(self) -> int:
        return self._seq

    def publish(self, type_: str, data: dict[str, Any]) -> Event:
        self._seq += 1
        event = Event(self._seq, type_, data)
        self._history.append(event)
        self.published += 1
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped = True
                self._subscribers.discard(sub)
                self.dropped_clients += 1
        return event

    def since(self, seq: int) -> list[Event] | None:
        """Events after `seq`, or None when they are no longer all in the ring (reload the snapshot)."""
        if seq >= self._seq:
            return []
        if not self._history or self._history[0].seq > seq + 1:
            return None
        return [e for e in self._history if e.seq > seq]

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self._queue_size)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    @property
    def client_count(self) -> int:
        return len(self._subscribers)
