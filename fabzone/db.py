"""Database engine and sessions (SQLite by default, PostgreSQL by URL) and the ordered schema migrations."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

ENV_URL = "FABZONE_DATABASE_URL"
# Milliseconds a SQLite writer waits for another writer's lock before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000
# Any fixed number: it only has to be the same in every hub process sharing one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x46_41_42_5A  # "FABZ"


def normalize_url(url: str) -> str:
    """`postgresql://` / `postgres://` (what docker-compose and libpq users write) → psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def database_url(url: str | None = None, *, data_dir: str | Path | None = None) -> str:
    """The URL to use: explicit, else `FABZONE_DATABASE_URL`, else a SQLite file in `data_dir` (or `.`)."""
    chosen = url or os.environ.get(ENV_URL)
    if chosen:
        return normalize_url(chosen)
    directory = Path(data_dir) if data_dir is not None else Path(".")
    return f"sqlite:///{(directory / 'fabzone.sqlite3').resolve()}"


def create_db_engine(url: str | None = None, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url` (see `database_url`); SQLite gets WAL, busy_timeout, FKs, BEGIN IMMEDIATE."""
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # pool_pre_ping: a hub outlives PostgreSQL restarts; a dead pooled connection is replaced, not raised.
        return create_engine(url, echo=echo, pool_pre_ping=True, **kwargs)

    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"check_same_thread": False, **kwargs.pop("connect_args", {})}
    engine = create_engine(url, echo=echo, connect_args=connect_args, **kwargs)
    _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: Engine) -> None:
    # SQLAlchemy's documented pysqlite recipe: turn off the driver's own (deferred, late) BEGIN and emit
    # ours. A deferred transaction that reads and then writes can fail at once with SQLITE_BUSY (a WAL
    # snapshot cannot be upgraded once another writer committed) — busy_timeout does not help there.
    # BEGIN IMMEDIATE takes the write lock up front, so every read-modify-write here (the scheduler's
    # claim above all) is serialised across threads and processes and waits its turn via busy_timeout.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL: readers (the API, the pages) never block the writer, and a killed process loses nothing
        # committed. synchronous=NORMAL is durable against a process crash in WAL mode.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def open_session(engine: Engine, *, readonly: bool = False) -> Session:
    """A short-lived session. Objects stay readable after commit (no lazy reload that reopens a transaction).

    `readonly=True` uses a deferred transaction on SQLite so a reader never waits for the write lock.
    """
    bind = engine.execution_options(sqlite_begin="DEFERRED") if readonly else engine
    return Session(bind, expire_on_commit=False)


# --- schema migrations -------------------------------------------------------------------------------
# A migration is (version, description, function(connection)). The list is append-only. A fresh database
# gets create_all() of the current models and is stamped with the latest version, so a later migration
# must both change the model in models.py and append a function that ALTERs an existing database, e.g.
#   (2, "job.material", lambda c: c.execute(text("ALTER TABLE job ADD COLUMN material VARCHAR(32)"))),
Migration = tuple[int, str, Callable[[Connection], None]]


def _v1_create_all(conn: Connection) -> None:
    from fabzone import models  # noqa: F401  (registers the tables on SQLModel.metadata)

    SQLModel.metadata.create_all(conn)


def _v2_tokens_and_maker_secret(conn: Connection) -> None:
    from fabzone.models import Token

    Token.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
    conn.execute(text("ALTER TABLE job ADD COLUMN maker_secret_hash VARCHAR(64)"))


MIGRATIONS: list[Migration] = [
    (1, "initial schema", _v1_create_all),
    (2, "technician tokens; job.maker_secret_hash", _v2_tokens_and_maker_secret),
]

SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER NOT NULL PRIMARY KEY, description VARCHAR(200) NOT NULL,"
    " applied_at VARCHAR(40) NOT NULL)"
)


def current_version(conn: Connection) -> int:
    return int(conn.execute(text("SELECT COALESCE(MAX(version), 0) FROM schema_version")).scalar_one())


def migrate(engine: Engine, migrations: list[Migration] | None = None) -> int:
    """Bring the schema up to date; safe to run from several hub processes at once. Returns the version."""
    migrations = MIGRATIONS if migrations is None else migrations
    versions = [v for v, _, _ in migrations]
    if versions != sorted(set(versions)) or (versions and versions[0] != 1):
        raise ValueError(f"migrations must be numbered 1, 2, … in order, got {versions}")
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two hubs starting together must not both run create_all / ALTER; the lock ends with the tx.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        # On SQLite the BEGIN IMMEDIATE of this transaction already serialises concurrent migrators.
        conn.execute(text(SCHEMA_VERSION_DDL))
        version = current_version(conn)
        now = datetime.now(UTC).isoformat()
        if version == 0:
            _v1_create_all(conn)
            for number, description, _ in migrations:
                _stamp(conn, number, f"{description} (created)", now)
            return versions[-1] if versions else 0
        for number, description, apply in migrations:
            if number > version:
                apply(conn)
                _stamp(conn, number, description, now)
        return max(version, versions[-1] if versions else 0)


def _stamp(conn: Connection, number: int, description: str, now: str) -> None:
    conn.execute(
        text("INSERT INTO schema_version (version, description, applied_at) VALUES (:v, :d, :a)"),
        {"v": number, "d": description, "a": now},
    )


def init_db(url: str | None = None, **kwargs: Any) -> Engine:
    """Engine + migrated schema: what the hub calls once at start."""
    engine = create_db_engine(url, **kwargs)
    migrate(engine)
    return engine
