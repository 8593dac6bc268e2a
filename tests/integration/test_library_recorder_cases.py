"""eventsourcing's own recorder test cases (``eventsourcing.tests.persistence``), run against our
chained recorders (ledger/stores) on SQLite and PostgreSQL, as the library runs them against its
own (its tests/persistence_tests/test_sqlite.py and test_postgres.py).

One deliberate change needs an adapter, not a skip: our ``insert_events`` requires each event's
canonical hash (``event_hashes``) to write the chain row, and refuses a save without them
(ChainError). The library's cases know nothing of that keyword, so the recorders under test
supply one hash per event when none is given; everything else is the library's code and its
assertions, including the chain rows being written in the same transaction.

Skipped, with the reason in the skip: ``test_concurrent_no_conflicts`` writes 100,000 events
from ten threads, a benchmark at full size on a machine whose two cores are shared (the two
writer-process test in test_postgres_writers.py covers concurrent chaining).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)
from psycopg.sql import SQL, Identifier

from ledger.stores import ChainError
from ledger.stores.postgres import ChainedPostgresApplicationRecorder
from ledger.stores.sqlite import ChainedSQLiteApplicationRecorder
from tests.conftest import pg_dsn_or_skip

FULL_SIZE_BENCHMARK = (
    "a benchmark at full size (100,000 events from ten threads) on a shared two-core machine; "
    "concurrent chaining is covered by test_postgres_writers.py"
)


def _hashes(stored_events: Sequence[StoredEvent]) -> list[str]:
    return [hashlib.sha256(s.state).hexdigest() for s in stored_events]


class HashingSQLiteRecorder(ChainedSQLiteApplicationRecorder):
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        kwargs.setdefault("event_hashes", _hashes(stored_events))
        return super().insert_events(stored_events, **kwargs)


class HashingPostgresRecorder(ChainedPostgresApplicationRecorder):
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        kwargs.setdefault("event_hashes", _hashes(stored_events))
        return super().insert_events(stored_events, **kwargs)


# -- SQLite ---------------------------------------------------------------------------------------


class _SQLiteFile:
    """A file database per test (the library's concurrency cases need several connections)."""

    tmp: Path

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.tmp = tmp_path

    def create_recorder(self) -> HashingSQLiteRecorder:
        datastore = SQLiteDatastore(db_name=str(self.tmp / f"{uuid.uuid4().hex}.sqlite"))
        recorder = HashingSQLiteRecorder(datastore)
        recorder.create_table()
        return recorder


class TestSQLiteApplicationRecorder(_SQLiteFile, ApplicationRecorderTestCase[Any]):
    @pytest.mark.skip(reason=FULL_SIZE_BENCHMARK)
    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:
        raise AssertionError("skipped")

    def test_chain_rows_are_written_with_the_events(self) -> None:
        recorder = self.create_recorder()
        events = [
            StoredEvent(uuid.uuid4(), 1, "topic", b"a"),
            StoredEvent(uuid.uuid4(), 1, "t", b"b"),
        ]
        positions = recorder.insert_events(events)
        links = recorder.select_chain(0, 10)
        assert [link.position for link in links] == list(positions or [])
        assert links[1].prev_hash == links[0].event_hash == _hashes(events)[0]

    def test_a_save_without_hashes_is_refused(self) -> None:
        recorder = self.create_recorder()
        with pytest.raises(ChainError):
            ChainedSQLiteApplicationRecorder.insert_events(
                recorder, [StoredEvent(uuid.uuid4(), 1, "topic", b"a")]
            )


class TestSQLiteNonInterleavingNotificationIDs(_SQLiteFile, NonInterleavingNotificationIDsBaseCase):
    pass


# -- PostgreSQL -----------------------------------------------------------------------------------


class _PostgresSchema:
    """A fresh schema per test on the test server, dropped afterwards (other tests share it)."""

    dsn: str
    schema: str

    @pytest.fixture(autouse=True)
    def _schema(self) -> Any:
        self.dsn = pg_dsn_or_skip()
        self.schema = f"lib_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(self.schema)))
        self.datastores: list[PostgresDatastore] = []
        yield
        for datastore in self.datastores:
            datastore.close()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA {} CASCADE").format(Identifier(self.schema)))

    def create_recorder(self) -> HashingPostgresRecorder:
        url = urlparse(self.dsn)
        assert not parse_qs(url.query)
        datastore = PostgresDatastore(
            dbname=url.path.lstrip("/"),
            host=url.hostname or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password or "",
            schema=self.schema,
            pool_size=5,
            max_overflow=5,
        )
        self.datastores.append(datastore)
        recorder = HashingPostgresRecorder(datastore, events_table_name="stored_events")
        recorder.create_table()
        return recorder


class TestPostgresApplicationRecorder(_PostgresSchema, ApplicationRecorderTestCase[Any]):
    # Sequences can leave gaps after a rolled-back insert, as the library's own case says.
    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False

    @pytest.mark.skip(reason=FULL_SIZE_BENCHMARK)
    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:
        raise AssertionError("skipped")


class TestPostgresNonInterleavingNotificationIDs(
    _PostgresSchema, NonInterleavingNotificationIDsBaseCase
):
    pass
