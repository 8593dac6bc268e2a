"""The PostgreSQL recorder keeps eventsourcing's retry: after the server ends our sessions
(a restart, a failover, pg_terminate_backend), the next write succeeds without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from services.station import Station
from services.verification import verify_station
from tests.conftest import make_settings
from tests.workflow import complete, register


@pytest.fixture
def pg_station(tmp_path: Path, pg_schema: str) -> Iterator[Station]:
    with Station.initialise(make_settings(tmp_path / "home", pg_schema)) as station:
        yield station


def _terminate_our_sessions(station: Station, dsn: str) -> int:
    """End every server session of the station's connection pool (only ours: other tests share
    the server)."""
    datastore: Any = station.app.recorder.datastore  # type: ignore[attr-defined]
    with datastore.get_connection() as conn:
        pids = {conn.info.backend_pid}
    pids |= {c.info.backend_pid for c in list(datastore.pool._pool)}  # idle pooled connections
    with psycopg.connect(dsn.split("?")[0], autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return len(pids)


def test_a_write_after_the_server_ended_the_session_succeeds(
    pg_station: Station, pg_schema: str
) -> None:
    complete(pg_station)
    before = pg_station.store.count_chain()
    assert _terminate_our_sessions(pg_station, pg_schema) >= 1
    # The insert is the first statement on a pool whose connections the server has closed.
    recorder: Any = pg_station.app.recorder
    stored = StoredEvent(uuid4(), 1, "tests.probe:Probe", b"{}")
    positions = recorder.insert_events([stored], event_hashes=["ab" * 32])
    assert positions and pg_station.store.count_chain() == before + 1
    register(pg_station)  # and the application writes on as usual
    assert pg_station.store.count_chain() > before + 1


def test_an_intact_ledger_still_verifies_after_the_sessions_ended(
    pg_station: Station, pg_schema: str
) -> None:
    complete(pg_station)
    _terminate_our_sessions(pg_station, pg_schema)
    complete(pg_station)
    assert verify_station(pg_station).ok
