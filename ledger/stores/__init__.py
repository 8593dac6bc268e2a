"""Stores: eventsourcing recorders extended with the global hash chain.

Each adapter writes one ``ledger_chain`` row per stored event in the same transaction, reading the
chain head only once the transaction holds the write lock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ledger.canonical import GENESIS_HASH
from signing.errors import InputError

if TYPE_CHECKING:
    import psycopg

CHAIN_TABLE = "ledger_chain"
BATCH_TABLE = "ledger_batches"
CHECKPOINT_TABLE = "ledger_checkpoints"
EVENT_TOKEN_TABLE = "ledger_event_timestamps"


class ChainError(RuntimeError):
    """A save that cannot be chained (no hashes given, or a count mismatch)."""


@dataclass(frozen=True)
class ChainLink:
    position: int
    originator_id: str
    originator_version: int
    event_hash: str
    prev_hash: str


@dataclass(frozen=True)
class Batch:
    """A run of consecutive events whose Merkle root carries one RFC 3161 token.

    ``first_seq`` is the 0-based index of the batch's first event in the ledger's Merkle log
    (the chain order); positions are notification ids and may have gaps.
    """

    first_seq: int
    size: int
    first_position: int
    last_position: int
    root: str
    token: bytes
    gen_time: str
    tsa_url: str


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed, timestamped statement of the ledger's size and Merkle root."""

    size: int
    root: str
    body: str
    signature: str
    token: bytes


def link_from_row(row: Any) -> ChainLink:
    """A chain row as either adapter returns it (a mapping by column name)."""
    return ChainLink(
        position=int(row["position"]),
        originator_id=str(row["originator_id"]),
        originator_version=int(row["originator_version"]),
        event_hash=str(row["event_hash"]),
        prev_hash=str(row["prev_hash"]),
    )


def batch_from_row(row: Any) -> Batch:
    return Batch(
        first_seq=int(row["first_seq"]),
        size=int(row["size"]),
        first_position=int(row["first_position"]),
        last_position=int(row["last_position"]),
        root=str(row["root"]),
        token=bytes(row["token"]),
        gen_time=str(row["gen_time"]),
        tsa_url=str(row["tsa_url"]),
    )


def checkpoint_from_row(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(
        int(row["size"]),
        str(row["root"]),
        str(row["body"]),
        str(row["signature"]),
        bytes(row["token"]),
    )


class BatchConflict(RuntimeError):
    """Another stamper recorded a batch starting at the same event first."""


@runtime_checkable
class ChainReader(Protocol):
    def select_chain(self, gt: int, limit: int) -> Sequence[ChainLink]: ...

    def chain_head(self) -> ChainLink | None: ...


@runtime_checkable
class EvidenceStore(ChainReader, Protocol):
    """Timestamp batches and checkpoints, kept beside the events in the same database."""

    def insert_batch(self, batch: Batch) -> None: ...

    def select_batches(self) -> Sequence[Batch]: ...

    def last_batch(self) -> Batch | None: ...

    def insert_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...

    def select_checkpoints(self) -> Sequence[StoredCheckpoint]: ...

    def count_chain(self, after: int = 0) -> int:
        """How many chain rows lie after *after* (a position; 0 counts them all)."""
        ...

    def insert_event_timestamps(self, rows: Sequence[tuple[int, bytes, str]]) -> None:
        """Per-event (CAdES-T) tokens: (position, token DER, TSA time)."""
        ...

    def select_event_timestamps(self) -> dict[int, tuple[bytes, str]]: ...


def event_hashes_from(kwargs: dict[str, Any], count: int) -> list[str]:
    hashes = kwargs.get("event_hashes")
    if hashes is None or len(hashes) != count:
        raise ChainError(
            f"every stored event needs its canonical hash: got "
            f"{'none' if hashes is None else len(hashes)} for {count} events"
        )
    return [str(h) for h in hashes]


def link_rows(
    positions: Sequence[int],
    originator_ids: Sequence[str],
    versions: Sequence[int],
    hashes: Sequence[str],
    head_hash: str | None,
) -> list[tuple[int, str, int, str, str]]:
    """Chain rows for a batch, each linked to the one before, the first to the current head."""
    prev = head_hash or GENESIS_HASH
    rows = []
    for position, originator_id, version, event_hash in zip(
        positions, originator_ids, versions, hashes, strict=True
    ):
        rows.append((position, originator_id, version, event_hash, prev))
        prev = event_hash
    return rows


class StoreURLError(InputError, ValueError):
    """A ``LEDGER_DB`` value that names no store we support."""


def persistence_env(db_url: str) -> dict[str, str]:
    """eventsourcing environment for ``sqlite:///path`` or ``postgresql://user@host:port/db``.

    A PostgreSQL URL may carry ``?schema=NAME`` (tests use one schema each).
    """
    from urllib.parse import parse_qs, unquote, urlparse

    if db_url.startswith("sqlite:///"):
        path = db_url[len("sqlite:///") :]
        if not path:
            raise StoreURLError("sqlite URL needs a path: sqlite:///var/ledger.sqlite")
        return {
            "PERSISTENCE_MODULE": "ledger.stores.sqlite:Factory",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    parsed = urlparse(db_url)
    if parsed.scheme in ("postgresql", "postgres"):
        query = parse_qs(parsed.query)
        env = {
            "PERSISTENCE_MODULE": "ledger.stores.postgres:Factory",
            "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_LOCK_TIMEOUT": "30",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"][0]
        return env
    raise StoreURLError(
        f"LEDGER_DB must be sqlite:///PATH or postgresql://USER@HOST:PORT/DB, not {db_url!r}"
    )


def postgres_admin_connection(env: Mapping[str, str]) -> psycopg.Connection[Any]:
    """An autocommit connection to the server and database of a PostgreSQL *env*, for what
    eventsourcing does not do (schemas, the setup lock)."""
    import psycopg

    return psycopg.connect(
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        dbname=env["POSTGRES_DBNAME"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        autocommit=True,
    )


def postgres_read_only(env: Mapping[str, str]) -> bool:
    """Is the PostgreSQL server of *env* a hot standby (streaming replication), or does its
    session start read-only (``default_transaction_read_only``)? Such a store can be read and
    verified, never set up: opening it creates no schema, table or view."""
    with postgres_admin_connection(env) as conn:
        row = conn.execute(
            "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
        ).fetchone()
    return bool(row and row[0])


@contextmanager
def postgres_setup(env: dict[str, str]) -> Iterator[None]:
    """Create the schema named in *env* and hold a session advisory lock while the caller
    constructs the application: eventsourcing creates its tables, types and function on
    construction, and two processes doing that at once fail with "tuple concurrently updated"."""
    from psycopg.sql import SQL, Identifier

    with postgres_admin_connection(env) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK_KEY,))
        try:
            schema = env.get("POSTGRES_SCHEMA")
            if schema:
                conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))


_SETUP_LOCK_KEY = 0x1ED6E5  # arbitrary, constant: "ledger setup"


def ensure_postgres_schema(env: dict[str, str]) -> None:
    """Create the schema named in *env* (eventsourcing creates tables, not schemas)."""
    with postgres_setup(env):
        pass


def chain_length(env: Mapping[str, str]) -> int:
    """How many events the store of *env* holds (0 when it or its tables do not exist yet),
    read without building the application (which would create the tables)."""
    if "SQLITE_DBNAME" in env:
        import sqlite3

        path = env["SQLITE_DBNAME"]
        if path == ":memory:" or not os.path.exists(path):
            return 0
        lite = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = lite.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                (CHAIN_TABLE,),
            ).fetchone()
            if not row or not row[0]:
                return 0
            return int(lite.execute(f"SELECT count(*) FROM {CHAIN_TABLE}").fetchone()[0])
        finally:
            lite.close()
    from psycopg.sql import SQL, Identifier

    schema = env.get("POSTGRES_SCHEMA", "public")
    with postgres_admin_connection(env) as conn:
        found = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{CHAIN_TABLE}"',)
        ).fetchone()
        if not found or not found[0]:
            return 0
        row = conn.execute(
            SQL("SELECT count(*) FROM {}.{}").format(Identifier(schema), Identifier(CHAIN_TABLE))
        ).fetchone()
    return int(row[0]) if row else 0
