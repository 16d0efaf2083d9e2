"""The hub's commands to one MQTT device: send, resend until answered, expire, abort (docs/mqtt.md)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from drivers.base import DriverError, NotReady
from drivers.mqtt import contract

# An answer published just before a command's `expires_at` still has to cross the broker: the hub waits
# this much longer than the command lives before it calls the command unanswered.
ANSWER_SLACK_S = 1.0


class CommandFailed(NotReady):
    """The device answered a command with `ok: false` (its `code` and words in the message)."""


@dataclass
class Pending:
    """A command waiting for its `cmd/result`."""

    command: str
    job_id: str | None
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None
    # Why the hub stopped waiting without an answer: the job ended, the device restarted (it forgot
    # the command and must not get it again), or the driver closed.
    aborted: str | None = None


class Commands:
    """The commands in flight to the device under `prefix`. `lock` is the driver's own, so a command
    is registered atomically with the driver's `closed()` check and answered atomically with what the
    driver records about the answer (see `answer`)."""

    def __init__(
        self, prefix: str, lock: threading.Lock, *, resend_s: float, closed: Callable[[], bool]
    ) -> None:
        self.prefix = prefix
        self.resend_s = resend_s
        self._lock = lock
        self._closed = closed
        self._waiting: dict[str, Pending] = {}

    def send(
        self,
        client: mqtt.Client,
        command: str,
        job_id: str | None,
        args: dict[str, Any] | None = None,
        *,
        wait: float | None,
    ) -> dict[str, Any] | None:
        """Publish `command`; with `wait`, resend it until answered and return the `ok` answer."""
        cmd_id = uuid.uuid4().hex
        # A waited-for command lives exactly as long as the hub waits for it: a copy that reaches the
        # device later is refused as expired, so what the hub reported as unanswered never runs.
        expires_at = time.time() + (contract.COMMAND_TTL_S if wait is None else wait)
        payload = {
            "id": cmd_id,
            "expires_at": round(expires_at, 3),
            "job_id": job_id,
            "command": command,
            "args": args or {},
        }
        pending = Pending(command, job_id)
        with self._lock:
            # Under the lock close() takes: a command is either refused here or aborted by close().
            if self._closed():
                raise NotReady("not connected")
            self._waiting[cmd_id] = pending
        try:
            # QoS 1, never retained: paho keeps it across a broker outage and resends it (with DUP)
            # after reconnecting; the device drops the repeat by its id.
            raw = contract.dumps(payload)
            client.publish(f"{self.prefix}/cmd", raw, qos=contract.QOS, retain=False)
            if wait is None:
                return None
            deadline = time.monotonic() + wait + ANSWER_SLACK_S
            # Devices hold clean sessions: a command published while the device was reconnecting
            # reaches nobody. Sent again, same id, until answered: the device runs it once at most.
            # Not after it expired (the device would refuse it), nor once it was aborted.
            while not pending.done.wait(min(self.resend_s, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    raise DriverError(f"{command}: no answer from {self.prefix} within {wait:.0f} s")
                if time.time() < expires_at:
                    client.publish(f"{self.prefix}/cmd", raw, qos=contract.QOS, retain=False)
        finally:
            with self._lock:
                self._waiting.pop(cmd_id, None)
        answer = pending.answer
        if answer is None:
            raise NotReady(f"{command}: {pending.aborted}")
        if not answer.get("ok"):
            raise CommandFailed(
                f"{command} refused by the device: {answer.get('code')}: {answer.get('message')}"
            )
        return answer

    def answer(self, data: dict[str, Any]) -> Pending | None:
        """Record a `cmd/result`; the command it answers, or None (not ours, or a duplicate of an answer
        we have). Call it holding the lock, and set the returned command's `done` after releasing it."""
        pending = self._waiting.get(str(data.get("id")))
        if pending is None or pending.answer is not None:
            return None
        pending.answer = data
        return pending

    def abort(self, reason: str, job_id: str | None = None, *, keep: str | None = None) -> None:
        """Stop waiting for (and re-sending) the commands for `job_id`, or all of them; not `keep`."""
        with self._lock:
            pending = [
                p
                for p in self._waiting.values()
                if (job_id is None or p.job_id == job_id) and p.command != keep
            ]
            for p in pending:
                if p.answer is None and p.aborted is None:
                    p.aborted = reason
        for p in pending:
            p.done.set()
