"""A read-only PostgreSQL session (a hot standby's, or a read-only role's): the station opens,
verifies and serves its views there, and creates nothing.

A streaming-replication standby refuses every write as a session with
``default_transaction_read_only = on`` does; the test uses such a role on the test server (the
10-million-event bench, bench/scale.py, runs the same code on a real ``pg_basebackup`` standby).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from ledger.events import WorkflowError
from ledger.report import Verdict
from ledger.stores import persistence_env, postgres_read_only
from projections import queries
from projections.runner import Projector, Views
from services.station import Station
from services.verification import verify_station
from tests.conftest import make_settings, pg_dsn_or_skip
from tests.workflow import complete


@pytest.fixture
def read_only_role() -> Iterator[str]:
    """A login role whose sessions are read-only, dropped afterwards."""
    dsn = pg_dsn_or_skip()
    role = f"ro_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(role)))
        conn.execute(
            SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(Identifier(role))
        )
    yield role
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SQL("DROP OWNED BY {}").format(Identifier(role)))
        conn.execute(SQL("DROP ROLE {}").format(Identifier(role)))


def _as_role(schema_dsn: str, role: str) -> str:
    parts = urlparse(schema_dsn)
    host = f"{role}@{parts.hostname}:{parts.port or 5432}"
    return urlunparse(parts._replace(netloc=host))


def _tables(dsn: str, schema: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {r[0] for r in rows}


def test_a_station_verifies_and_reads_its_views_in_a_read_only_session(
    pg_schema: str, read_only_role: str, tmp_path: Path
) -> None:
    schema = pg_schema.rsplit("schema=", 1)[1]
    home = tmp_path / "home"
    with Station.initialise(make_settings(home, pg_schema)) as station:
        complete(station)
        donation = complete(station)
        donor = str(station.app.repository.get(donation).donor_id)
        with closing(Views.open(persistence_env(pg_schema))) as views:
            Projector(station.app.recorder, station.app.mapper, views).catch_up()
            expected = queries.donor_record(views, donor)
        assert expected is not None
        now = datetime.now(UTC)
        primary_report = verify_station(station, now=now)
    base = pg_dsn_or_skip()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            SQL("GRANT USAGE ON SCHEMA {} TO {}").format(*map(Identifier, (schema, read_only_role)))
        )
        conn.execute(
            SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                *map(Identifier, (schema, read_only_role))
            )
        )
    tables = _tables(base, schema)
    read_only = _as_role(pg_schema, read_only_role)
    assert postgres_read_only(persistence_env(read_only))
    assert not postgres_read_only(persistence_env(pg_schema))

    with Station.open(make_settings(home, read_only)) as replica:
        report = verify_station(replica)
    with closing(Views.open(persistence_env(read_only))) as replica_views:
        assert queries.donor_record(replica_views, donor) == expected

    assert report.verdict == Verdict.PASSED, report.issues()[:3]
    counts, primary_counts = report.counts(), primary_report.counts()
    for age in (counts, primary_counts):  # the oldest pending event's age: read at the clock
        age.pop("oldest_pending_seconds")
    assert counts == primary_counts
    assert _tables(base, schema) == tables  # nothing was created


def test_a_read_only_session_cannot_set_up_a_new_store(
    pg_schema: str, read_only_role: str, tmp_path: Path
) -> None:
    read_only = _as_role(pg_schema, read_only_role)
    with pytest.raises(WorkflowError, match="LEDGER_DB is read-only"):
        Station.initialise(make_settings(tmp_path / "home", read_only))
