"""`python -m drivers.sim <protocol> [options]`: run a simulator, print its port, stop on Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol


class _Simulator(Protocol):
    def start(self) -> str: ...
    def stop(self) -> None: ...


def _marlin() -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], Any]]:
    from drivers.sim import marlin

    return marlin.add_arguments, marlin.from_arguments


def _grbl() -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], Any]]:
    from drivers.sim import grbl

    return grbl.add_arguments, grbl.from_arguments


def _mqtt() -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], Any]]:
    from drivers.sim import mqtt

    return mqtt.add_arguments, mqtt.from_arguments


# One entry per protocol: (help, loader of (add_arguments, build)). `grbl` and `mqtt` go here.
SUBCOMMANDS: dict[str, tuple[str, Callable[[], tuple[Any, Any]]]] = {
    "marlin": ("a Marlin 2.1 printer on a pty", _marlin),
    "grbl": ("a GRBL 1.1h laser on a pty", _grbl),
    "mqtt": ("MQTT printers and lasers (docs/mqtt.md) on a broker; prints their URLs", _mqtt),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.sim", description=__doc__)
    sub = parser.add_subparsers(dest="protocol", required=True)
    builders: dict[str, Callable[[argparse.Namespace], _Simulator]] = {}
    for name, (help_text, load) in SUBCOMMANDS.items():
        add_arguments, build = load()
        add_arguments(sub.add_parser(name, help=help_text))
        builders[name] = build
    args = parser.parse_args(argv)
    sim = builders[args.protocol](args)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    port = sim.start()
    print(port, flush=True)
    try:
        while not done.wait(1.0):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
