"""Shared pytest fixtures: `db_url` / `db_engine` over SQLite (a temp file) and PostgreSQL (a fresh schema)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from fabzone.db import init_db, normalize_url

PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str:
    return normalize_url(os.environ.get("FABZONE_TEST_PG_URL", PG_DEFAULT_URL))


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL nobody else uses. PostgreSQL: a random schema set as search_path through the URL's
    `options`, so the URL alone (also in a subprocess) lands in it; dropped afterwards.

    PostgreSQL unreachable fails in CI (a broken setup); elsewhere (a newcomer's fresh machine) those
    tests skip with the reason and how to run them. FABZONE_TEST_NO_PG=1 skips them on purpose."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fabzone.sqlite3'}"
        return
    if os.environ.get("FABZONE_TEST_NO_PG") == "1":
        pytest.skip("FABZONE_TEST_NO_PG=1")
    base = make_url(pg_base_url())
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"fz_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        why = (
            f"PostgreSQL not reachable at {base.render_as_string()}: {exc}\n"
            "start it (apt-get install postgresql), or point FABZONE_TEST_PG_URL at one"
        )
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False
            )
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """An engine on `db_url` with the schema migrated."""
    engine = init_db(db_url)
    try:
        yield engine
    finally:
        engine.dispose()
