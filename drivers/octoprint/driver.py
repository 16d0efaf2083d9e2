"""The OctoPrint driver: uploads a job and lets OctoPrint stream it; follows it by push socket or polling."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from drivers.base import (
    ConnectionChanged,
    ConnectionFailed,
    Driver,
    DriverError,
    DriverState,
    EventCallback,
    JobEnded,
    JobOutcome,
    NotReady,
)
from drivers.octoprint.client import JobInfo, OctoPrintClient, PrinterState, job_from, state_from
from drivers.octoprint.ending import from_event, from_record
from drivers.octoprint.push import Message, PushSocket
from drivers.octoprint.status import Following, read_state
from drivers.profiles import Profile

log = logging.getLogger(__name__)

POLL_S = 1.0
# A print that left OctoPrint's printer without a PrintDone/PrintFailed seen (socket down at that
# moment) is settled from the file's print record after this long.
SETTLE_S = 2.0
# OctoPrint unreachable this many polls in a row: the link is lost.
FAILED_POLLS = 2


def job_file_name(job_id: str) -> str:
    """One file per job: a retried start finds its own upload instead of printing it twice."""
    return f"fabzone-{job_id}.gcode"


class OctoPrintDriver(Driver):
    """A printer behind OctoPrint (`connection` is OctoPrint's base URL).

    OctoPrint streams the file itself, so a job outlives this process and the hub (`reattach`), and
    `close()` leaves a print running (unlike the serial drivers, it reports no `interrupted`).
    """

    protocol: ClassVar[str] = "octoprint"
    survives_host_restart: ClassVar[bool] = True

    def __init__(
        self,
        profile: Profile,
        connection: str,
        *,
        on_event: EventCallback | None = None,
        api_key: str | None = None,
        api_key_source: str | None = None,
        serial_port: str | None = None,
        baudrate: int | None = None,
    ) -> None:
        super().__init__(profile, connection, on_event=on_event)
        self._api_key = api_key or ""
        self._api_key_source = api_key_source or "the machine's api_key_env"
        self._serial_port = serial_port
        self._baudrate = baudrate or profile.baud
        self._client: OctoPrintClient | None = None
        self._push: PushSocket | None = None
        self._monitor: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._job_id: str | None = None
        self._total: int | None = None
        self._cancel_requested = False
        self._estop = False
        self._idle_since: float | None = None
        self._last_push = 0.0
        self._last_error: str | None = None
        self._temps: dict[str, Any] = {}
        self._closed = False
        self._pushed = 0
        self._polls = 0
        # OctoPrint's error found at connect, before the hub reconnected its printer: what ended a
        # print while nobody followed it (PrintFailed was missed; the print record keeps no reason).
        self._error_at_connect: str | None = None

    @property
    def following(self) -> Following:
        push = self._push
        return Following(
            push_logged_in=bool(push and push.connected),
            push_logins=push.logins if push else 0,
            push_reauths=push.reauths if push else 0,
            last_reauth_reason=push.last_reauth_reason if push else None,
            pushed=self._pushed,
            polls=self._polls,
        )

    # -- connection ----------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        if not self._api_key:
            raise ConnectionFailed(
                f"no OctoPrint API key: set the environment variable {self._api_key_source}"
            )
        client = OctoPrintClient(self.connection, self._api_key)
        self._client = client
        self._set_status(state=DriverState.CONNECTING, message=None)
        version = client.version()
        state = client.printer()
        self._error_at_connect = None
        if state is None or state.flag("error") or state.flag("closedOrError"):
            # Kept until the printer is reconnected: `GET /api/job`'s `error` (the printer is closed
            # after a firmware error), or the error state's own text.
            error = (state.error if state else None) or client.job().error
            self._error_at_connect = error or None
        if state is None or not state.operational:
            # OctoPrint is up but its serial link to the printer is not: open it (docs: api/connection).
            client.connect_printer(self._serial_port, self._baudrate)
            deadline = time.monotonic() + timeout
            while state is None or not state.operational:
                if time.monotonic() > deadline:
                    text = state.text if state else client.connection_state()
                    raise ConnectionFailed(f"OctoPrint could not connect to its printer ({text})")
                time.sleep(0.2)
                state = client.printer()
        self._set_status(
            state=DriverState.IDLE, firmware=version, temperatures=state.temperatures, message=None
        )
        self._stop.clear()
        self._push = PushSocket(client, self._on_push)
        self._push.start()
        self._monitor = threading.Thread(target=self._monitor_loop, name="octoprint-monitor", daemon=True)
        self._monitor.start()

    def close(self) -> None:
        """Stop following OctoPrint; a print goes on there and is found again by `reattach`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._push is not None:
            self._push.stop()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=5)
        if self._client is not None:
            self._client.close()
        self._set_status(state=DriverState.DISCONNECTED)

    @property
    def _file(self) -> str | None:
        """The job's file on OctoPrint (None: no job)."""
        job_id = self._job_id
        return None if job_id is None else job_file_name(job_id)

    def _require_client(self) -> OctoPrintClient:
        if self._client is None or self._closed:
            raise NotReady("not connected to OctoPrint")
        return self._client

    # -- jobs ----------------------------------------------------------------------------------

    def start_job(self, job_id: str, path: Path, total_lines: int | None = None) -> None:
        client = self._require_client()
        name = job_file_name(job_id)
        with self._lock:
            if self._job_id is not None:
                raise NotReady(f"OctoPrint is busy with job {self._job_id}")
        state = client.printer()
        if state is None or not state.operational:
            raise NotReady(f"OctoPrint's printer is not ready ({state.text if state else 'not connected'})")
        if state.busy:
            current = client.job().file_name
            if current == name:  # our own earlier start went through: follow it, never print twice
                self._adopt(job_id, total_lines)
                return
            raise NotReady(f"OctoPrint is printing something else ({current})")
        if client.last_print(name, missing_ok=True):
            raise NotReady(f"OctoPrint already printed {name}; not starting it twice")
        self._adopt(job_id, total_lines)
        try:
            result = client.upload_and_print(path, name)
        except DriverError:
            self._forget()
            raise
        if not result.effective_print:
            # 201 Created, but OctoPrint did not start it (docs: api/files, effectivePrint): its printer
            # was not ready, or the key's user lacks the PRINT permission (OctoPrint drops the flag).
            self._forget()
            self._delete(name)
            if result.effective_select:
                why = "the API key's user may select files but not print them (OctoPrint permission PRINT)"
            else:
                why = "its printer was not ready, or the API key's user may not select and print files"
            raise NotReady(f"OctoPrint stored the file but did not start the print: {why}")

    def reattach(self, job_id: str, total_lines: int | None = None) -> None:
        """Follow a job this process did not start (hub restart, OctoPrint outage). The job is still
        printing or paused: follow it. It ended meanwhile: report how, from OctoPrint's print record."""
        client = self._require_client()
        name = job_file_name(job_id)
        self._adopt(job_id, total_lines)
        state = client.printer()
        job = client.job()
        if state is not None and state.busy and job.file_name == name:
            self._update(state, job)
            return
        # It ended while nobody followed it. The print record says only success or failure; an error
        # OctoPrint still showed at connect is the likely reason of a failure.
        self._last_error = self._error_at_connect
        self._settle_from_record(client)

    def _adopt(self, job_id: str, total_lines: int | None) -> None:
        with self._lock:
            self._job_id = job_id
            self._total = total_lines
            self._cancel_requested = False
            self._estop = False
            self._idle_since = None
            self._last_error = None
        self._set_status(state=DriverState.RUNNING, job_id=job_id, lines_acked=0, lines_total=total_lines)

    def _forget(self) -> None:
        with self._lock:
            self._job_id = None
        self._set_status(state=DriverState.IDLE, job_id=None, lines_acked=0, lines_total=None)

    def _settle_from_record(self, client: OctoPrintClient) -> bool:
        """End the job from the file's `prints.last`; False when OctoPrint has no verdict yet."""
        name = self._file
        if name is None:
            return True
        since = self._idle_since
        verdict = from_record(
            client.last_print(name, missing_ok=True),
            stopped_by_hub=self._cancel_requested or self._estop,
            error=self._last_error,
            may_wait=since is not None and time.monotonic() - since < 10 * SETTLE_S,
        )
        if verdict is None:
            return False
        self._end(*verdict)
        return True

    def _end(self, outcome: JobOutcome, reason: str | None) -> None:
        with self._lock:
            job_id = self._job_id
            if job_id is None:
                return
            name = job_file_name(job_id)
            self._job_id = None
            lines = self.status.lines_acked
            if outcome == "completed" and self._total:
                lines = self._total
        error = self.status.state == DriverState.ERROR
        self._set_status(
            state=DriverState.ERROR if error else DriverState.IDLE,
            job_id=None,
            lines_acked=lines,
        )
        self._emit(JobEnded(job_id, outcome, lines, reason))
        # Right after a print OctoPrint still holds the file (analysis, selection): 409 "in use" for a
        # moment, so the delete retries on a thread of its own.
        threading.Thread(target=self._delete, args=(name, 10), daemon=True).start()

    def _delete(self, name: str, attempts: int = 1) -> None:
        for attempt in range(attempts):
            client = self._client
            if client is None or self._closed:
                return
            try:
                client.delete_file(name)
                return
            except NotReady:
                if attempt + 1 < attempts:
                    self._stop.wait(0.5)
            except DriverError as exc:
                log.warning("could not delete %s on OctoPrint: %s", name, exc)
                return
        log.warning("could not delete %s on OctoPrint: still in use", name)

    # -- commands ------------------------------------------------------------------------------

    def _require_job(self) -> OctoPrintClient:
        client = self._require_client()
        if self._job_id is None:
            raise NotReady("no job on this OctoPrint")
        return client

    def pause(self) -> None:
        self._require_job().pause()

    def resume(self) -> None:
        self._require_job().resume()

    def cancel(self) -> None:
        client = self._require_job()
        self._cancel_requested = True
        client.cancel()

    def emergency_stop(self) -> None:
        client = self._require_client()
        self._estop = True
        client.send_commands("M112")

    # -- following OctoPrint -------------------------------------------------------------------

    def _on_push(self, message: Message) -> None:
        if self._closed:
            return
        current = message.get("current")
        if isinstance(current, dict):
            self._last_push = time.monotonic()
            self._pushed += 1
            temps = current.get("temps") or []
            if temps and isinstance(temps[-1], dict):
                self._temps = temps[-1]
            self._update(state_from(current.get("state") or {}, self._temps), job_from(current))
        event = message.get("event")
        if isinstance(event, dict):
            self._on_octoprint_event(str(event.get("type")), event.get("payload") or {})

    def _on_octoprint_event(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "Error":
            self._last_error = str(payload.get("error") or "") or self._last_error
            return
        if payload.get("name") != self._file or kind not in ("PrintDone", "PrintFailed"):
            return
        by_hub, estop = self._cancel_requested, self._estop
        self._end(*from_event(kind, payload, cancel_requested=by_hub, estop=estop, error=self._last_error))

    def _update(self, state: PrinterState, job: JobInfo) -> None:
        with self._lock:
            seen, changes = read_state(state, job, job_file=self._file, total=self._total)
            following = self._job_id is not None
        if seen == "error":
            self._last_error = str(changes["message"])
        if seen == "printing":
            self._idle_since = None
        elif following and seen != "idle" and self._idle_since is None:
            # Our job is no longer printed: PrintDone/PrintFailed normally says how; if that was
            # missed, the file's print record does (checked in the monitor thread).
            self._idle_since = time.monotonic()
        self._set_status(**changes)

    def _monitor_loop(self) -> None:
        failures = 0
        while not self._stop.wait(POLL_S):
            client = self._client
            if client is None:
                return
            push = self._push
            pushing = push is not None and push.connected and time.monotonic() - self._last_push < 3 * POLL_S
            try:
                if not pushing:
                    self._polls += 1
                    state = client.printer()
                    if state is None:
                        raise ConnectionFailed(f"OctoPrint lost its printer ({client.connection_state()})")
                    self._update(state, client.job())
                since = self._idle_since
                if self._job_id is not None and since is not None and time.monotonic() - since > SETTLE_S:
                    self._settle_from_record(client)
                failures = 0
            except ConnectionFailed as exc:
                failures += 1
                if failures >= FAILED_POLLS:
                    self._set_status(state=DriverState.DISCONNECTED, message=str(exc))
                    self._emit(ConnectionChanged(False, str(exc)))
                    return
            except DriverError as exc:
                log.warning("OctoPrint %s: %s", self.connection, exc)
