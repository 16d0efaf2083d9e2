"""The arming gate of a laser: no byte of a job goes out until a technician at the machine confirms."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["armed", "timeout", "aborted"]


@dataclass
class ArmingGate:
    """One job waiting on one laser. The technician confirms operator present, lid closed and
    extraction on (`arm`); an emergency stop or a cancel `abort`s; otherwise it times out and the job
    goes back to the queue (another armed laser may take it)."""

    job_id: str
    timeout_s: float
    deadline: float = 0.0  # wall clock, for the pages' countdown
    _decided: asyncio.Event = field(default_factory=asyncio.Event)
    _outcome: Outcome | None = None

    def __post_init__(self) -> None:
        self.deadline = time.time() + self.timeout_s

    def arm(self) -> None:
        self._decide("armed")

    def abort(self) -> None:
        self._decide("aborted")

    def _decide(self, outcome: Outcome) -> None:
        if self._outcome is None:
            self._outcome = outcome
            self._decided.set()

    async def wait(self) -> Outcome:
        try:
            await asyncio.wait_for(self._decided.wait(), self.timeout_s)
        except TimeoutError:
            self._decide("timeout")
        assert self._outcome is not None
        return self._outcome

    def public(self) -> dict[str, object]:
        return {"job_id": self.job_id, "deadline": self.deadline}
