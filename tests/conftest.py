"""Shared fixtures: a station per test on SQLite or PostgreSQL, keys made at test time."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.sql import SQL, Identifier
from pydantic import SecretStr

from services.settings import Settings
from services.station import Station

PG_DSN_ENV = "LEDGER_TEST_PG_DSN"
REQUIRE_PG_ENV = "LEDGER_TEST_REQUIRE_PG"


def pg_dsn_or_skip() -> str:
    """The test PostgreSQL DSN; skip visibly without one, fail when CI requires it."""
    dsn = os.environ.get(PG_DSN_ENV)
    required = os.environ.get(REQUIRE_PG_ENV) == "1"
    reason = ""
    if not dsn:
        reason = f"{PG_DSN_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    else:
        try:
            with psycopg.connect(dsn, connect_timeout=5):
                pass
        except psycopg.OperationalError as exc:
            reason = f"PostgreSQL at {PG_DSN_ENV} is unreachable: {exc}"
    if reason:
        if required:
            pytest.fail(f"{REQUIRE_PG_ENV}=1 but {reason}")
        pytest.skip(reason)
    assert dsn is not None
    return dsn


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema on the test server, dropped afterwards. Yields a ledger DSN using it."""
    dsn = pg_dsn_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{dsn}?schema={schema}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))


StationFactory = Callable[[], Station]


def make_settings(home: Path, db: str) -> Settings:
    return Settings(
        db=db, home=home, passphrase=SecretStr("test-only-passphrase"), station_id="TEST-01"
    )


@pytest.fixture(params=["sqlite", "postgres"])
def backend_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    schema_dsn: str = request.getfixturevalue("pg_schema")
    return schema_dsn


@pytest.fixture
def station(tmp_path: Path, backend_db: str) -> Iterator[Station]:
    with Station.initialise(make_settings(tmp_path / "home", backend_db)) as st:
        yield st


@pytest.fixture
def sqlite_station(tmp_path: Path) -> Iterator[Station]:
    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with Station.initialise(make_settings(tmp_path / "home", db)) as st:
        yield st


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment of the `ledger` command for a station in *tmp_path* (SQLite
    ``ledger.sqlite``, home ``home``), as `make_settings` has it."""
    monkeypatch.setenv("LEDGER_DB", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LEDGER_PASSPHRASE", "test-only-passphrase")
    monkeypatch.setenv("LEDGER_STATION_ID", "TEST-01")
    return tmp_path
