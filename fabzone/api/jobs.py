"""`/api/jobs`: submit (validated, stored, queued), list, look up by id or ticket, pause/resume/cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from drivers.base import DriverError
from fabzone import auth, crud
from fabzone.api.auth import OptionalTechDep, TechDep, check_maker, check_submit_rate
from fabzone.api.deps import (
    HubDep,
    LangDep,
    SessionDep,
    api_error,
    coordinator_or_404,
    in_session,
    job_or_404,
    pick_language,
)
from fabzone.api.upload import UploadError, receive_upload
from fabzone.filestore import TooLarge
from fabzone.hub import Hub
from fabzone.i18n import message
from fabzone.models import Job
from fabzone.states import JOB_ON_MACHINE, JobState
from fabzone.validation import validate
from fabzone.views import job_public

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


def _candidates(hub: Hub, profile: str | None, kind: str | None, lang: str) -> list:
    profiles = hub.profiles
    if profile:
        if profile not in profiles:
            raise api_error(422, "job.unknown_profile", lang, profile=profile, known=", ".join(profiles))
        return [profiles[profile]]
    wanted = kind or "printer"
    chosen = [p for p in profiles.values() if p.kind == wanted]
    if not chosen:
        raise api_error(422, "job.no_machine_of_kind", lang, kind=wanted)
    return chosen


@router.post("", status_code=201)
async def submit_job(request: Request, hub: HubDep) -> JSONResponse:
    """Multipart: `file` (G-code), optional `name` (display name), `maker`, `profile` or `kind`,
    `language` (it/zh/en). 422 with every reason per profile when no machine here can make it.
    The 201 answer carries `secret` (shown once): with it, `X-Maker-Secret` cancels this job."""
    lang = pick_language(None, request.headers.get("accept-language"))
    # In a worker thread: a technician's token is looked up (and its last use written) in the database.
    await asyncio.to_thread(check_submit_rate, request, hub, lang)
    try:
        upload = await receive_upload(request, hub.files, hub.settings.max_upload_bytes)
    except TooLarge as exc:
        raise api_error(413, "upload.too_large", lang, limit_mb=round(exc.limit / 1024 / 1024)) from None
    except UploadError as exc:
        raise api_error(422, exc.code, lang) from None
    assert upload.file is not None
    incoming = upload.file
    try:
        lang = pick_language(upload.fields.get("language"), request.headers.get("accept-language"))
        candidates = _candidates(hub, upload.fields.get("profile"), upload.fields.get("kind"), lang)
        sha256 = incoming.finish()
        results = await asyncio.to_thread(validate, incoming.path, candidates)
        fits = [pid for pid, r in results.items() if r.ok]
        if not fits:
            incoming.discard()  # a rejected file is not kept, not even half
            return JSONResponse(status_code=422, content=_rejection(results, candidates, lang))
        analysis = results[fits[0]].analysis
        assert analysis is not None
        hub.files.commit(incoming, sha256)
    except BaseException:
        incoming.discard()
        raise
    file_name = upload.file_name or "unnamed.gcode"
    secret = auth.new_secret()
    job = await in_session(
        hub,
        lambda session: crud.create_job(
            session,
            display_name=(upload.fields.get("name") or file_name)[:120],
            maker_name=(upload.fields.get("maker") or "")[:80],
            language=lang,
            file_name=file_name[:255],
            sha256=sha256,
            file_size=incoming.size,
            kind=candidates[0].kind,
            analysis=analysis.to_dict() | {"estimates_s": {pid: _estimate(results[pid]) for pid in fits}},
            candidate_profiles=fits,
            requested_profile=upload.fields.get("profile") or None,
            maker_secret_hash=auth.digest(secret),
            # A laser job waits for a technician's approval before it is queued.
            initial_state=JobState.PENDING_APPROVAL if candidates[0].kind == "laser" else JobState.QUEUED,
        ),
    )
    body = job_public(job)
    hub.bus.publish("job", body)
    hub.job_queued()
    return JSONResponse(status_code=201, content=body | {"profiles": fits, "secret": secret})


def _estimate(result: Any) -> float | None:
    return getattr(result.analysis, "estimated_s", None)


def _rejection(results: dict, candidates: list, lang: str) -> dict[str, Any]:
    return {
        "detail": {
            "code": "job.rejected",
            "message": message("job.rejected", lang),
            "language": lang,
            "profiles": [
                {
                    "profile": p.id,
                    "name": p.name,
                    "reasons": [
                        {"code": r.code, "line": r.line, "params": r.params, "message": r.message(lang)}
                        for r in results[p.id].reasons
                    ],
                }
                for p in candidates
            ],
        }
    }


@router.get("")
def list_jobs(
    session: SessionDep,
    lang: LangDep,
    state: str | None = None,
    machine: str | None = None,
    since: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Newest first. `state=a,b`, `machine=ID`, `since=ISO 8601` (created or finished since then;
    without a zone: UTC), `limit` (1–1000)."""
    try:
        states = [JobState(s.strip()) for s in state.split(",") if s.strip()] if state else None
    except ValueError:
        raise api_error(422, "job.bad_filter", lang, text=f"state={state}") from None
    after = None
    if since:
        try:
            after = datetime.fromisoformat(since.replace(" ", "+"))  # a "+" in a URL may arrive as " "
        except ValueError:
            raise api_error(422, "job.bad_filter", lang, text=f"since={since}") from None
        after = after.replace(tzinfo=UTC) if after.tzinfo is None else after
    positions = crud.queue_positions(session)
    jobs = crud.list_jobs(
        session, states=states, machine_id=machine, since=after, limit=max(1, min(limit, 1000))
    )
    return [job_public(j) | {"queue_position": positions.get(j.id)} for j in jobs]


@router.get("/{job_ref}")
def get_job(job_ref: str, session: SessionDep, lang: LangDep) -> dict[str, Any]:
    job = job_or_404(session, job_ref)
    positions = crud.queue_positions(session)
    return job_public(job) | {"queue_position": positions.get(job.id), "analysis": job.analysis}


@router.get("/{job_ref}/events")
def job_history(job_ref: str, session: SessionDep, lang: LangDep) -> list[dict[str, Any]]:
    """Every state change of the job, oldest first (the JobEvent rows)."""
    job = job_or_404(session, job_ref)
    return [
        {
            "at": e.at.isoformat(),
            "from_state": e.from_state,
            "to_state": e.to_state,
            "machine_id": e.machine_id,
            "detail": e.detail,
        }
        for e in crud.job_events(session, job.id)
    ]


async def _on_machine(hub: Hub, job_ref: str, lang: str):  # type: ignore[no-untyped-def]
    job = await in_session(hub, lambda session: job_or_404(session, job_ref))
    if JobState(job.state) not in JOB_ON_MACHINE or not job.machine_id:
        raise api_error(409, "job.not_on_machine", lang, state=job.state)
    return job, coordinator_or_404(hub, job.machine_id, lang)


@router.post("/{job_ref}/pause")
async def pause_job(job_ref: str, hub: HubDep, lang: LangDep, _tech: TechDep) -> dict[str, Any]:
    return await _drive(hub, job_ref, lang, JobState.RUNNING, "job.not_running", "pause")


@router.post("/{job_ref}/resume")
async def resume_job(job_ref: str, hub: HubDep, lang: LangDep, _tech: TechDep) -> dict[str, Any]:
    return await _drive(hub, job_ref, lang, JobState.PAUSED, "job.not_paused", "resume")


async def _drive(
    hub: Hub, job_ref: str, lang: str, needs: JobState, refusal: str, command: str
) -> dict[str, Any]:
    """Pause or resume a job on its machine; the machine says no with 409 (offline, door open...)."""
    job, coordinator = await _on_machine(hub, job_ref, lang)
    if job.state != needs:
        raise api_error(409, refusal, lang, state=job.state)
    try:
        await getattr(coordinator, command)()
    except DriverError:
        raise api_error(409, "machine.offline", lang, machine=job.machine_id) from None
    return {"ok": True}


@router.post("/{job_ref}/cancel")
async def cancel_job(
    job_ref: str, request: Request, hub: HubDep, lang: LangDep, tech: OptionalTechDep
) -> dict[str, Any]:
    """A technician cancels any job; a maker only their own (header `X-Maker-Secret`)."""

    def off_machine(session: Session) -> Job | None:
        """Checks who asks; cancels a job that is not on a machine (None: it is on one)."""
        job = crud.get_job(session, job_ref)
        if job is None:
            if tech is None and not request.headers.get("x-maker-secret"):
                raise api_error(401, "auth.required", lang)
            raise api_error(404, "job.not_found", lang, job=job_ref)
        if tech is None:
            check_maker(request, job, lang)
        if JobState(job.state) in JOB_ON_MACHINE:
            return None
        return crud.cancel_job(session, job.id)

    cancelled = await in_session(hub, off_machine)
    if cancelled is not None:
        hub.bus.publish("job", job_public(cancelled))  # on the loop: the bus is not thread-safe
        return {"ok": True, "state": cancelled.state}
    job, coordinator = await _on_machine(hub, job_ref, lang)
    try:
        await coordinator.cancel()
    except DriverError:
        raise api_error(409, "machine.offline", lang, machine=job.machine_id) from None
    return {"ok": True, "state": "cancelling"}


@router.post("/{job_ref}/requeue")
def requeue_job(
    job_ref: str, hub: HubDep, session: SessionDep, lang: LangDep, _tech: TechDep
) -> dict[str, Any]:
    """An interrupted job goes back to the queue (a technician's call: the bed must be cleared first)."""
    job = job_or_404(session, job_ref)
    job = crud.requeue_interrupted(session, job.id)
    hub.bus.publish("job", job_public(job))
    hub.job_queued()
    return job_public(job)


@router.post("/{job_ref}/fail")
def fail_job(job_ref: str, hub: HubDep, session: SessionDep, lang: LangDep, _tech: TechDep) -> dict[str, Any]:
    job = job_or_404(session, job_ref)
    job = crud.fail_interrupted(session, job.id, "marked failed by a technician")
    hub.bus.publish("job", job_public(job))
    return job_public(job)
