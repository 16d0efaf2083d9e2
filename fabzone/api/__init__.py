"""The HTTP API and the pages: a FastAPI app built around one Hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from fabzone.api import auth as auth_api
from fabzone.api import events, files, jobs, kiosk, lasers, machines, metrics, pages
from fabzone.api.errors import install_error_handlers
from fabzone.auth import RateLimiter
from fabzone.config import Settings
from fabzone.hub import Hub


def create_app(settings: Settings, hub: Hub | None = None) -> FastAPI:
    hub = hub or Hub(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(title="fabzone", version="0.1.0", lifespan=lifespan)
    app.state.hub = hub
    install_error_handlers(app)
    app.state.submit_limiter = RateLimiter(settings.hub.submit_per_minute, settings.hub.submit_window_s)
    app.include_router(jobs.router)
    app.include_router(machines.router)
    app.include_router(lasers.router)
    app.include_router(events.router)
    app.include_router(auth_api.router)
    app.include_router(kiosk.router)
    app.include_router(metrics.router)
    app.include_router(files.router)

    @app.get("/api/health", tags=["health"])
    def health() -> dict[str, Any]:
        with hub.session() as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        online = sum(1 for c in hub.coordinators.values() if c.online)
        return {"status": "ok", "machines": len(hub.coordinators), "online": online, "seq": hub.bus.seq}

    pages.mount(app, settings.hub.web_dir)

    return app
