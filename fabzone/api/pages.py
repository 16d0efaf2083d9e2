"""The pages: wall (`/`), kiosk, ticket and technician dashboard, plus their static files from `web/`.

Plain files with no build step, so the hall works offline; every page is one HTML file that loads
ES modules from `/static/js/`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger(__name__)
SOURCE_WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"

router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str) -> FileResponse:
    # no-cache: a kiosk left open for a week revalidates the page (and so picks up a new hub version).
    web_dir: Path = request.app.state.web_dir
    return FileResponse(web_dir / name, headers={"Cache-Control": "no-cache"})


@router.get("/")
def wall(request: Request) -> FileResponse:
    return _page(request, "index.html")


@router.get("/kiosk")
def kiosk(request: Request) -> FileResponse:
    return _page(request, "kiosk.html")


@router.get("/ticket/{code}")
def ticket(code: str, request: Request) -> FileResponse:
    # The page reads the code from its own URL; the API answers 404 for an unknown one.
    return _page(request, "ticket.html")


@router.get("/tech")
def tech(request: Request) -> FileResponse:
    return _page(request, "tech.html")


def mount(app: FastAPI, web_dir: Path | None) -> None:
    """The page routes and `/static` from `web_dir` (`[hub] web_dir`, FABZONE_WEB_DIR), else from the
    source tree's `web/`. Without one the API still runs, and the log says why there is no page."""
    folder = web_dir or SOURCE_WEB_DIR
    if not (folder / "index.html").is_file():
        log.error("no pages: %s holds no index.html (set [hub] web_dir or FABZONE_WEB_DIR)", folder)
        return
    app.state.web_dir = folder
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=folder), name="static")
