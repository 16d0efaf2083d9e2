"""Following OctoPrint's printer state and job (push `current` or REST poll): what they mean, and how."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from drivers.base import DriverState
from drivers.octoprint.client import JobInfo, PrinterState

# error: the printer is in an error; printing: our job prints (or is paused); left: our job, but
# OctoPrint no longer prints it (an end event, or else the print record, says how); idle: no job.
Seen = Literal["error", "printing", "left", "idle"]


def read_state(
    state: PrinterState, job: JobInfo, *, job_file: str | None, total: int | None
) -> tuple[Seen, dict[str, object]]:
    """What OctoPrint shows while the driver follows `job_file` (None: no job), and the status changes
    it makes (`message` carries the error's text)."""
    if state.flag("error") or (state.flag("closedOrError") and not state.operational):
        error = state.error or state.text
        return "error", {"state": DriverState.ERROR, "message": error, "temperatures": state.temperatures}
    ours = job.file_name is not None and job.file_name == job_file
    if job_file is not None and ours and state.busy:
        paused = state.flag("paused") or state.flag("pausing")
        return "printing", {
            "state": DriverState.PAUSED if paused else DriverState.RUNNING,
            "lines_acked": int((job.completion or 0) / 100 * total) if total else 0,
            "temperatures": state.temperatures,
            "message": None,
            "extra": {"completion": job.completion, "filepos": job.filepos},
        }
    if job_file is not None:
        return "left", {"temperatures": state.temperatures}
    return "idle", {"state": DriverState.IDLE, "temperatures": state.temperatures, "message": None}


@dataclass(frozen=True)
class Following:
    """How the driver follows OctoPrint right now (a read-only snapshot for diagnostics and tests).

    `push_logged_in`: the push socket is up and logged in (OctoPrint sends status only to a logged-in
    socket whose user may see it); `push_logins`: sockets that logged in so far; `push_reauths`:
    `reauthRequired` messages OctoPrint sent (`last_reauth_reason`: "modified", "logout", "stale",
    "removed"); `pushed`: `current` status messages applied; `polls`: REST polls of printer and job,
    made only while the push socket is down or silent."""

    push_logged_in: bool
    push_logins: int
    push_reauths: int
    last_reauth_reason: str | None
    pushed: int
    polls: int
