"""What makes a simulated MQTT device refuse a command as malformed (docs/mqtt.md, Commands 3)."""

from __future__ import annotations

import re
from typing import Any

from drivers.mqtt import contract

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def invalid(cmd: dict[str, Any]) -> str | None:
    """What makes a command malformed (the schema's `command`), in words for the `invalid` answer; None
    when it is well formed. Checked before anything is read from it, so no field can raise later."""
    for key in ("ts", "expires_at"):
        if not contract.is_number(cmd.get(key)):
            return f"{key} must be a number (Unix seconds)"
    if not isinstance(cmd.get("command"), str):
        return "command must be a string"
    if "job_id" not in cmd:
        return "job_id is required (null when the command is for no job)"
    job_id = cmd["job_id"]
    if job_id is not None and not (isinstance(job_id, str) and job_id):
        return "job_id must be a non-empty string or null"
    args = cmd.get("args", {})
    if not isinstance(args, dict):
        return "args must be an object"
    if cmd["command"] == "start":
        if job_id is None:
            return "job_id: a start names the job it starts"
        url = args.get("url")
        if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            return "args.url must be an http(s) URL"
        sha = args.get("sha256")
        if not (isinstance(sha, str) and _SHA256.match(sha)):
            return "args.sha256 must be 64 lowercase hex digits"
        for key in ("size", "lines_total"):
            value = args.get(key)
            if value is not None and not (
                isinstance(value, int) and not isinstance(value, bool) and value >= 0
            ):
                return f"args.{key} must be a whole number, 0 or more"
    return None
