"""The pages: wall (`/`), kiosk, ticket and technician dashboard, plus their static files from `web/`.

Plain files with no build step, so the hall works offline; every page is one HTML file that loads
ES modules from `/static/js/`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    # no-cache: a kiosk left open for a week revalidates the page (and so picks up a new hub version).
    return FileResponse(WEB_DIR / name, headers={"Cache-Control": "no-cache"})


@router.get("/")
def wall() -> FileResponse:
    return _page("index.html")


@router.get("/kiosk")
def kiosk() -> FileResponse:
    return _page("kiosk.html")


@router.get("/ticket/{code}")
def ticket(code: str) -> FileResponse:
    # The page reads the code from its own URL; the API answers 404 for an unknown one.
    return _page("ticket.html")


@router.get("/tech")
def tech() -> FileResponse:
    return _page("tech.html")


def mount(app: FastAPI) -> None:
    """The page routes and `/static` (when the web folder ships next to the package)."""
    if not WEB_DIR.is_dir():
        return
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
