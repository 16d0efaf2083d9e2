"""Engine setup and schema migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text

from fabzone import db


def test_normalize_url(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    assert db.normalize_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.normalize_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv(db.ENV_URL, "postgresql://u@h:5432/d")
    assert db.database_url() == "postgresql+psycopg://u@h:5432/d"
    monkeypatch.delenv(db.ENV_URL)
    assert db.database_url(data_dir="/srv/fz").endswith("/srv/fz/fabzone.sqlite3")


def test_migrate_is_idempotent_and_versioned(db_engine: Engine) -> None:
    latest = db.MIGRATIONS[-1][0]
    assert db.migrate(db_engine) == latest
    assert db.migrate(db_engine) == latest
    with db_engine.connect() as conn:
        assert db.current_version(conn) == latest
        rows = conn.execute(text("SELECT COUNT(*) FROM schema_version")).scalar_one()
    assert rows == len(db.MIGRATIONS)


def test_later_migration_applies_once(db_engine: Engine) -> None:
    calls = []

    def v2(conn: Connection) -> None:
        calls.append(conn)
        conn.execute(text("ALTER TABLE job ADD COLUMN material VARCHAR(32)"))

    nxt = db.MIGRATIONS[-1][0] + 1
    migrations = [*db.MIGRATIONS, (nxt, "job.material", v2)]
    assert db.migrate(db_engine, migrations) == nxt
    assert db.migrate(db_engine, migrations) == nxt
    assert len(calls) == 1
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(material) FROM job")).scalar_one() == 0
    with pytest.raises(ValueError):
        db.migrate(db_engine, [(nxt, "bad order", v2)])


def test_sqlite_pragmas(tmp_path: object) -> None:
    engine = db.init_db(f"sqlite:///{tmp_path}/sub/dir/f.sqlite3")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()
