"""Permissions for the API: technician tokens (`Authorization: Bearer`), makers' secrets, rate limits.

401 means "who are you?" (no credential, or a token that is unknown or revoked); 403 means "you may
not do this" (a maker's secret on a technician's endpoint, or on someone else's job).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request

from fabzone import auth
from fabzone.api.deps import HubDep, LangDep, api_error
from fabzone.models import Job

MAKER_SECRET_HEADER = "x-maker-secret"

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _unauthorized(code: str, lang: str) -> HTTPException:
    exc = api_error(401, code, lang)
    exc.headers = {"WWW-Authenticate": "Bearer"}
    return exc


def _bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer …` header; "" for a header of another shape."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def technician_name(request: Request, hub: HubDep) -> str | None:
    """The technician's name for a valid token, else None (no header, or a bad one)."""
    token = _bearer(request)
    return auth.verify_token(hub.engine, token) if token else None


def require_technician(request: Request, hub: HubDep, lang: LangDep) -> str:
    """A FastAPI dependency: the technician's name, or 401/403."""
    token = _bearer(request)
    if token is None:
        if request.headers.get(MAKER_SECRET_HEADER):
            raise api_error(403, "auth.technician_only", lang)
        raise _unauthorized("auth.required", lang)
    name = auth.verify_token(hub.engine, token) if token else None
    if name is None:
        raise _unauthorized("auth.invalid", lang)
    return name


def optional_technician(request: Request, hub: HubDep, lang: LangDep) -> str | None:
    """The technician's name, None without an Authorization header, 401 for a bad one."""
    if _bearer(request) is None:
        return None
    return require_technician(request, hub, lang)


TechDep = Annotated[str, Depends(require_technician)]
OptionalTechDep = Annotated[str | None, Depends(optional_technician)]


def check_maker(request: Request, job: Job, lang: str) -> None:
    """Without a technician token, the caller must hold the secret of this very job."""
    secret = request.headers.get(MAKER_SECRET_HEADER)
    if not secret:
        raise _unauthorized("auth.required", lang)
    if not auth.secret_matches(secret, job.maker_secret_hash):
        raise api_error(403, "auth.not_your_job", lang)


def check_submit_rate(request: Request, hub: Any, lang: str) -> None:
    """Submissions per client address (technicians exempt): 429 with Retry-After past the limit."""
    if technician_name(request, hub) is not None:
        return
    limiter: auth.RateLimiter = request.app.state.submit_limiter
    # The peer's address: behind a reverse proxy that is the proxy's, so configure the limit there.
    address = request.client.host if request.client else "unknown"
    wait = limiter.hit(address)
    if wait is not None:
        exc = api_error(429, "upload.rate_limited", lang, seconds=auth.RateLimiter.retry_after_header(wait))
        exc.headers = {"Retry-After": auth.RateLimiter.retry_after_header(wait)}
        raise exc


@router.get("/me")
def me(name: TechDep) -> dict[str, Any]:
    """Who this token belongs to (the dashboard's login check)."""
    return {"name": name}
