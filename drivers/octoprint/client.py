"""A small typed client for the parts of OctoPrint's REST API the driver uses (httpx, timeouts on every call)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from drivers.base import ConnectionFailed, DriverError, NotReady, Temperature

# OctoPrint answers quickly or not at all; an upload of a large file gets its own, longer budget.
TIMEOUT_S = 5.0
UPLOAD_TIMEOUT_S = 120.0


class BadApiKey(ConnectionFailed):
    """403: OctoPrint refused the API key (wrong, revoked, or its user lacks the permission)."""


class WrongState(NotReady):
    """409: the printer is not in a state for this (not connected, already printing, file in use)."""


class OctoPrintError(DriverError):
    """Any other answer OctoPrint gave with an error status (400, 404, 415, 5xx); `status` is it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PrinterState:
    """`GET /api/printer` (or a push `current` message): flags are the truth, `text` is for people."""

    text: str
    flags: dict[str, bool]
    temperatures: dict[str, Temperature] = field(default_factory=dict)
    error: str | None = None

    def flag(self, name: str) -> bool:
        return bool(self.flags.get(name))

    @property
    def operational(self) -> bool:
        return self.flag("operational")

    @property
    def busy(self) -> bool:
        """A print holds the printer (also while pausing or cancelling)."""
        return any(self.flag(f) for f in ("printing", "paused", "pausing", "cancelling", "resuming"))


@dataclass(frozen=True)
class JobInfo:
    """`GET /api/job`: the selected file and how far the print is."""

    file_name: str | None
    completion: float | None  # percent
    filepos: int | None
    state: str
    error: str | None = None


@dataclass(frozen=True)
class UploadResult:
    name: str
    effective_select: bool
    effective_print: bool


@dataclass(frozen=True)
class LastPrint:
    """What OctoPrint remembers of the last print of a file (`prints.last` in the file's metadata)."""

    success: bool
    date: float | None


def temperatures_from(data: dict[str, Any]) -> dict[str, Temperature]:
    """`{"tool0": {"actual": .., "target": ..}, "bed": {...}, "time": ..}` -> our Temperature map."""
    out: dict[str, Temperature] = {}
    for name, value in data.items():
        if isinstance(value, dict) and value.get("actual") is not None:
            out[name] = Temperature(float(value["actual"]), float(value.get("target") or 0.0))
    return out


def state_from(data: dict[str, Any], temps: dict[str, Any] | None = None) -> PrinterState:
    return PrinterState(
        text=str(data.get("text") or ""),
        flags={k: bool(v) for k, v in (data.get("flags") or {}).items()},
        temperatures=temperatures_from(temps or {}),
        error=data.get("error") or None,
    )


def job_from(data: dict[str, Any]) -> JobInfo:
    job = data.get("job") or {}
    progress = data.get("progress") or {}
    state = data.get("state")
    text = state.get("text") if isinstance(state, dict) else state
    return JobInfo(
        file_name=(job.get("file") or {}).get("name"),
        completion=progress.get("completion"),
        filepos=progress.get("filepos"),
        state=str(text or ""),
        error=data.get("error") or (state.get("error") if isinstance(state, dict) else None) or None,
    )


class OctoPrintClient:
    """One OctoPrint server. Raises BadApiKey (403), WrongState (409), ConnectionFailed (unreachable,
    timeout) and OctoPrintError (anything else); methods are safe to call from several threads."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        # X-Api-Key is one of the three ways OctoPrint accepts a key (docs: api/general, Authorization).
        self._http = httpx.Client(base_url=self.base_url, headers={"X-Api-Key": api_key}, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(f"OctoPrint at {self.base_url} did not answer in time ({exc})") from exc
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"OctoPrint at {self.base_url} unreachable: {exc}") from exc
        if response.status_code < 400:
            return response
        # OctoPrint's errors are `{"error": "..."}` (docs: api/general, Error handling).
        try:
            detail = str(response.json().get("error") or response.text)
        except ValueError:
            detail = response.text.strip()[:200]
        where = f"{method} {path}"
        if response.status_code == 403:
            raise BadApiKey(f"OctoPrint at {self.base_url} refused the API key (403): {detail}")
        if response.status_code == 409:
            raise WrongState(f"OctoPrint: printer not ready for {where} (409): {detail}")
        if response.status_code == 415:
            raise OctoPrintError(f"OctoPrint refused the file type (415; upload as .gcode): {detail}", 415)
        raise OctoPrintError(
            f"OctoPrint answered {response.status_code} to {where}: {detail}", response.status_code
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {}

    # -- server and printer connection ---------------------------------------------------------

    def version(self) -> str:
        """`GET /api/version`; while OctoPrint starts, its intermediary server answers 404 here."""
        data = self._json("GET", "/api/version")
        return str(data.get("text") or f"OctoPrint {data.get('server', '?')}")

    def connection_state(self) -> str:
        return str((self._json("GET", "/api/connection").get("current") or {}).get("state") or "")

    def connect_printer(self, port: str | None, baudrate: int | None) -> None:
        """Ask OctoPrint to open its serial link; 204 at once, the state changes later. Without a
        port or baud rate OctoPrint uses its own configured defaults."""
        body: dict[str, Any] = {"command": "connect", "autoconnect": False}
        if port:
            body["port"] = port
        if baudrate:
            body["baudrate"] = baudrate
        self._request("POST", "/api/connection", json=body)

    def printer(self) -> PrinterState | None:
        """`GET /api/printer`; None when OctoPrint's printer is not connected (OctoPrint says 409)."""
        try:
            data = self._json("GET", "/api/printer", params={"exclude": "sd"})
        except WrongState:
            return None
        return state_from(data.get("state") or {}, data.get("temperature") or {})

    def login_passive(self) -> tuple[str, str]:
        """`POST /api/login {"passive": true}` with the key: the user's name and a session for the
        push socket's `auth` message (docs: api/push, Authentication)."""
        data = self._json("POST", "/api/login", json={"passive": True})
        name, session = data.get("name"), data.get("session")
        if not name or not session:
            raise BadApiKey(f"OctoPrint at {self.base_url} gave no session for the API key's user")
        return str(name), str(session)

    # -- files and jobs ------------------------------------------------------------------------

    def upload_and_print(self, path: Path, name: str) -> UploadResult:
        """Upload to `local` with select+print. OctoPrint answers 201 even when it could not start
        the print (printer not operational): the caller must read `effective_print`."""
        with path.open("rb") as fh:
            data = self._json(
                "POST",
                "/api/files/local",
                files={"file": (name, fh, "application/octet-stream")},
                data={"select": "true", "print": "true"},
                timeout=UPLOAD_TIMEOUT_S,
            )
        stored = ((data.get("files") or {}).get("local") or {}).get("name") or name
        return UploadResult(
            name=str(stored),
            effective_select=bool(data.get("effectiveSelect")),
            effective_print=bool(data.get("effectivePrint")),
        )

    def last_print(self, name: str, *, missing_ok: bool = False) -> LastPrint | Literal[False] | None:
        """The file's `prints.last` (None: never printed to its end or failure; False: no such file)."""
        try:
            data = self._json("GET", f"/api/files/local/{quote(name)}")
        except OctoPrintError as exc:
            if missing_ok and exc.status == 404:
                return False
            raise
        last = (data.get("prints") or {}).get("last")
        if not isinstance(last, dict):
            return None
        return LastPrint(success=bool(last.get("success")), date=last.get("date"))

    def delete_file(self, name: str) -> None:
        """Remove an uploaded job file; a file that is gone already is fine."""
        try:
            self._request("DELETE", f"/api/files/local/{quote(name)}")
        except OctoPrintError as exc:
            if exc.status != 404:
                raise

    def job(self) -> JobInfo:
        return job_from(self._json("GET", "/api/job"))

    def pause(self) -> None:
        # "pause"/"resume" actions are explicit; "toggle" would race with a pause the printer made itself.
        self._request("POST", "/api/job", json={"command": "pause", "action": "pause"})

    def resume(self) -> None:
        self._request("POST", "/api/job", json={"command": "pause", "action": "resume"})

    def cancel(self) -> None:
        self._request("POST", "/api/job", json={"command": "cancel"})

    def send_commands(self, *commands: str) -> None:
        """`POST /api/printer/command`: OctoPrint sends M112 at once, ahead of its queue."""
        self._request("POST", "/api/printer/command", json={"commands": list(commands)})
