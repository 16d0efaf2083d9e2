"""The GRBL 1.1h simulator: a `GrblFirmware` core driven by a reader and a firmware thread over a pty."""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from drivers.profiles import Profile, get_profile
from drivers.sim import grbl_realtime as rt
from drivers.sim.grbl_core import GrblFaults, GrblFirmware, SimStats
from drivers.sim.pty_link import LinkClosed
from drivers.sim.transport import SimTransport

__all__ = ["GrblFaults", "GrblSimulator", "SimStats", "TimedFaults", "add_arguments", "from_arguments"]


@dataclass(frozen=True)
class TimedFaults:
    """Faults at a time, for a person at the command line: each happens once, this many seconds (wall
    clock) after the first G-code line the board runs, i.e. during the first job (a driver's handshake
    sends only `$` lines). Each maps onto the method a test would call."""

    alarm_after_s: float | None = None  # `alarm(alarm_code)`
    alarm_code: int = 1  # ALARM:1 hard limit: blocks until a reset, then locked (protocol.c)
    door_after_s: float | None = None  # `open_door()`
    door_close_after_s: float | None = None  # `close_door()`, this long after the door opened
    error_after_s: float | None = None  # `error_on_next_line(error_code)`
    error_code: int = 20  # error:20 unsupported or invalid g-code command

    def __post_init__(self) -> None:
        if self.door_close_after_s is not None and self.door_after_s is None:
            raise ValueError("closing the door needs a door that opened (door_after_s)")
        if any(t is not None and t < 0 for t in (self.alarm_after_s, self.door_after_s, self.error_after_s)):
            raise ValueError("fault times are seconds after the first G-code line, not negative")

    def plan(self, sim: GrblSimulator) -> list[tuple[float, Callable[[], None]]]:
        """(seconds after the first G-code line, action), in time order."""
        steps: list[tuple[float, Callable[[], None]]] = []
        if self.alarm_after_s is not None:
            steps.append((self.alarm_after_s, lambda: sim.alarm(self.alarm_code)))
        if self.door_after_s is not None:
            steps.append((self.door_after_s, sim.open_door))
            if self.door_close_after_s is not None:
                steps.append((self.door_after_s + self.door_close_after_s, sim.close_door))
        if self.error_after_s is not None:
            steps.append((self.error_after_s, lambda: sim.error_on_next_line(self.error_code)))
        return sorted(steps, key=lambda step: step[0])


class GrblSimulator(SimTransport[bool]):  # replies wait in `_txq`
    """A GRBL 1.1h laser controller on a pty (protocol details: grbl_core.py and the modules it uses).

    `start()` writes the boot banner and returns the slave path; open it with
    `serial.serial_for_url(path)`. pyserial's open() discards bytes already waiting, so a host that
    opens the port after `start()` does not see that banner (as with an adapter that does not reset
    the board on open): send 0x18, or call `reset()`, to get one.

    Choices where GRBL leaves room: moves have no acceleration (distance / feed, no axis above its
    $11x rate; G0 at the $110/$111 rates); a feed hold stops the head where it is and stays `Hold:1`
    for the deceleration time feed/$120; soft limits check 0..$13x (the machine's origin at 0, as with
    HOMING_FORCE_SET_ORIGIN); `$I` lists M7 (`[OPT:VM,…]`) only when the profile says
    `laser.enable_m7`, and the parser answers M7 error:20 on a build without it; jogging (`$J=`)
    answers error:20; a hard/soft limit alarm blocks everything, status reports included, until 0x18, as protocol.c does.
    With `motion=False` moves, dwells, homing and door restore delays take no time.
    """

    thread_prefix = "grbl-sim"

    def __init__(
        self,
        profile: Profile,
        *,
        speed: float = 1.0,
        baud: int | None = None,
        motion: bool = True,
        usb_latency_s: float = 0.0,
        settings: dict[int, float] | None = None,
        faults: GrblFaults | None = None,
        timed: TimedFaults | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(baud)
        self.profile = profile
        self.timed = timed or TimedFaults()
        self.usb_latency_s = usb_latency_s
        self._fw = GrblFirmware(
            profile,
            speed=speed,
            motion=motion,
            settings=settings,
            faults=faults or GrblFaults(),
            seed=seed,
            now=time.monotonic(),
        )
        # Replies in the order the firmware produced them: (time they reach the host, bytes).
        self._txq: deque[tuple[float, bytes]] = deque()
        self._tx_cond = threading.Condition(threading.Lock())
        self._direct = baud is None and usb_latency_s <= 0
        self._error_next: int | None = None

    # -- what tests and benchmarks look at ---------------------------------------------------------

    @property
    def executed(self) -> list[str]:
        """Every G-code line executed (planned or run), in order, as received. Kept across resets."""
        return self._fw.executed

    @property
    def checked(self) -> list[str]:
        """Lines answered in check mode (`$C`): parsed, never run."""
        return self._fw.checked

    @property
    def stats(self) -> SimStats:
        with self._lock:
            return self._fw.sync_stats()

    @property
    def wire_log(self) -> list[tuple[float, int]]:
        return self._fw.wire_log

    @property
    def laser_on_time_s(self) -> float:
        with self._lock:
            return self._fw.beam.on_time(time.monotonic())

    @property
    def laser_power_log(self) -> list[tuple[float, float]]:
        """(time.monotonic(), power) at every change of the beam's output (S units, 0 = off)."""
        return self._fw.beam.log

    @property
    def laser_power(self) -> float:
        return self._fw.beam.power

    @property
    def state(self) -> str:
        with self._lock:
            return self._fw.state_text()

    @property
    def settings(self) -> dict[int, float]:
        return self._fw.settings

    @property
    def firmware(self) -> GrblFirmware:
        """The core, for inspection (planner, modal state); take care, it is live."""
        return self._fw

    # -- life cycle ------------------------------------------------------------------------------------

    def start(self) -> str:
        port = self._open_link()
        targets = [(self._read_loop, "rx"), (self._firmware_loop, "fw")]
        if not self._direct:
            targets.append((self._write_loop, "tx"))
        if self.timed.plan(self):
            targets.append((self._timed_loop, "faults"))
        self._start_threads(targets)
        self._call(lambda now: self._fw.boot(now))
        return port

    def _wake_others(self) -> None:
        with self._tx_cond:
            self._tx_cond.notify_all()

    # -- faults a test triggers --------------------------------------------------------------------------

    def reset(self) -> None:
        """The reset button: like 0x18 (ALARM:3 if it was moving), then the banner."""
        self._call(lambda now: self._fw.soft_reset(now))

    def alarm(self, code: int) -> None:
        """`ALARM:<code>` now. 1 (hard limit) and 2 (soft limit) block until 0x18, then stay locked
        until `$X`; other codes reset at once and stay locked (protocol.c)."""
        self._call(lambda now: self._fw.alarm(code, now))

    def open_door(self) -> None:
        """The safety-door switch opens: `[MSG:Check Door]`, hold, laser and coolant off, `Pn:D`."""
        self._call(lambda now: rt.open_door(self._fw, now))

    def close_door(self) -> None:
        """The door closes: `Door:0`, resumable with `~`."""
        self._call(lambda now: rt.close_door(self._fw, now))

    def error_on_next_line(self, code: int) -> None:
        """The next line read is answered `error:<code>` (and not executed)."""
        with self._lock:
            self._fw.inject_error = code

    def _timed_loop(self) -> None:
        """Runs `timed`'s plan: waits for the first G-code line, then for each fault's time (outside the
        lock, as a test calling the method would)."""
        while not self.wait_for(lambda s: s._stopping or bool(s._fw.executed), 1.0):
            pass
        start = time.monotonic()
        for at, action in self.timed.plan(self):
            if self._stopping or self.wait_for(
                lambda s: s._stopping, max(0.0, start + at - time.monotonic())
            ):
                return
            action()

    def _call(self, action: Callable[[float], list[str]]) -> None:
        with self._lock:
            now = time.monotonic()
            self._queue(action(now), now)
            self._wake.notify_all()
            self._changed.notify_all()
        self._flush()

    # -- output ------------------------------------------------------------------------------------------

    def _queue(self, lines: list[str], now: float) -> None:
        """Called with the lock held, so replies keep the firmware's order."""
        if not lines:
            return
        data = ("\r\n".join(lines) + "\r\n").encode("latin-1", "replace")
        at = self._tx.arrival(len(data), now) + self.usb_latency_s
        if self._direct:
            self._txq.append((at, data))
            return
        with self._tx_cond:
            self._txq.append((at, data))
            self._tx_cond.notify()

    def _flush(self) -> None:
        if not self._direct or self._link is None:
            return
        with self._write_lock:
            chunks = []
            while self._txq:
                chunks.append(self._txq.popleft()[1])
            if chunks:
                with contextlib.suppress(LinkClosed):
                    self._link.write(b"".join(chunks))

    def _write_loop(self) -> None:
        """Replies reach the host after their time on the wire plus the USB adapter's latency."""
        link = self._link
        assert link is not None
        q = self._txq
        while True:
            with self._tx_cond:
                while not self._stopping and (not q or q[0][0] > time.monotonic()):
                    wait = None if not q else max(0.0, q[0][0] - time.monotonic())
                    self._tx_cond.wait(wait)
                if self._stopping:
                    return
                now = time.monotonic()
                chunks = []
                while q and q[0][0] <= now:
                    chunks.append(q.popleft()[1])
            try:
                link.write(b"".join(chunks))
            except LinkClosed:
                return

    # -- threads -----------------------------------------------------------------------------------------

    def _received(self, chunk: bytes) -> None:
        """Bytes that find the RX buffer full are lost, as on the board (the reader never stops)."""
        fw = self._fw
        with self._lock:
            now = time.monotonic()
            out = fw.receive(chunk, now)
            more, deadline = fw.step(now)
            self._queue(out + more, now)
            if deadline is not None and (self._fw_deadline is None or deadline < self._fw_deadline):
                self._wake.notify_all()
            self._changed.notify_all()
        self._flush()

    def _step(self, now: float) -> tuple[bool | None, float | None]:
        out, deadline = self._fw.step(now)
        self._queue(out, now)  # queued with the lock held, so replies keep the firmware's order
        return (True if out else None), deadline

    def _write_out(self, out: bool) -> None:
        self._flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `grbl` subcommand's options."""
    parser.add_argument("--profile", default="grbl-laser-400", help="firmware profile id")
    parser.add_argument(
        "--speed",
        "--sim-speed",  # as `fabzone demo --sim-speed`
        dest="speed",
        type=float,
        default=1.0,
        help="simulated time runs this much faster",
    )
    parser.add_argument("--baud", type=int, default=None, help="limit the wire to this baud rate")
    parser.add_argument("--no-motion", action="store_true", help="moves take no time")
    parser.add_argument(
        "--usb-latency-ms", type=float, default=0.0, help="delay of every reply (USB adapter)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="N=V", help="override a $-setting, e.g. 32=0"
    )
    parser.add_argument("--corrupt-rate", type=float, default=0.0, help="share of lines with a flipped bit")
    parser.add_argument("--seed", type=int, default=0)
    faults = parser.add_argument_group(
        "faults at a time",
        "seconds (wall clock) after the first G-code line the board runs (the job's), once",
    )
    faults.add_argument("--alarm-after", type=float, metavar="S", help="ALARM:N (the limit switch trips)")
    faults.add_argument("--alarm-code", type=int, default=1, metavar="N", help="default 1 (hard limit)")
    faults.add_argument("--door-after", type=float, metavar="S", help="the safety door opens")
    faults.add_argument("--door-close-after", type=float, metavar="S", help="and closes S seconds later")
    faults.add_argument("--error-after", type=float, metavar="S", help="the next line is answered error:N")
    faults.add_argument("--error-code", type=int, default=20, metavar="N", help="default 20")


def from_arguments(args: argparse.Namespace) -> GrblSimulator:
    settings: dict[int, float] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            settings[int(key.lstrip("$"))] = float(value)
        except ValueError:
            raise SystemExit(f"--set {item!r}: expected N=VALUE, e.g. 32=0") from None
    try:
        timed = TimedFaults(
            alarm_after_s=args.alarm_after,
            alarm_code=args.alarm_code,
            door_after_s=args.door_after,
            door_close_after_s=args.door_close_after,
            error_after_s=args.error_after,
            error_code=args.error_code,
        )
    except ValueError as exc:
        raise SystemExit(f"grbl: {exc}") from None
    return GrblSimulator(
        get_profile(args.profile),
        speed=args.speed,
        baud=args.baud,
        motion=not args.no_motion,
        usb_latency_s=args.usb_latency_ms / 1000.0,
        settings=settings,
        faults=GrblFaults(corrupt_rate=args.corrupt_rate),
        timed=timed,
        seed=args.seed,
    )
