"""The storage side of a read model: its tables, the rows a run touches, and the view digest.

A view is one eventsourcing tracking recorder (``projections.sqlite`` / ``projections.postgres``)
owning a few tables and its own tracking table. Everything it writes for a run of events, and the
tracking position of the last of them, goes in one transaction (``RowCache.flush`` then
``ViewStore.track`` on the same cursor).

A rebuild writes the same tables under a suffix (``__rebuild_<token>``: the *shadow*) and swaps
them in with the tracking position in one transaction, so a reader sees the old view or the new
one, never a mix.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import rfc8785
from eventsourcing.persistence import Tracking, TrackingRecorder

Row = dict[str, Any]
ColumnType = Literal["text", "int", "json"]

SHADOW_MARK = "__rebuild_"
#: One row per view: the fingerprint of its tables and projection version (``ensure_schema``).
SCHEMA_TABLE = "ledger_view_schema"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "text"


@dataclass(frozen=True)
class Table:
    """A view table. The first column is the primary key (text); ``indexes`` name columns."""

    name: str
    columns: tuple[Column, ...]
    indexes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.columns[0].name

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def json_positions(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.columns) if c.type == "json")

    def encode(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """Column values in order, JSON columns as compact text."""
        values = [row[name] for name in self.names]
        for i in self.json_positions:
            if values[i] is not None:
                values[i] = dump_json(values[i])
        return tuple(values)

    def decode(self, values: Sequence[Any]) -> Row:
        return {
            c.name: (json.loads(v) if c.type == "json" and v is not None else v)
            for c, v in zip(self.columns, values, strict=True)
        }


def text(name: str) -> Column:
    return Column(name, "text")


def integer(name: str) -> Column:
    return Column(name, "int")


def document(name: str = "doc") -> Column:
    return Column(name, "json")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def dump_json(value: Any) -> str:
    """Stored form of a JSON column (compact; the digest re-serialises canonically). Views hold
    trees built from decoded events, never cycles: the circular-reference check is skipped."""
    return _ENCODER.encode(value)


class ViewConflict(RuntimeError):
    """Another writer moved the view's tracking position while this run was working."""


class ViewStore(TrackingRecorder, ABC):
    """What the projection machinery needs of a backend. Cursors are the backend's own."""

    name: str
    tables: tuple[Table, ...]

    @abstractmethod
    def write_transaction(self) -> AbstractContextManager[Any]:
        """A committing transaction on the view's datastore (shared by all views)."""

    @abstractmethod
    def read_transaction(self) -> AbstractContextManager[Any]:
        """A read-only transaction that sees one snapshot of the views."""

    @abstractmethod
    def lock(self, curs: Any) -> None:
        """Serialise writers of this view from here to the end of the transaction."""

    @abstractmethod
    def position(self, curs: Any, application_name: str) -> int:
        """The tracking position, read inside the transaction (0 before any event)."""

    @abstractmethod
    def track(self, curs: Any, tracking: Tracking) -> None:
        """Record the tracking position (eventsourcing's ``_insert_tracking``)."""

    @abstractmethod
    def fetch(self, curs: Any, table: Table, key: str, suffix: str = "") -> Row | None: ...

    def upsert(self, curs: Any, table: Table, rows: Sequence[Row], suffix: str = "") -> None:
        self.write(curs, table, [table.encode(row) for row in rows], suffix)

    @abstractmethod
    def write(
        self, curs: Any, table: Table, encoded: Sequence[tuple[Any, ...]], suffix: str = ""
    ) -> None:
        """Insert or replace rows given as ``Table.encode`` tuples."""

    @abstractmethod
    def delete(self, curs: Any, table: Table, keys: Sequence[str], suffix: str = "") -> None: ...

    @abstractmethod
    def scan(self, curs: Any, table: Table, suffix: str = "") -> Iterator[Row]:
        """Every row, ordered by key (binary order of the key's UTF-8 text)."""

    @abstractmethod
    def select(
        self, table: Table, where: Mapping[str, Any], order_by: Sequence[str] = ()
    ) -> list[Row]:
        """Rows of the live table whose columns equal ``where``."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read-only statement on the live tables; ``{p}`` marks each parameter."""

    @abstractmethod
    def ensure_schema(self, fingerprint: str) -> bool:
        """Empty the view (tables and tracking) if it was built by other code than
        *fingerprint* describes, so that the next catch-up rebuilds it. True if it was reset."""

    @abstractmethod
    def drop_shadows(self) -> None:
        """Drop shadow tables left by an earlier rebuild that did not finish."""

    @abstractmethod
    def create_shadow(self, token: str) -> None: ...

    @abstractmethod
    def swap(self, curs: Any, token: str, tracking: Tracking) -> None:
        """Replace the live tables by the shadow ones and set the tracking position."""

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


def fingerprint(tables: Sequence[Table], version: int) -> str:
    """What a view's stored rows depend on: its tables' shape and its projection's version."""
    shape = [
        {"table": t.name, "columns": [[c.name, c.type] for c in t.columns], "indexes": t.indexes}
        for t in tables
    ]
    body = rfc8785.dumps({"version": version, "tables": shape})
    return hashlib.sha256(body).hexdigest()


def shadow_suffix(token: str) -> str:
    return f"{SHADOW_MARK}{token}"


# -- the rows a run touches ---------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """One table's changed rows, encoded for writing, and its removed keys."""

    table: Table
    rows: list[tuple[Any, ...]]
    deletes: list[str]


def write_changes(store: ViewStore, curs: Any, changes: Sequence[Changes], suffix: str) -> None:
    for change in changes:
        if change.rows:
            store.write(curs, change.table, change.rows, suffix)
        if change.deletes:
            store.delete(curs, change.table, change.deletes, suffix)


Fetch = Callable[[Table, str], Row | None]


def row_doc(rows: RowCache, table: str, key: str) -> dict[str, Any] | None:
    """The document (``doc`` column) of a row, or None when there is no row. Uses only
    ``rows.get``: `documents.forms.record` hands the handlers a dict-backed stand-in."""
    row = rows.get(table, key)
    return None if row is None else row["doc"]


class RowCache:
    """Rows of one view read through to its tables and written back at ``flush``.

    In a rebuild the shadow tables start empty (``known_empty``): a key this run never wrote is
    absent, and is not looked up. Rows stay cached across flushes up to ``capacity`` (oldest
    evicted first); the tracking check at the start of every transaction guarantees that no other
    writer changed them in between. ``fetch`` replaces the lookup on the bound cursor (a rebuild
    that writes on another thread reads through its own transaction).
    """

    def __init__(
        self,
        store: ViewStore,
        *,
        suffix: str = "",
        known_empty: bool = False,
        capacity: int = 20_000,
        fetch: Fetch | None = None,
    ) -> None:
        self.store = store
        self.suffix = suffix
        self.known_empty = known_empty
        self.capacity = capacity
        self._fetch = fetch
        self._tables = {t.name: t for t in store.tables}
        self._keys = {t.name: t.key for t in store.tables}
        self._rows: dict[str, dict[str, Row | None]] = {name: {} for name in self._tables}
        self._dirty: dict[str, set[str]] = {name: set() for name in self._tables}
        self._written: dict[str, set[str]] = {name: set() for name in self._tables}
        self._curs: Any = None

    def bind(self, curs: Any) -> None:
        self._curs = curs

    def get(self, table: str, key: str) -> Row | None:
        rows = self._rows[table]
        if key in rows:
            return rows[key]
        if self.known_empty and key not in self._written[table]:
            row = None
        elif self._fetch is not None:
            row = self._fetch(self._tables[table], key)
        else:
            row = self.store.fetch(self._curs, self._tables[table], key, self.suffix)
        rows[key] = row
        return row

    def put(self, table: str, row: Row) -> None:
        key = row[self._keys[table]]
        self._rows[table][key] = row
        self._dirty[table].add(key)

    def remove(self, table: str, key: str) -> None:
        self._rows[table][key] = None
        self._dirty[table].add(key)

    def take(self) -> list[Changes]:
        """Encode every changed row now (later changes to the cached rows do not affect what is
        taken) and mark them clean."""
        changes = []
        for name, keys in self._dirty.items():
            if not keys:
                continue
            table = self._tables[name]
            rows = self._rows[name]
            encoded = [table.encode(row) for key in keys if (row := rows[key]) is not None]
            deletes = [key for key in keys if rows[key] is None]
            if self.known_empty:
                deletes = [key for key in deletes if key in self._written[name]]
                self._written[name].update(keys)
            changes.append(Changes(table, encoded, deletes))
            keys.clear()
        self._evict()
        return changes

    def flush(self, curs: Any) -> int:
        """Write every changed row on *curs*; returns how many rows were written or deleted."""
        changes = self.take()
        write_changes(self.store, curs, changes, self.suffix)
        return sum(len(c.rows) + len(c.deletes) for c in changes)

    def clear(self) -> None:
        """Forget cached rows (after a failed transaction or a conflict)."""
        for name in self._rows:
            self._rows[name].clear()
            self._dirty[name].clear()

    def _evict(self) -> None:
        for rows in self._rows.values():
            excess = len(rows) - self.capacity
            if excess > 0:
                for key in list(itertools.islice(rows, excess)):
                    del rows[key]


# -- digest -------------------------------------------------------------------------------------


def view_digest(store: ViewStore, suffix: str = "") -> str:
    """SHA-256 over the canonical dump of a view (docs/metrics.md, "Digest").

    For each table in declared order: one line with the RFC 8785 form of
    ``{"table": name, "columns": [...]}``, then one line per row, ordered by key, with the RFC
    8785 form of the row as an object (JSON columns as their parsed value). Lines end with LF.
    Tracking positions are not part of the digest: compare two digests taken at the same
    position (``digest_at``).
    """
    with store.read_transaction() as curs:
        return digest_rows(store, curs, suffix)


def digest_at(store: ViewStore, application_name: str) -> tuple[int, str]:
    """A view's tracking position and digest, read in one snapshot."""
    with store.read_transaction() as curs:
        return store.position(curs, application_name), digest_rows(store, curs)


def digest_rows(store: ViewStore, curs: Any, suffix: str = "") -> str:
    digest = hashlib.sha256()
    for table in store.tables:
        digest.update(rfc8785.dumps({"table": table.name, "columns": list(table.names)}))
        digest.update(b"\n")
        for row in store.scan(curs, table, suffix):
            digest.update(rfc8785.dumps(row))
            digest.update(b"\n")
    return digest.hexdigest()


def view_dump(store: ViewStore, suffix: str = "") -> dict[str, list[Row]]:
    """Every row of every table (tests and debugging; the digest streams instead)."""
    with store.read_transaction() as curs:
        return {t.name: list(store.scan(curs, t, suffix)) for t in store.tables}
