"""The `fabzone` command: `demo`, `serve`, and the client commands `submit`, `machines`, `jobs`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from fabzone import cli_tokens, client
from fabzone.auth import TokenError
from fabzone.config import ConfigError, Settings, build_settings, load_settings


def _run(settings: Settings) -> None:
    import uvicorn

    from fabzone.api import create_app

    logging.basicConfig(
        level=settings.hub.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The embedded broker (amqtt) and its state-machine library log every client step at INFO: a
    # technician reading the hub's log at 9 p.m. needs the hub's lines, not those.
    for noisy in ("amqtt", "transitions", "hbmqtt"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = create_app(settings)
    # No permessage-deflate: it would compress the same event once per client (the fan-out hot path);
    # the events are small JSON and the hall's network is local.
    uvicorn.run(
        app, host=settings.hub.host, port=settings.hub.port, log_level="warning", ws_per_message_deflate=False
    )


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(Path(args.config))
    except ConfigError as exc:
        print(f"fabzone: {exc}", file=sys.stderr)
        return 2
    if args.host:
        settings.hub.host = args.host
    if args.port:
        settings.hub.port = args.port
    _run(settings)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from fabzone.demo import demo_fleet, mqtt_fleet

    sims, machines = demo_fleet(args.printers, args.lasers, args.sim_speed)
    hub: dict[str, object] = {"host": args.host, "port": args.port, "data_dir": args.data_dir, "site": "demo"}
    if args.mqtt > 0:
        # No broker configured: an embedded one, so MQTT machines are in the demo on a fresh machine.
        mqtt_sims, mqtt_machines, mqtt_url = mqtt_fleet(
            args.mqtt, args.sim_speed, args.mqtt_url or os.environ.get("FABZONE_MQTT_URL") or None, "demo"
        )
        sims += mqtt_sims
        machines += mqtt_machines
        hub |= {"mqtt_url": mqtt_url, "mqtt_publish": True}
    data_dir = Path(args.data_dir)
    settings = build_settings({"hub": hub, "machines": machines}, "demo")
    try:
        token = cli_tokens.demo_token(settings, args.tech_token or os.environ.get("FABZONE_DEMO_TECH_TOKEN"))
    except TokenError as exc:
        print(f"fabzone: {exc}", file=sys.stderr)
        return 2
    print(f"fabzone demo: http://{args.host}:{args.port}/  (data in {data_dir.resolve()})")
    print(f"technician token: {token}  (log in at http://{args.host}:{args.port}/tech)", flush=True)
    try:
        _run(settings)
    finally:
        for sim in sims:
            sim.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fabzone", description="Hub for a digital fabrication zone")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the hub with a simulated fleet")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data-dir", default="./.fabzone-demo")
    demo.add_argument("--printers", type=int, default=3)
    demo.add_argument("--lasers", type=int, default=1)
    demo.add_argument("--mqtt", type=int, default=1, help="simulated MQTT machines (docs/mqtt.md)")
    demo.add_argument(
        "--mqtt-url", help="their broker (default: env FABZONE_MQTT_URL, else an embedded amqtt broker)"
    )
    demo.add_argument(
        "--sim-speed", type=float, default=10.0, help="simulated time runs this many times faster"
    )
    demo.add_argument(
        "--tech-token",
        help="use this technician token (default: env FABZONE_DEMO_TECH_TOKEN, else a new one)",
    )
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="the hub for the fleet in a config file")
    serve.add_argument("--config", default="fabzone.toml")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    client.add_commands(sub)
    cli_tokens.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
