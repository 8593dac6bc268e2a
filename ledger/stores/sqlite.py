"""SQLite, the embedded default: eventsourcing's recorder plus the hash chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteFactory

from ledger.stores import CHAIN_TABLE, ChainLink, event_hashes_from, link_rows


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
            return [_link(row) for row in c.fetchall()]

    def chain_head(self) -> ChainLink | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")
            row = c.fetchone()
            return _link(row) if row else None


def _id(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


def _link(row: Any) -> ChainLink:
    return ChainLink(
        position=int(row["position"]),
        originator_id=str(row["originator_id"]),
        originator_version=int(row["originator_version"]),
        event_hash=str(row["event_hash"]),
        prev_hash=str(row["prev_hash"]),
    )


class Factory(SQLiteFactory):
    application_recorder_class = ChainedSQLiteApplicationRecorder
