"""The GRBL connection handshake: banner (soft reset if none), `$$` settings, `$I` build options, state."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.base import ConnectionFailed, HandshakeFailed
from drivers.grbl.codes import error_message
from drivers.grbl.replies import Banner, Bracket, LineError, Message, Ok, Reply, Setting, StatusReport

# An Arduino resets when the port opens (DTR) and prints its banner ~1 s later; a board that does not
# reset printed it long ago and pyserial's open() discarded it. After this long without a banner we
# soft-reset (0x18), which makes GRBL print one (notes/grbl.md).
BANNER_WAIT_S = 1.2
STATUS_RETRY_S = 0.5
RESET = b"\x18"


@dataclass(frozen=True)
class ConnectionLost:
    """Put in the handshake queue by the reader when the link drops."""

    reason: str


@dataclass
class GrblFacts:
    """What the handshake learnt about the controller."""

    version: str = ""
    settings: dict[int, float] = field(default_factory=dict)
    options: str | None = None  # the build's option letters of `[OPT:V,15,128]` (M: ENABLE_M7)
    planner_blocks: int | None = None
    rx_buffer_bytes: int | None = None
    locked: bool = False  # `[MSG:'$H'|'$X' to unlock]` or state Alarm after the banner
    state: StatusReport | None = None


class Handshake:
    """Runs on the caller's thread of `connect()`, reading the replies the reader thread queues."""

    def __init__(
        self, replies: queue.Queue[Reply | ConnectionLost], write: Callable[[bytes], None], deadline: float
    ) -> None:
        self._replies = replies
        self._write = write
        self._deadline = deadline
        self.facts = GrblFacts()

    def _next(self, until: float) -> Reply | None:
        wait = min(until, self._deadline) - time.monotonic()
        if wait <= 0:
            return None
        try:
            reply = self._replies.get(timeout=wait)
        except queue.Empty:
            return None
        if isinstance(reply, ConnectionLost):
            raise ConnectionFailed(reply.reason)
        if isinstance(reply, Message) and "unlock" in reply.text:
            self.facts.locked = True
        return reply

    def banner(self) -> None:
        """Wait for `Grbl 1.1x ['$' for help]`; soft-reset if it does not come by itself (and again
        every BANNER_WAIT_S: a reset byte sent while the board still boots is lost)."""
        reset_at = time.monotonic() + BANNER_WAIT_S
        while time.monotonic() < self._deadline:
            reply = self._next(reset_at)
            if isinstance(reply, Banner):
                self._banner(reply)
                return
            if time.monotonic() >= reset_at:
                self._write(RESET)
                reset_at = time.monotonic() + BANNER_WAIT_S
        raise HandshakeFailed(
            "no GRBL banner, even after a soft reset: is this a GRBL controller at the baud?"
        )

    def _banner(self, banner: Banner) -> None:
        if not banner.version.startswith("1.1"):
            raise HandshakeFailed(f"GRBL {banner.version} is not 1.1: its protocol differs")
        self.facts.version = banner.version
        self.facts.locked = False

    def command(self, line: str, *, optional: bool = False) -> list[Reply] | None:
        """Write a `$` command, collect the lines up to its `ok`. A banner meanwhile means GRBL reset
        and emptied its RX buffer (our line with it): write it again. `optional`: None on `error:N`."""
        collected: list[Reply] = []
        self._write(line.encode("ascii") + b"\n")
        while True:
            reply = self._next(self._deadline)
            if reply is None:
                raise HandshakeFailed(f"no answer to {line} from the GRBL controller")
            if isinstance(reply, Banner):
                self._banner(reply)
                collected.clear()
                self._write(line.encode("ascii") + b"\n")
            elif isinstance(reply, Ok):
                return collected
            elif isinstance(reply, LineError):
                if optional:
                    return None
                raise HandshakeFailed(f"GRBL answered {line} with {error_message(reply.code)}")
            else:
                collected.append(reply)

    def status(self) -> StatusReport:
        """A `?` report (realtime: answered even while GRBL is busy or locked)."""
        while True:
            self._write(b"?")
            until = time.monotonic() + STATUS_RETRY_S
            while (reply := self._next(until)) is not None:
                if isinstance(reply, StatusReport):
                    return reply
            if time.monotonic() >= self._deadline:
                raise HandshakeFailed("GRBL does not answer status requests ('?')")

    def run(self) -> GrblFacts:
        self.banner()
        replies = self.command("$$")
        assert replies is not None
        self.facts.settings = {r.number: r.value for r in replies if isinstance(r, Setting)}
        build = self.command("$I", optional=True) or []
        for r in build:
            if isinstance(r, Bracket) and r.key == "OPT":
                # `[OPT:V,15,128]`: option letters, planner blocks, RX buffer bytes (report.c).
                fields = r.value.split(",")
                self.facts.options = fields[0]
                if len(fields) >= 3 and fields[1].isdigit() and fields[2].isdigit():
                    self.facts.planner_blocks, self.facts.rx_buffer_bytes = int(fields[1]), int(fields[2])
        self.facts.state = self.status()
        if self.facts.state.state == "Alarm":
            self.facts.locked = True
        return self.facts
