"""What the kiosk and ticket pages need besides jobs: the message catalogs and a ticket's QR code."""

from __future__ import annotations

import io

import segno
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from fabzone import i18n
from fabzone.api.auth import MAKER_SECRET_HEADER, check_maker
from fabzone.api.deps import HubDep, LangDep, SessionDep, api_error, job_or_404

router = APIRouter(tags=["pages"])


@router.get("/api/i18n/{lang}")
def catalog(lang: str, request_lang: LangDep) -> JSONResponse:
    """The flat `code -> template` catalog (API error codes and validation reasons) of it, zh or en;
    templates name their parameters as `{name}`."""
    if lang not in i18n.LANGUAGES:
        raise api_error(404, "i18n.unknown_language", request_lang, text=lang)
    # The catalogs change only with a new hub version; an hour's cache spares the kiosks the trip.
    return JSONResponse(i18n.catalog(lang), headers={"Cache-Control": "public, max-age=3600"})


@router.get("/api/jobs/{job_ref}/qr.svg", response_class=Response)
def ticket_qr(job_ref: str, request: Request, hub: HubDep, session: SessionDep, lang: LangDep) -> Response:
    """An SVG QR code of `<base>/ticket/<code>` for the maker's phone; base is `[hub] public_url` or
    the address this request came to (the kiosk reaches the hub the way phones on the hall's network
    do, unless the hub is behind a proxy: then set public_url).

    With the job's `X-Maker-Secret` (the kiosk right after submitting) the code carries the secret in
    the URL's fragment, `#k=<secret>`: the phone that scans it may cancel the job, the fragment never
    reaches a server or its log, and the shared kiosk need not keep the secret."""
    job = job_or_404(session, job_ref)
    base = (hub.settings.hub.public_url or str(request.base_url)).rstrip("/")
    url, cache = f"{base}/ticket/{job.ticket}", "public, max-age=86400"
    secret = request.headers.get(MAKER_SECRET_HEADER)
    if secret:
        check_maker(request, job, lang)
        url, cache = f"{url}#k={secret}", "no-store"
    out = io.BytesIO()
    # Error correction M: still readable off a scuffed kiosk screen; border 2 keeps the quiet zone.
    segno.make_qr(url, error="m").save(out, kind="svg", scale=8, border=2)
    return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": cache})
