"""The event bus: increasing sequence numbers, replay for a page that reconnects, slow clients dropped."""

from __future__ import annotations

import asyncio

from fabzone.events import EventBus


async def test_replay_since_a_sequence_number() -> None:
    bus = EventBus(history=100)
    for i in range(10):
        bus.publish("job", {"i": i})
    missed = bus.since(7)
    assert missed is not None
    assert [e.seq for e in missed] == [8, 9, 10]
    assert bus.since(10) == []


async def test_too_far_behind_means_reload() -> None:
    bus = EventBus(history=5)
    for i in range(20):
        bus.publish("job", {"i": i})
    assert bus.since(3) is None  # events 4..15 are gone from the ring
    assert [e.seq for e in bus.since(15) or []] == [16, 17, 18, 19, 20]


async def test_slow_subscriber_is_dropped_not_waited_for() -> None:
    bus = EventBus(queue_size=10)
    slow = bus.subscribe()
    fast = bus.subscribe()
    received = []

    async def reader() -> None:
        while len(received) < 50:
            received.append((await fast.get()).seq)

    task = asyncio.create_task(reader())
    for i in range(50):
        bus.publish("status", {"i": i})
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 5)
    assert received == list(range(1, 51))
    assert slow.dropped and bus.client_count == 1 and bus.dropped_clients == 1
