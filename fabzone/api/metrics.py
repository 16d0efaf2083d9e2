"""`/metrics`: the hub's figures in Prometheus' text format (written by hand: no client library needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import func
from sqlmodel import col, select

from fabzone.api.deps import HubDep
from fabzone.db import open_session
from fabzone.hub import Hub
from fabzone.models import Job, Machine
from fabzone.states import JobState, MachineState

router = APIRouter(tags=["health"])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{shown}}} {value:g}" if shown else f"{name} {value:g}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(hub: Hub) -> str:
    with open_session(hub.engine, readonly=True) as session:
        jobs = dict(session.exec(select(Job.state, func.count()).group_by(col(Job.state))).all())
        machines = dict(
            session.exec(
                select(Machine.state, func.count())
                .where(col(Machine.enabled).is_(True))
                .group_by(col(Machine.state))
            ).all()
        )
    bus = hub.bus
    out = _Writer()
    # Every state appears, with 0 when empty, so a dashboard's series do not come and go.
    out.metric(
        "fabzone_machines",
        "gauge",
        "Machines by state.",
        [({"state": s.value}, machines.get(s, 0)) for s in MachineState],
    )
    out.metric(
        "fabzone_jobs", "gauge", "Jobs by state.", [({"state": s.value}, jobs.get(s, 0)) for s in JobState]
    )
    out.metric(
        "fabzone_queue_length", "gauge", "Jobs waiting for a machine.", [({}, jobs.get(JobState.QUEUED, 0))]
    )
    out.metric("fabzone_events_published_total", "counter", "Events published.", [({}, bus.published)])
    out.metric("fabzone_events_sent_total", "counter", "Events sent to WebSocket clients.", [({}, bus.sent)])
    out.metric("fabzone_websocket_clients", "gauge", "Connected WebSocket clients.", [({}, bus.client_count)])
    out.metric(
        "fabzone_websocket_dropped_clients_total",
        "counter",
        "WebSocket clients dropped for reading too slowly.",
        [({}, bus.dropped_clients)],
    )
    return out.text()


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(hub: HubDep) -> PlainTextResponse:
    return PlainTextResponse(render(hub), media_type=CONTENT_TYPE)
