"""Client commands over the hub's HTTP API: submit a file (and watch it), list machines and jobs."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

DEFAULT_HUB = os.environ.get("FABZONE_HUB", "http://127.0.0.1:8000")
FINAL = {"completed", "failed", "cancelled", "rejected", "interrupted"}


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:5.1f}%"


def _bar(progress: float, width: int = 30) -> str:
    done = int(progress * width)
    return "[" + "#" * done + "-" * (width - done) + f"] {progress * 100:5.1f}%"


def _errors(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail", resp.text)
    except ValueError:
        return resp.text
    if isinstance(detail, dict):
        out = [str(detail.get("message", detail.get("code", "")))]
        for p in detail.get("profiles", []):
            out.append(f"  {p['name']} ({p['profile']}):")
            for r in p["reasons"]:
                where = f"line {r['line']}: " if r.get("line") else ""
                out.append(f"    {where}{r['message']}")
        return "\n".join(out)
    return str(detail)


def cmd_submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    data: dict[str, Any] = {"name": args.name or path.name, "language": args.language}
    if args.profile:
        data["profile"] = args.profile
    with httpx.Client(base_url=args.hub, timeout=120) as http, path.open("rb") as fh:
        resp = http.post("/api/jobs", files={"file": (path.name, fh, "text/x-gcode")}, data=data)
        if resp.status_code != 201:
            print(f"rejected ({resp.status_code}):\n{_errors(resp)}", file=sys.stderr)
            return 1
        job = resp.json()
        print(f"ticket {job['ticket']}  job {job['id']}  state {job['state']}")
        if not args.watch:
            return 0
        state = job["state"]
        shown = ""
        while state not in FINAL:
            time.sleep(0.5)
            job = http.get(f"/api/jobs/{job['id']}").json()
            if job["state"] != state:
                print(f"\n{job['state']}" + (f" on {job['machine_id']}" if job.get("machine_id") else ""))
                state = job["state"]
            bar = _bar(job.get("progress") or 0.0)
            if state in ("running", "paused") and bar != shown:
                print("\r" + bar, end="", flush=True)
                shown = bar
        print(f"\n{state}" + (f": {job['error']}" if job.get("error") else ""))
        return 0 if state == "completed" else 1


def cmd_machines(args: argparse.Namespace) -> int:
    rows = []
    for m in httpx.get(f"{args.hub}/api/machines", timeout=10).json():
        live = m.get("live", {})
        temps = " ".join(
            f"{k}:{v['actual']:.0f}/{v['target']:.0f}" for k, v in (live.get("temperatures") or {}).items()
        )
        rows.append(
            [
                m["id"],
                m["name"],
                m["profile"],
                m["state"],
                m.get("current_job_id") or "",
                _pct(live.get("progress")),
                temps,
                m.get("state_reason") or "",
            ]
        )
    print(_table(rows, ["ID", "NAME", "PROFILE", "STATE", "JOB", "PROGRESS", "TEMPS", "REASON"]))
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    params = {"state": args.state} if args.state else {}
    rows = []
    for j in httpx.get(f"{args.hub}/api/jobs", params=params, timeout=10).json():
        rows.append(
            [
                j["ticket"],
                j["display_name"],
                j["state"],
                j.get("machine_id") or "",
                _pct(j.get("progress")),
                j.get("queue_position") or "",
                j.get("error") or "",
            ]
        )
    print(_table(rows, ["TICKET", "NAME", "STATE", "MACHINE", "PROGRESS", "QUEUE", "ERROR"]))
    return 0


def _friendly(fn: Any) -> Any:
    """A hub that is down or unreachable is a one-line message, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except httpx.HTTPError as exc:
            print(f"fabzone: cannot reach the hub at {args.hub}: {exc}", file=sys.stderr)
            return 3

    return run


def add_commands(sub: Any) -> None:
    submit = sub.add_parser("submit", help="upload a G-code file as a job")
    submit.add_argument("file")
    submit.add_argument("--hub", default=DEFAULT_HUB)
    submit.add_argument("--name")
    submit.add_argument("--profile")
    submit.add_argument("--language", default="en", choices=["en", "it", "zh"])
    submit.add_argument("--watch", action="store_true", help="show progress until the job ends")
    submit.set_defaults(func=_friendly(cmd_submit))

    machines = sub.add_parser("machines", help="table of the machines")
    machines.add_argument("--hub", default=DEFAULT_HUB)
    machines.set_defaults(func=_friendly(cmd_machines))

    jobs = sub.add_parser("jobs", help="table of the jobs")
    jobs.add_argument("--hub", default=DEFAULT_HUB)
    jobs.add_argument("--state", help="comma-separated states, e.g. queued,running")
    jobs.set_defaults(func=_friendly(cmd_jobs))
