"""`fabzone token create|list|revoke`: technician tokens, straight on the hub's database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import Engine

from fabzone import auth, db
from fabzone.config import ConfigError, Settings, build_settings, load_settings

DEMO_DATA_DIR = "./.fabzone-demo"


def settings_for(args: argparse.Namespace) -> Settings:
    """`--config fabzone.toml` (a real hall), else `--data-dir` (the demo's, ./.fabzone-demo by default);
    `FABZONE_DATABASE_URL` overrides either, as it does for the hub."""
    if args.config:
        return load_settings(Path(args.config))
    return build_settings({"hub": {"data_dir": args.data_dir or DEMO_DATA_DIR}}, "token")


def open_engine(settings: Settings) -> Engine:
    settings.hub.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.create_db_engine(settings.database_url)
    db.migrate(engine)  # a token may be made before the hub ever ran on this database
    return engine


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"  # type: ignore[attr-defined]


def cmd_token(args: argparse.Namespace) -> int:
    try:
        engine = open_engine(settings_for(args))
    except ConfigError as exc:
        print(f"fabzone: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "create":
            token = auth.create_token(engine, args.name)
            # The token alone on stdout (for TOKEN=$(fabzone token create …)); the advice on stderr.
            print(f"technician token {args.name!r}; shown only now, keep it safe:", file=sys.stderr)
            print(token)
        elif args.action == "revoke":
            auth.revoke_token(engine, args.name)
            print(f"revoked {args.name}")
        else:
            rows = auth.list_tokens(engine)
            print(f"{'NAME':<24} {'CREATED':<22} {'LAST USED':<22} REVOKED")
            for t in rows:
                print(
                    f"{t.name:<24} {_when(t.created_at):<22} {_when(t.last_used_at):<22} {_when(t.revoked_at)}"
                )
    except auth.TokenError as exc:
        print(f"fabzone: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    token = sub.add_parser("token", help="technician tokens: create, list, revoke")
    actions = token.add_subparsers(dest="action", required=True)
    for name, help_ in [
        ("create", "make a token and print it (once)"),
        ("list", "name, created, last used, revoked"),
        ("revoke", "the token stops working at once"),
    ]:
        action = actions.add_parser(name, help=help_)
        if name != "list":
            action.add_argument("name")
        where = action.add_mutually_exclusive_group()
        where.add_argument("--config", help="the hall's fleet file (its database)")
        where.add_argument("--data-dir", help=f"a hub's data directory (default {DEMO_DATA_DIR})")
        action.set_defaults(func=cmd_token)


def demo_token(settings: Settings, token: str | None) -> str:
    """The demo's technician token (named `demo`): the given one, else a new one each start."""
    engine = open_engine(settings)
    try:
        return auth.create_token(engine, "demo", token, replace=True)
    finally:
        engine.dispose()
