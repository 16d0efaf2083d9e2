"""The Marlin connection handshake: boot lines, M110 N0, M115 with its capabilities, M155."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.base import HandshakeFailed
from drivers.marlin.replies import Capability, FirmwareError, FirmwareInfo, Ok, Reply, Start

# After the port opens an AVR board resets (DTR) and prints `start` and a few `echo:` lines about
# 1-2 s later; a board that does not reset says nothing. We wait for the line to fall quiet.
BOOT_QUIET_S = 0.3
BOOT_MAX_S = 2.5
# M110 is repeated at this interval until answered: one sent while the board boots is lost.
RETRY_S = 1.0


@dataclass
class FirmwareFacts:
    """What the handshake learnt about the firmware."""

    name: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    capabilities: dict[str, bool] = field(default_factory=dict)

    @property
    def emergency_parser(self) -> bool:
        return self.capabilities.get("EMERGENCY_PARSER", False)

    @property
    def autoreport_temp(self) -> bool:
        return self.capabilities.get("AUTOREPORT_TEMP", False)


class Handshake:
    """Runs on the caller's thread of `connect()`, reading the replies the reader thread queues."""

    def __init__(self, replies: queue.Queue[Reply], write: Callable[[bytes], None], deadline: float) -> None:
        self._replies = replies
        self._write = write
        self._deadline = deadline

    def _next(self, until: float) -> Reply | None:
        wait = min(until, self._deadline) - time.monotonic()
        if wait <= 0:
            return None
        try:
            return self._replies.get(timeout=wait)
        except queue.Empty:
            return None

    def _expired(self) -> bool:
        return time.monotonic() >= self._deadline

    def drain_boot(self) -> None:
        """Swallow `start`/`echo:` boot lines until the line has been quiet for a moment."""
        give_up = time.monotonic() + BOOT_MAX_S
        while time.monotonic() < give_up and not self._expired():
            reply = self._next(min(give_up, time.monotonic() + BOOT_QUIET_S))
            if reply is None:
                return

    def command(self, command: str, retry: bool = False) -> list[Reply]:
        """Write an unnumbered command and collect replies up to its `ok`."""
        collected: list[Reply] = []
        while True:
            self._write(command.encode() + b"\n")
            resend_at = time.monotonic() + RETRY_S if retry else self._deadline
            while True:
                reply = self._next(resend_at)
                if reply is None:
                    break
                if isinstance(reply, FirmwareError):
                    raise HandshakeFailed(f"the firmware answered {command} with Error:{reply.text}")
                if isinstance(reply, Start):
                    collected.clear()  # it rebooted under us: what came before is void
                    continue
                if isinstance(reply, Ok):
                    return collected
                collected.append(reply)
            if self._expired():
                raise HandshakeFailed(
                    f"no `ok` for {command}: is this a Marlin printer at the profile's baud?"
                )

    def run(self, status_interval_s: float) -> FirmwareFacts:
        self.drain_boot()
        self.command("M110 N0", retry=True)
        facts = FirmwareFacts()
        for reply in self.command("M115"):
            if isinstance(reply, FirmwareInfo):
                facts.name, facts.fields = reply.name, reply.fields
            elif isinstance(reply, Capability):
                facts.capabilities[reply.name] = reply.enabled
        if not facts.name:
            raise HandshakeFailed("M115 did not report FIRMWARE_NAME: not a Marlin firmware")
        if facts.autoreport_temp:
            self.command(f"M155 S{max(1, round(status_interval_s))}")
        return facts
