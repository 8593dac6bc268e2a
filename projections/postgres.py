"""PostgreSQL views: eventsourcing's PostgreSQL tracking recorder with the view's tables beside it.

Text columns use the "C" collation, so rows sort by their bytes as they do in SQLite and the
digest's row order is the same on both. Bulk writes go as one ``unnest`` statement per chunk,
outside any psycopg pipeline (a multi-MB pipelined statement hangs: shared/docs/pitfalls.md).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL, Composable, Composed, Identifier

from projections.store import SCHEMA_TABLE, SHADOW_MARK, Row, Table, ViewStore, shadow_suffix

_SQL_TYPES = {"text": 'text COLLATE "C"', "int": "bigint", "json": "text"}
_ARRAY_TYPES = {"text": "text[]", "int": "bigint[]", "json": "text[]"}
WRITE_CHUNK = 500
SCAN_PAGE = 2000


class PostgresViewStore(PostgresTrackingRecorder, ViewStore):
    def __init__(self, datastore: PostgresDatastore, *, name: str, tables: tuple[Table, ...]):
        self.name = name
        self.tables = tables
        super().__init__(datastore, tracking_table_name=f"{name}_tracking")
        self.schema = datastore.schema
        for table in tables:
            self.sql_create_statements.extend(self._create(table, ""))
        self._position_sql = SQL(
            "SELECT notification_id FROM {}.{} WHERE application_name = %s"
        ).format(Identifier(self.schema), Identifier(self.tracking_table_name))
        self._lock_key = zlib.crc32(f"ledger-view:{self.schema}.{name}".encode())
        self._sql: dict[tuple[str, str, str], Composable] = {}

    def _id(self, name: str) -> Composed:
        return SQL("{}.{}").format(Identifier(self.schema), Identifier(name))

    def _create(self, table: Table, suffix: str) -> list[Composed]:
        name = table.name + suffix
        columns = SQL(", ").join(
            SQL("{} {}{}").format(
                Identifier(c.name),
                SQL(_SQL_TYPES[c.type]),
                SQL(" PRIMARY KEY" if i == 0 else ""),
            )
            for i, c in enumerate(table.columns)
        )
        statements = [SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(self._id(name), columns)]
        if not suffix:
            statements.extend(
                SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                    Identifier(f"ix_{table.name}_{column}"), self._id(name), Identifier(column)
                )
                for column in table.indexes
            )
        return statements

    # -- transactions ---------------------------------------------------------------------------

    def write_transaction(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=True)

    @contextmanager
    def read_transaction(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield curs

    def lock(self, curs: Any) -> None:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))

    def position(self, curs: Any, application_name: str) -> int:
        curs.execute(self._position_sql, (application_name,))
        row = curs.fetchone()
        return int(row["notification_id"]) if row is not None else 0

    def track(self, curs: Any, tracking: Tracking) -> None:
        self._insert_tracking(curs, tracking)

    # -- rows -----------------------------------------------------------------------------------

    def _statement(self, kind: str, table: Table, suffix: str) -> Composable:
        cached = self._sql.get((kind, table.name, suffix))
        if cached is not None:
            return cached
        name = self._id(table.name + suffix)
        columns = SQL(", ").join(Identifier(c) for c in table.names)
        key = Identifier(table.key)
        statement: Composable
        if kind == "fetch":
            statement = SQL("SELECT {} FROM {} WHERE {} = %s").format(columns, name, key)
        elif kind == "upsert":
            arrays = SQL(", ").join(SQL("%b::" + _ARRAY_TYPES[c.type]) for c in table.columns)
            updates = SQL(", ").join(
                SQL("{} = EXCLUDED.{}").format(Identifier(c), Identifier(c))
                for c in table.names[1:]
            )
            statement = SQL(
                "INSERT INTO {} ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO UPDATE SET {}"
            ).format(name, columns, arrays, key, updates)
        elif kind == "delete":
            statement = SQL("DELETE FROM {} WHERE {} = ANY(%b::text[])").format(name, key)
        else:
            statement = SQL("SELECT {} FROM {} WHERE {} > %s ORDER BY {} LIMIT {}").format(
                columns, name, key, key, SQL(str(SCAN_PAGE))
            )
        self._sql[(kind, table.name, suffix)] = statement
        return statement

    def fetch(self, curs: Any, table: Table, key: str, suffix: str = "") -> Row | None:
        curs.execute(self._statement("fetch", table, suffix), (key,))
        row = curs.fetchone()
        return None if row is None else table.decode([row[c] for c in table.names])

    def write(
        self, curs: Any, table: Table, encoded: Sequence[tuple[Any, ...]], suffix: str = ""
    ) -> None:
        statement = self._statement("upsert", table, suffix)
        for start in range(0, len(encoded), WRITE_CHUNK):
            chunk = encoded[start : start + WRITE_CHUNK]
            curs.execute(statement, [list(column) for column in zip(*chunk, strict=True)])

    def delete(self, curs: Any, table: Table, keys: Sequence[str], suffix: str = "") -> None:
        curs.execute(self._statement("delete", table, suffix), (list(keys),))

    def scan(self, curs: Any, table: Table, suffix: str = "") -> Iterator[Row]:
        statement = self._statement("scan", table, suffix)
        last = ""
        while True:
            curs.execute(statement, (last,))
            page = curs.fetchall()
            for row in page:
                yield table.decode([row[c] for c in table.names])
            if len(page) < SCAN_PAGE:
                return
            last = page[-1][table.key]

    def select(
        self, table: Table, where: Mapping[str, Any], order_by: Sequence[str] = ()
    ) -> list[Row]:
        for column in [*where, *order_by]:
            if column not in table.names:
                raise KeyError(column)
        condition = SQL(" AND ").join(SQL("{} = %s").format(Identifier(c)) for c in where)
        statement = SQL("SELECT {} FROM {} WHERE {}").format(
            SQL(", ").join(Identifier(c) for c in table.names),
            self._id(table.name),
            condition if where else SQL("TRUE"),
        )
        if order_by:
            statement += SQL(" ORDER BY {}").format(SQL(", ").join(Identifier(c) for c in order_by))
        with self.read_transaction() as curs:
            curs.execute(statement, tuple(where.values()))
            return [table.decode([row[c] for c in table.names]) for row in curs.fetchall()]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.read_transaction() as curs:
            curs.execute(SQL("SET LOCAL search_path TO {}").format(Identifier(self.schema)))
            curs.execute(sql.format(p="%s"), tuple(params) if params else None)
            return [dict(row) for row in curs.fetchall()]

    # -- rebuild --------------------------------------------------------------------------------

    def drop_shadows(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = %s",
                (self.schema,),
            )
            names = [str(row["tablename"]) for row in curs.fetchall()]
            for table in self.tables:
                for name in names:
                    if name.startswith(table.name + SHADOW_MARK):
                        curs.execute(SQL("DROP TABLE IF EXISTS {}").format(self._id(name)))

    def ensure_schema(self, fingerprint: str) -> bool:
        schema_table = self._id(SCHEMA_TABLE)
        with self.datastore.transaction(commit=True) as curs:
            self.lock(curs)
            curs.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} "
                    "(name text PRIMARY KEY, fingerprint text NOT NULL)"
                ).format(schema_table)
            )
            curs.execute(
                SQL("SELECT fingerprint FROM {} WHERE name = %s").format(schema_table), (self.name,)
            )
            row = curs.fetchone()
            if row is not None and row["fingerprint"] == fingerprint:
                return False
            for table in self.tables:
                curs.execute(SQL("DROP TABLE IF EXISTS {}").format(self._id(table.name)))
                for statement in self._create(table, ""):
                    curs.execute(statement)
            curs.execute(
                SQL("DELETE FROM {} WHERE application_name <> %s").format(
                    self._id(self.tracking_table_name)
                ),
                (self.table_migration_identifier,),
            )
            curs.execute(
                SQL(
                    "INSERT INTO {} VALUES (%s, %s) ON CONFLICT (name) "
                    "DO UPDATE SET fingerprint = EXCLUDED.fingerprint"
                ).format(schema_table),
                (self.name, fingerprint),
            )
            return row is not None

    def create_shadow(self, token: str) -> None:
        suffix = shadow_suffix(token)
        with self.datastore.transaction(commit=True) as curs:
            for table in self.tables:
                curs.execute(self._create(table, suffix)[0])

    def swap(self, curs: Any, token: str, tracking: Tracking) -> None:
        suffix = shadow_suffix(token)
        for table in self.tables:
            shadow = table.name + suffix
            curs.execute(SQL("DROP TABLE IF EXISTS {}").format(self._id(table.name)))
            curs.execute(
                SQL("ALTER TABLE {} RENAME TO {}").format(self._id(shadow), Identifier(table.name))
            )
            curs.execute(
                SQL("ALTER INDEX {} RENAME TO {}").format(
                    self._id(f"{shadow}_pkey"), Identifier(f"{table.name}_pkey")
                )
            )
            for statement in self._create(table, "")[1:]:
                curs.execute(statement)
        curs.execute(
            SQL("DELETE FROM {} WHERE application_name = %s").format(
                self._id(self.tracking_table_name)
            ),
            (tracking.application_name,),
        )
        self._insert_tracking(curs, tracking)
