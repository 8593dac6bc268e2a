"""SQLite views: eventsourcing's SQLite tracking recorder with the view's tables beside it.

eventsourcing names the SQLite tracking table ``tracking``; each view here has its own
(``<view>_tracking``), so that several views share the ledger's database file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from projections.store import SCHEMA_TABLE, SHADOW_MARK, Row, Table, ViewStore, shadow_suffix

_SQL_TYPES = {"text": "TEXT", "int": "INTEGER", "json": "TEXT"}
SCAN_PAGE = 2000


class SQLiteViewStore(SQLiteTrackingRecorder, ViewStore):
    def __init__(self, datastore: SQLiteDatastore, *, name: str, tables: tuple[Table, ...]):
        self.name = name
        self.tables = tables
        self.tracking_table_name = f"{name}_tracking"
        super().__init__(datastore)
        tracking = self.tracking_table_name
        if not datastore.single_row_tracking:  # pragma: no cover - configuration error
            raise ValueError("views need single-row tracking (eventsourcing's default)")
        self.insert_tracking_statement = (
            f"INSERT INTO {tracking} "
            "VALUES (:application_name, :notification_id) "
            "ON CONFLICT (application_name) DO UPDATE "
            "SET notification_id = :notification_id "
            f"WHERE {tracking}.notification_id < :notification_id "
            "RETURNING notification_id"
        )
        self.select_max_tracking_id_statement = (
            f"SELECT MAX(notification_id) FROM {tracking} WHERE application_name=?"
        )
        self._sql: dict[tuple[str, str, str], str] = {}

    def construct_create_table_statements(self) -> list[str]:
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.tracking_table_name} ("
            "application_name TEXT, notification_id INTEGER, "
            "PRIMARY KEY (application_name)) WITHOUT ROWID"
        ]
        for table in self.tables:
            statements.extend(_create(table, ""))
        return statements

    # -- transactions ---------------------------------------------------------------------------

    def write_transaction(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=True)

    def read_transaction(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=False)

    def lock(self, curs: Any) -> None:
        # A write as the transaction's first statement takes SQLite's RESERVED lock (waiting up
        # to the lock timeout): reads that follow cannot be overtaken by another writer.
        curs.execute(
            f"UPDATE {self.tracking_table_name} SET notification_id = notification_id "
            "WHERE application_name = ?",
            (self.table_migration_identifier,),
        )

    def position(self, curs: Any, application_name: str) -> int:
        curs.execute(self.select_max_tracking_id_statement, (application_name,))
        row = curs.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def track(self, curs: Any, tracking: Tracking) -> None:
        self._insert_tracking(curs, tracking)

    # -- rows -----------------------------------------------------------------------------------

    def _statement(self, kind: str, table: Table, suffix: str) -> str:
        cached = self._sql.get((kind, table.name, suffix))
        if cached is not None:
            return cached
        name = table.name + suffix
        columns = ", ".join(table.names)
        statement = {
            "fetch": f"SELECT {columns} FROM {name} WHERE {table.key} = ?",
            "upsert": (
                f"INSERT OR REPLACE INTO {name} ({columns}) "
                f"VALUES ({', '.join('?' for _ in table.columns)})"
            ),
            "delete": f"DELETE FROM {name} WHERE {table.key} = ?",
            "scan": (
                f"SELECT {columns} FROM {name} WHERE {table.key} > ? "
                f"ORDER BY {table.key} LIMIT {SCAN_PAGE}"
            ),
        }[kind]
        self._sql[(kind, table.name, suffix)] = statement
        return statement

    def fetch(self, curs: Any, table: Table, key: str, suffix: str = "") -> Row | None:
        curs.execute(self._statement("fetch", table, suffix), (key,))
        row = curs.fetchone()
        return None if row is None else table.decode(tuple(row))

    def write(
        self, curs: Any, table: Table, encoded: Sequence[tuple[Any, ...]], suffix: str = ""
    ) -> None:
        curs.executemany(self._statement("upsert", table, suffix), encoded)

    def delete(self, curs: Any, table: Table, keys: Sequence[str], suffix: str = "") -> None:
        curs.executemany(self._statement("delete", table, suffix), [(k,) for k in keys])

    def scan(self, curs: Any, table: Table, suffix: str = "") -> Iterator[Row]:
        statement = self._statement("scan", table, suffix)
        last = ""
        while True:
            curs.execute(statement, (last,))
            page = curs.fetchall()
            for row in page:
                yield table.decode(tuple(row))
            if len(page) < SCAN_PAGE:
                return
            last = page[-1][0]

    def select(
        self, table: Table, where: Mapping[str, Any], order_by: Sequence[str] = ()
    ) -> list[Row]:
        for column in [*where, *order_by]:
            if column not in table.names:
                raise KeyError(column)
        condition = " AND ".join(f"{c} = ?" for c in where) or "1=1"
        order = f" ORDER BY {', '.join(order_by)}" if order_by else ""
        with self.read_transaction() as curs:
            curs.execute(
                f"SELECT {', '.join(table.names)} FROM {table.name} WHERE {condition}{order}",
                tuple(where.values()),
            )
            return [table.decode(tuple(row)) for row in curs.fetchall()]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.read_transaction() as curs:
            curs.execute(sql.format(p="?"), tuple(params))
            return [dict(row) for row in curs.fetchall()]

    # -- rebuild --------------------------------------------------------------------------------

    def drop_shadows(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            names = [str(row[0]) for row in curs.fetchall()]
            for table in self.tables:
                for name in names:
                    if name.startswith(table.name + SHADOW_MARK):
                        curs.execute(f"DROP TABLE IF EXISTS {name}")

    def ensure_schema(self, fingerprint: str) -> bool:
        with self.datastore.transaction(commit=True) as curs:
            self.lock(curs)
            curs.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} "
                "(name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)"
            )
            curs.execute(f"SELECT fingerprint FROM {SCHEMA_TABLE} WHERE name = ?", (self.name,))
            row = curs.fetchone()
            if row is not None and row[0] == fingerprint:
                return False
            for table in self.tables:
                curs.execute(f"DROP TABLE IF EXISTS {table.name}")
                for statement in _create(table, ""):
                    curs.execute(statement)
            curs.execute(
                f"DELETE FROM {self.tracking_table_name} WHERE application_name <> ?",
                (self.table_migration_identifier,),
            )
            curs.execute(
                f"INSERT OR REPLACE INTO {SCHEMA_TABLE} VALUES (?, ?)", (self.name, fingerprint)
            )
            return row is not None

    def create_shadow(self, token: str) -> None:
        suffix = shadow_suffix(token)
        with self.datastore.transaction(commit=True) as curs:
            for table in self.tables:
                # Secondary indexes are built at the swap: the build looks rows up by key only.
                curs.execute(_create(table, suffix)[0])

    def swap(self, curs: Any, token: str, tracking: Tracking) -> None:
        suffix = shadow_suffix(token)
        for table in self.tables:
            curs.execute(f"DROP TABLE IF EXISTS {table.name}")
            curs.execute(f"ALTER TABLE {table.name}{suffix} RENAME TO {table.name}")
            for statement in _create(table, "")[1:]:
                curs.execute(statement)
        curs.execute(
            f"DELETE FROM {self.tracking_table_name} WHERE application_name = ?",
            (tracking.application_name,),
        )
        self._insert_tracking(curs, tracking)


def _create(table: Table, suffix: str) -> list[str]:
    """CREATE TABLE, then one CREATE INDEX per indexed column (live tables only)."""
    columns = ", ".join(
        f"{c.name} {_SQL_TYPES[c.type]}{' PRIMARY KEY' if i == 0 else ''}"
        for i, c in enumerate(table.columns)
    )
    statements = [f"CREATE TABLE IF NOT EXISTS {table.name}{suffix} ({columns})"]
    if not suffix:
        statements.extend(
            f"CREATE INDEX IF NOT EXISTS ix_{table.name}_{column} ON {table.name} ({column})"
            for column in table.indexes
        )
    return statements
