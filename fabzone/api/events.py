"""`/api/events`: a WebSocket of numbered events; `?since=N` replays what a reconnecting page missed."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

router = APIRouter(tags=["events"])
MAX_BATCH = 200


@router.websocket("/api/events")
async def events(
    ws: WebSocket, since: int | None = None, boot: str | None = None, batch: bool = False
) -> None:
    """`batch=1`: events that piled up for a client behind are sent as one JSON array (the pages ask
    for it; fewer frames is what keeps 200 clients cheap). Without it, one event per message."""
    hub = ws.app.state.hub
    bus = hub.bus
    await ws.accept()
    # Subscribe before replaying so nothing published in between is lost.
    sub = bus.subscribe()
    try:
        await ws.send_json({"type": "hello", "boot_id": bus.boot_id, "seq": bus.seq})
        if since is not None:
            missed = bus.since(since) if boot in (None, bus.boot_id) else None
            if missed is None:
                # Too far behind, or a different hub life: the page reloads its snapshot.
                await ws.send_json({"type": "reset", "seq": bus.seq})
            else:
                for event in missed:
                    await ws.send_text(event.json)
                    bus.sent += 1
        last = since if since is not None else bus.seq

        async def pump() -> None:
            nonlocal last
            while True:
                ready = [await sub.get()]
                while batch and len(ready) < MAX_BATCH and not sub.queue.empty():
                    ready.append(sub.queue.get_nowait())
                ready = [e for e in ready if e.seq > last]  # not what the replay already sent
                if not ready:
                    continue
                last = ready[-1].seq
                if len(ready) == 1:
                    await ws.send_text(ready[0].json)
                else:
                    await ws.send_text("[" + ",".join(e.json for e in ready) + "]")
                bus.sent += len(ready)
                if sub.dropped and sub.queue.empty():
                    await ws.close(code=1013, reason="too slow; reconnect with since")
                    return

        # One task sends, one notices the client leaving; whichever ends first ends both.
        tasks = {asyncio.create_task(pump()), asyncio.create_task(_drain_client(ws))}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
    except WebSocketDisconnect:
        pass
    finally:
        bus.unsubscribe(sub)


async def _drain_client(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a close is noticed."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await ws.receive_text()
