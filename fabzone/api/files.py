"""`GET /api/files/{sha256}?exp=&sig=`: a job file for the device that runs it, by signed URL only."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from fabzone import signing
from fabzone.api.deps import HubDep

router = APIRouter(tags=["files"])


@router.get("/api/files/{sha256}")
def get_file(sha256: str, exp: int, sig: str, hub: HubDep) -> FileResponse:
    # Checked before touching the store: without a valid signature nobody learns whether a file exists.
    if not signing.verify(hub.signing_key, sha256, exp, sig):
        raise HTTPException(
            403, detail={"code": "files.bad_signature", "message": "bad or expired signature"}
        )
    try:
        path = hub.files.path_for(sha256)
    except ValueError:  # not a sha256: no such file either
        path = None
    if path is None or not path.is_file():
        raise HTTPException(404, detail={"code": "files.not_found", "message": "no such file"})
    return FileResponse(path, media_type="text/x-gcode")
