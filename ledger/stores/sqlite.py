"""SQLite, the embedded default: eventsourcing's recorder plus the hash chain."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteFactory

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
    link_rows,
)


class ChainedSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
            "position INTEGER PRIMARY KEY, "
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "event_hash TEXT NOT NULL, "
            "prev_hash TEXT NOT NULL)"
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {BATCH_TABLE} ("
            "first_seq INTEGER PRIMARY KEY, size INTEGER NOT NULL, "
            "first_position INTEGER NOT NULL, last_position INTEGER NOT NULL, "
            "root TEXT NOT NULL, token BLOB NOT NULL, gen_time TEXT NOT NULL, "
            "tsa_url TEXT NOT NULL)"
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} ("
            "size INTEGER PRIMARY KEY, root TEXT NOT NULL, body TEXT NOT NULL, "
            "signature TEXT NOT NULL, token BLOB NOT NULL)"
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {EVENT_TOKEN_TABLE} ("
            "position INTEGER PRIMARY KEY, token BLOB NOT NULL, gen_time TEXT NOT NULL)"
        )
        return statements

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        hashes = event_hashes_from(kwargs, len(stored_events))
        # The INSERTs take SQLite's RESERVED lock: from here on no other writer can append, so the
        # head read below is the real head (a head read before the first write could be stale).
        positions = super()._insert_events(c, stored_events, **kwargs)
        assert positions is not None
        c.execute(f"SELECT event_hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")
        row = c.fetchone()
        rows = link_rows(
            positions,
            [_id(s.originator_id) for s in stored_events],
            [int(s.originator_version) for s in stored_events],
            hashes,
            row["event_hash"] if row else None,
        )
        c.executemany(f"INSERT INTO {CHAIN_TABLE} VALUES (?,?,?,?,?)", rows)
        return positions

    def select_chain(self, gt: int, limit: int) -> Sequence[ChainLink]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT * FROM {CHAIN_TABLE} WHERE position > ? ORDER BY position LIMIT ?",
                (gt, limit),
            )
            return [link_from_row(row) for row in c.fetchall()]

    def chain_head(self) -> ChainLink | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")
            row = c.fetchone()
            return link_from_row(row) if row else None

    # -- evidence: timestamp batches and checkpoints -------------------------------------------

    def insert_batch(self, batch: Batch) -> None:
        try:
            with self.datastore.transaction(commit=True) as c:
                c.execute(
                    f"INSERT INTO {BATCH_TABLE} VALUES (?,?,?,?,?,?,?,?)",
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
        except sqlite3.IntegrityError as exc:
            raise BatchConflict(f"a batch starting at {batch.first_seq} exists") from exc

    def select_batches(self) -> Sequence[Batch]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {BATCH_TABLE} ORDER BY first_seq")
            return [batch_from_row(row) for row in c.fetchall()]

    def last_batch(self) -> Batch | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {BATCH_TABLE} ORDER BY first_seq DESC LIMIT 1")
            row = c.fetchone()
            return batch_from_row(row) if row else None

    def insert_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT OR REPLACE INTO {CHECKPOINT_TABLE} VALUES (?,?,?,?,?)",
                (
                    checkpoint.size,
                    checkpoint.root,
                    checkpoint.body,
                    checkpoint.signature,
                    checkpoint.token,
                ),
            )

    def select_checkpoints(self) -> Sequence[StoredCheckpoint]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {CHECKPOINT_TABLE} ORDER BY size")
            return [checkpoint_from_row(r) for r in c.fetchall()]

    def count_chain(self, after: int = 0) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) FROM {CHAIN_TABLE} WHERE position > ?", (after,))
            return int(c.fetchone()[0])

    def insert_event_timestamps(self, rows: Sequence[tuple[int, bytes, str]]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.executemany(f"INSERT OR IGNORE INTO {EVENT_TOKEN_TABLE} VALUES (?,?,?)", rows)

    def select_event_timestamps(self) -> dict[int, tuple[bytes, str]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {EVENT_TOKEN_TABLE}")
            return {
                int(r["position"]): (bytes(r["token"]), str(r["gen_time"])) for r in c.fetchall()
            }


def _id(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


class Factory(SQLiteFactory):
    application_recorder_class = ChainedSQLiteApplicationRecorder
