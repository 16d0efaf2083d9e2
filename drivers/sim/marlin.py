"""The Marlin simulator: a `MarlinFirmware` core driven by a reader thread and a firmware thread over a pty."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable

from drivers.profiles import Profile, get_profile
from drivers.sim.marlin_core import MarlinFaults, MarlinFirmware, SimStats
from drivers.sim.pty_link import LinkClosed
from drivers.sim.transport import SimTransport

__all__ = ["MarlinFaults", "MarlinSimulator", "SimStats", "add_arguments", "from_arguments"]


class MarlinSimulator(SimTransport[tuple[list[str], int]]):  # lines and their epoch
    """A Marlin 2.1 printer on a pty (protocol details: marlin_core.py, marlin_lines.py).

    `start()` returns the slave path; open it with `serial.serial_for_url(path)`. Opening the port does
    not reset the board (as on boards with native USB): the boot banner written by `start()` is
    discarded by pyserial's open(); `reset()` resets the board and writes `start` + boot lines.

    Choices where Marlin leaves room: moves have no acceleration (distance / feed, capped by the
    profile's feed_max); with `motion=False` moves, G4 and G28 take no time; heating runs at 3 °C/s
    (hotend) and 1 °C/s (bed) scaled by `speed`; keepalive (`busy:`) and heater reports while
    waiting use real seconds (`keepalive_s`, `temp_report_s`), since they exist for host timeouts;
    only numbered lines are corrupted by `corrupt_rate` (unnumbered ones carry no checksum to catch
    it). A line fragment left by an RX flush is executed unchecked, as on the real board.
    """

    thread_prefix = "marlin-sim"

    def __init__(
        self,
        profile: Profile,
        *,
        speed: float = 1.0,
        baud: int | None = None,
        motion: bool = True,
        faults: MarlinFaults | None = None,
        firmware: str = "Marlin 2.1.2",
        resend_with_ok: bool = True,
        autoreport: bool = True,
        seed: int = 0,
        keepalive_s: float = 2.0,
        temp_report_s: float = 1.0,
    ) -> None:
        super().__init__(baud)
        self.profile = profile
        self._fw = MarlinFirmware(
            profile,
            speed=speed,
            motion=motion,
            faults=faults or MarlinFaults(),
            firmware=firmware,
            resend_with_ok=resend_with_ok,
            autoreport=autoreport,
            seed=seed,
            keepalive_s=keepalive_s,
            temp_report_s=temp_report_s,
            now=time.monotonic(),
        )

    # -- what tests and benchmarks look at ---------------------------------------------------------

    @property
    def executed(self) -> list[str]:
        """Every command executed, in order, normalised (no N, no checksum). Kept across resets.

        Commands answered `Unknown command` did not run and are in `unknown` instead."""
        return self._fw.executed

    @property
    def unknown(self) -> list[str]:
        """Commands answered `Unknown command`, in order, as received (a damaged line or the fragment
        an RX flush left). Kept across resets."""
        return self._fw.unknown

    @property
    def stats(self) -> SimStats:
        with self._lock:
            return self._fw.sync_stats()

    @property
    def faults(self) -> MarlinFaults:
        return self._fw.faults

    @property
    def halted(self) -> bool:
        return self._fw.halted

    @property
    def firmware(self) -> MarlinFirmware:
        """The core, for inspection (temperatures, position, planner); take care, it is live."""
        return self._fw

    # -- life cycle ------------------------------------------------------------------------------------

    def start(self) -> str:
        port = self._open_link()
        with self._lock:
            self._fw._born = time.monotonic()
            banner, epoch = self._fw.boot(), self._fw.epoch
        self._start_threads([(self._read_loop, "rx"), (self._firmware_loop, "fw")])
        self._send(banner, epoch)
        return port

    # -- faults a test triggers --------------------------------------------------------------------------

    def reset(self) -> None:
        """Reset button / watchdog: the firmware forgets everything and writes `start` + boot lines."""
        self._call(lambda now: self._fw.reset(now))

    def thermal_runaway(self, heater: int | str = 0) -> None:
        """Marlin's thermal runaway lines, then the kill line; the board answers nothing more."""
        self._call(lambda now: self._fw.thermal_runaway(heater))

    def halt(self, reason: str = "") -> None:
        """kill(): `Error:Printer halted. kill() called!` and silence. `reason` is for the LCD only."""
        self._call(lambda now: self._fw.kill())

    def _call(self, action: Callable[[float], list[str]]) -> None:
        with self._lock:
            out = action(time.monotonic())
            epoch = self._fw.epoch
            self._wake.notify_all()
            self._changed.notify_all()
        self._send(out, epoch)

    # -- threads --------------------------------------------------------------------------------------------

    def _send(self, lines: list[str], epoch: int) -> None:
        if not lines or self._link is None:
            return
        data = ("\n".join(lines) + "\n").encode("latin-1", "replace")
        with self._write_lock:
            # A reset or kill since these lines were produced: they were never sent.
            if epoch != self._fw.epoch:
                return
            arrive = self._tx.arrival(len(data), time.monotonic())
            delay = arrive - time.monotonic()
            if delay > 0.0005:
                time.sleep(delay)
            with contextlib.suppress(LinkClosed):
                self._link.write(data)

    def _received(self, chunk: bytes) -> None:
        with self._lock:
            out = self._fw.receive(chunk, time.monotonic())
            epoch = self._fw.epoch
            while chunk and not self._stopping:
                chunk = self._fw.store(chunk)
                self._wake.notify_all()
                if chunk:
                    # The firmware is reading: let it empty the RX buffer, as it would between bytes.
                    self._changed.wait(0.05)
        if out:
            self._send(out, epoch)

    def _step(self, now: float) -> tuple[tuple[list[str], int] | None, float | None]:
        out, deadline = self._fw.step(now)
        return ((out, self._fw.epoch) if out else None), deadline

    def _write_out(self, out: tuple[list[str], int]) -> None:
        self._send(*out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `marlin` subcommand's options."""
    parser.add_argument("--profile", default="marlin-generic", help="firmware profile id")
    parser.add_argument(
        "--speed", "--sim-speed", type=float, default=1.0, help="simulated time runs this much faster"
    )
    parser.add_argument("--baud", type=int, default=None, help="limit the wire to this baud rate")
    parser.add_argument("--no-motion", action="store_true", help="moves take no time")
    parser.add_argument("--corrupt-rate", type=float, default=0.0, help="share of lines with a flipped bit")
    parser.add_argument("--drop-ok-rate", type=float, default=0.0, help="share of `ok`s lost")
    parser.add_argument("--old-resend", action="store_true", help="`Resend:` without `ok` (pre-2.1)")
    parser.add_argument("--no-autoreport", action="store_true", help="no M155 / AUTOREPORT_TEMP")
    parser.add_argument("--thermal-runaway-after", type=float, default=None, metavar="S")
    parser.add_argument("--reset-after-lines", type=int, default=None, metavar="N")
    parser.add_argument("--firmware", default="Marlin 2.1.2")
    parser.add_argument("--seed", type=int, default=0)


def from_arguments(args: argparse.Namespace) -> MarlinSimulator:
    faults = MarlinFaults(
        corrupt_rate=args.corrupt_rate,
        drop_ok_rate=args.drop_ok_rate,
        thermal_runaway_after_s=args.thermal_runaway_after,
        reset_after_lines=args.reset_after_lines,
    )
    return MarlinSimulator(
        get_profile(args.profile),
        speed=args.speed,
        baud=args.baud,
        motion=not args.no_motion,
        faults=faults,
        firmware=args.firmware,
        resend_with_ok=not args.old_resend,
        autoreport=not args.no_autoreport,
        seed=args.seed,
    )
