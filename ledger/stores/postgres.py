"""PostgreSQL through psycopg: eventsourcing's recorder plus the hash chain.

``insert_events`` is replaced rather than extended. eventsourcing's version runs ``_insert_events``
before it takes ``LOCK TABLE ... IN EXCLUSIVE MODE`` (a chain head read there is not serialised and
two writers fork the chain) and it runs inside a psycopg pipeline, which hangs on a single save of
several MB (shared/docs/pitfalls.md). Here one plain transaction takes the lock first, inserts the
events, reads the head and writes the chain rows. It keeps the library's retry (the same
decorator and limits): after the server ends a session (restart, failover, an administrator's
pg_terminate_backend) the pool drops the dead connection and the next attempt gets a new one.
A retried insert is safe: the whole transaction either committed (then the retry hits the
primary key and raises IntegrityError, as the library's does) or left nothing. The evidence
methods retry likewise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from ledger.canonical import GENESIS_HASH
from ledger.stores import (
    BATCH_TABLE,
    CHAIN_TABLE,
    CHECKPOINT_TABLE,
    EVENT_TOKEN_TABLE,
    Batch,
    BatchConflict,
    ChainLink,
    StoredCheckpoint,
    batch_from_row,
    checkpoint_from_row,
    event_hashes_from,
    link_from_row,
)

#: eventsourcing's own retry policy for its PostgreSQL recorder methods.
_RETRY = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)


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
        schema = Identifier(datastore.schema)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                "first_seq bigint PRIMARY KEY, size bigint NOT NULL, "
                "first_position bigint NOT NULL, last_position bigint NOT NULL, "
                "root text NOT NULL, token bytea NOT NULL, gen_time text NOT NULL, "
                "tsa_url text NOT NULL)"
            ).format(schema, Identifier(BATCH_TABLE))
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                "size bigint PRIMARY KEY, root text NOT NULL, body text NOT NULL, "
                "signature text NOT NULL, token bytea NOT NULL)"
            ).format(schema, Identifier(CHECKPOINT_TABLE))
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                "position bigint PRIMARY KEY, token bytea NOT NULL, gen_time text NOT NULL)"
            ).format(schema, Identifier(EVENT_TOKEN_TABLE))
        )
        tokens = schema, Identifier(EVENT_TOKEN_TABLE)
        self._sql_insert_event_tokens = SQL(
            "INSERT INTO {}.{} VALUES (%s,%s,%s) ON CONFLICT (position) DO NOTHING"
        ).format(*tokens)
        self._sql_event_tokens = SQL("SELECT * FROM {}.{}").format(*tokens)
        batches = schema, Identifier(BATCH_TABLE)
        checkpoints = schema, Identifier(CHECKPOINT_TABLE)
        self._sql_insert_batch = SQL("INSERT INTO {}.{} VALUES (%s,%s,%s,%s,%s,%s,%s,%s)").format(
            *batches
        )
        self._sql_batches = SQL("SELECT * FROM {}.{} ORDER BY first_seq").format(*batches)
        self._sql_last_batch = SQL("SELECT * FROM {}.{} ORDER BY first_seq DESC LIMIT 1").format(
            *batches
        )
        self._sql_insert_checkpoint = SQL(
            "INSERT INTO {}.{} VALUES (%s,%s,%s,%s,%s) ON CONFLICT (size) DO UPDATE SET "
            "root = EXCLUDED.root, body = EXCLUDED.body, signature = EXCLUDED.signature, "
            "token = EXCLUDED.token"
        ).format(*checkpoints)
        self._sql_checkpoints = SQL("SELECT * FROM {}.{} ORDER BY size").format(*checkpoints)
        self._sql_count_chain = SQL("SELECT COUNT(*) AS n FROM {}.{} WHERE position > %s").format(
            *chain
        )
        # The prev_hash column: the head read inside the INSERT (after the lock, same
        # transaction), then each row's predecessor within the batch. One round trip.
        self._sql_insert_chain = SQL(
            "INSERT INTO {}.{} SELECT * FROM unnest("
            "%s::bigint[], %s::uuid[], %s::bigint[], %s::text[], "
            "COALESCE((SELECT event_hash FROM {}.{} ORDER BY position DESC LIMIT 1), %s) "
            "|| %s::text[])"
        ).format(*chain, *chain)
        self._sql_lock_notify = SQL("; ").join(
            [*self.lock_table_statements, SQL("NOTIFY {}").format(Identifier(self.channel_name))]
        )
        self._sql_select_chain = SQL(
            "SELECT * FROM {}.{} WHERE position > %s ORDER BY position LIMIT %s"
        ).format(*chain)
        self._sql_chain_head = SQL("SELECT * FROM {}.{} ORDER BY position DESC LIMIT 1").format(
            *chain
        )

    @_RETRY
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
            # SET LOCAL lock_timeout; LOCK TABLE ... IN EXCLUSIVE MODE; NOTIFY: one trip, no
            # parameters (a simple query). It serialises writers: the head read below is real.
            curs.execute(self._sql_lock_notify, prepare=False)
            curs.execute(self.insert_events_statement, (pg_events,))
            positions = [int(row["notification_id"]) for row in curs.fetchall()]
            curs.execute(
                self._sql_insert_chain,
                (
                    positions,
                    [str(s.originator_id) for s in stored_events],
                    [int(s.originator_version) for s in stored_events],
                    hashes,
                    GENESIS_HASH,
                    hashes[:-1],
                ),
            )
        return positions

    @_RETRY
    def select_chain(self, gt: int, limit: int) -> Sequence[ChainLink]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql_select_chain, (gt, limit))
            return [link_from_row(row) for row in curs.fetchall()]

    @_RETRY
    def chain_head(self) -> ChainLink | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql_chain_head)
            row = curs.fetchone()
            return link_from_row(row) if row else None

    # -- evidence: timestamp batches and checkpoints -------------------------------------------

    @_RETRY
    def insert_batch(self, batch: Batch) -> None:
        try:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    self._sql_insert_batch,
                    (
                        batch.first_seq,
                        batch.size,
                        batch.first_position,
                        batch.last_position,
                        batch.root,
                        batch.token,
                        batch.gen_time,
                        batch.tsa_url,
                    ),
                )
        except (psycopg.errors.UniqueViolation, IntegrityError) as exc:
            raise BatchConflict(f"a batch starting at {batch.first_seq} exists") from exc

    @_RETRY
    def select_batches(self) -> Sequence[Batch]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql_batches)
            return [batch_from_row(row) for row in curs.fetchall()]

    @_RETRY
    def last_batch(self) -> Batch | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql_last_batch)
            row = curs.fetchone()
            return batch_from_row(row) if row else None

    @_RETRY
    def insert_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._sql_insert_checkpoint,
                (
                    checkpoint.size,
                    checkpoint.root,
                    checkpoint.body,
                    checkpoint.signature,
                    checkpoint.token,
                ),
            )

    @_RETRY
    def select_checkpoints(self) -> Sequence[StoredCheckpoint]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql_checkpoints)
            return [checkpoint_from_row(r) for r in curs.fetchall()]

    @_RETRY
    def count_chain(self, after: int = 0) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql_count_chain, (after,))
            row = curs.fetchone()
            assert row is not None
            return int(row["n"])

    @_RETRY
    def insert_event_timestamps(self, rows: Sequence[tuple[int, bytes, str]]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.executemany(self._sql_insert_event_tokens, rows)

    @_RETRY
    def select_event_timestamps(self) -> dict[int, tuple[bytes, str]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql_event_tokens)
            return {
                int(r["position"]): (bytes(r["token"]), str(r["gen_time"])) for r in curs.fetchall()
            }


class Factory(PostgresFactory):
    application_recorder_class = ChainedPostgresApplicationRecorder
