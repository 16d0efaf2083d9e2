"""How a job on OctoPrint ended: from its PrintDone/PrintFailed event, or from the file's print record."""

from __future__ import annotations

from typing import Any, Literal

from drivers.base import JobOutcome
from drivers.octoprint.client import LastPrint

CANCELLED_ON_OCTOPRINT = "cancelled on OctoPrint (not by the hub)"
# The same, inferred after the fact (PrintFailed missed: hub down or push socket cut at that moment).
CANCELLED_ON_OCTOPRINT_INFERRED = (
    "cancelled on OctoPrint (not by the hub; inferred: OctoPrint recorded a failed print "
    "and showed no printer error)"
)
Verdict = tuple[JobOutcome, str | None]


def from_event(
    kind: str, payload: dict[str, Any], *, cancel_requested: bool, estop: bool, error: str | None
) -> Verdict:
    """`kind` is PrintDone or PrintFailed (docs "Events": PrintFailed's reason is "cancelled" or
    "error"); `error` is the last printer error the driver saw."""
    if kind == "PrintDone":
        return "completed", None
    if payload.get("reason") == "cancelled":
        if cancel_requested or estop:
            return "cancelled", None
        return "failed", CANCELLED_ON_OCTOPRINT
    reason = payload.get("error") or error or "the print failed on OctoPrint"
    return "cancelled" if estop else "failed", str(reason)


def from_record(
    record: LastPrint | Literal[False] | None,
    *,
    stopped_by_hub: bool,
    error: str | None,
    may_wait: bool,
) -> Verdict | None:
    """The file's `prints.last` (False: no such file) when its end event was missed; None: no verdict
    yet (the file was never printed, and `may_wait` says OctoPrint may still start it)."""
    if record is False:
        return "interrupted", "OctoPrint has no file for this job: it never started there"
    if record is None:
        if may_wait:
            return None
        return "interrupted", "OctoPrint holds the file but never printed it"
    if record.success:
        return "completed", None
    if stopped_by_hub:
        return "cancelled", error
    if error:
        return "failed", error
    # OctoPrint 1.11 records a failure without its reason (`prints.last` and `history` carry only
    # success, date, printer profile), and PrintFailed was missed. A firmware error leaves the printer
    # closed with the error until someone reconnects it; none was seen, so OctoPrint's user or a plugin
    # cancelled the print (or an error was cleared by a reconnect on OctoPrint before the hub looked:
    # that cannot be told apart).
    return "failed", CANCELLED_ON_OCTOPRINT_INFERRED
