"""PostgreSQL through psycopg: eventsourcing's recorder plus the hash chain.

``insert_events`` is replaced rather than extended. eventsourcing's version runs ``_insert_events``
before it takes ``LOCK TABLE ... IN EXCLUSIVE MODE`` (a chain head read there is not serialised and
two writers fork the chain) and it runs inside a psycopg pipeline, which hangs on a single save of
several MB (shared/docs/pitfalls.md). Here one plain transaction takes the lock first, inserts the
events, reads the head and writes the chain rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from psycopg.sql import SQL, Identifier

from ledger.stores import CHAIN_TABLE, ChainLink, event_hashes_from, link_rows


class ChainedPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        chain = Identifier(datastore.schema), Identifier(CHAIN_TABLE)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                "position bigint PRIMARY KEY, "
                "originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL, "
                "event_hash text NOT NULL, "
                "prev_hash text NOT NULL)"
            ).format(*chain)
        )
        self._sql_head = SQL("SELECT event_hash FROM {}.{} ORDER BY position DESC LIMIT 1").format(
            *chain
        )
        self._sql_insert_chain = SQL(
            "INSERT INTO {}.{} SELECT * FROM unnest("
            "%s::bigint[], %s::uuid[], %s::bigint[], %s::text[], %s::text[])"
        ).format(*chain)
        self._sql_select_chain = SQL(
            "SELECT * FROM {}.{} WHERE position > %s ORDER BY position LIMIT %s"
        ).format(*chain)
        self._sql_chain_head = SQL("SELECT * FROM {}.{} ORDER BY position DESC LIMIT 1").format(
            *chain
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        hashes = event_hashes_from(kwargs, len(stored_events))
        if not stored_events:
            return []
        pg_events = [
            self.construct_pg_stored_event(s.originator_id, s.originator_version, s.topic, s.state)
            for s in stored_events
        ]
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)  # serialises writers: the head read below is the real head
            self._notify_channel(curs)
            curs.execute(self.insert_events_statement, (pg_events,))
            positions = [int(row["notification_id"]) for row in curs.fetchall()]
            curs.execute(self._sql_head)
            head = curs.fetchone()
            rows = link_rows(
                positions,
                [str(s.originator_id) for s in stored_events],
                [int(s.originator_version) for s in stored_events],
                hashes,
                head["event_hash"] if head else None,
            )
            curs.execute(self._sql_insert_chain, [list(col) for col in zip(*rows, strict=True)])
        return positions

    def select_chain(self, gt: int, limit: int) -> Sequence[ChainLink]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql_select_chain, (gt, limit))
            return [_link(row) for row in curs.fetchall()]

    def chain_head(self) -> ChainLink | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql_chain_head)
            row = curs.fetchone()
            return _link(row) if row else None


def _link(row: Any) -> ChainLink:
    return ChainLink(
        position=int(row["position"]),
        originator_id=str(row["originator_id"]),
        originator_version=int(row["originator_version"]),
        event_hash=str(row["event_hash"]),
        prev_hash=str(row["prev_hash"]),
    )


class Factory(PostgresFactory):
    application_recorder_class = ChainedPostgresApplicationRecorder
