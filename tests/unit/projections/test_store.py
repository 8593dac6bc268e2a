"""The view store: rows read through and written back, the digest, the schema fingerprint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from eventsourcing.persistence import IntegrityError, Tracking

from ledger.stores import persistence_env
from projections.base import APPLICATION_NAME
from projections.runner import Views
from projections.store import (
    RowCache,
    Table,
    ViewStore,
    digest_rows,
    document,
    fingerprint,
    integer,
    text,
    view_digest,
)
from tests.unit.projections.builder import DonationEvents, at, feed

TABLE = Table("t", (text("k"), integer("n"), document()))


@pytest.fixture
def views(tmp_path: Path) -> Iterator[Views]:
    opened = Views.open(persistence_env(f"sqlite:///{tmp_path / 'views.sqlite'}"))
    yield opened
    opened.close()


def test_digest_is_rfc8785_lines_in_key_order(views: Views) -> None:
    store = views["archive_queue"].view
    station = store.table("archive_station")
    rows: list[dict[str, Any]] = [
        {"station_key": "b", "doc": {"z": 1.0, "a": "站"}},
        {"station_key": "a", "doc": {"department": None}},
    ]
    with store.write_transaction() as curs:
        store.upsert(curs, station, rows)
    import hashlib

    expected = hashlib.sha256()
    for table in store.tables:
        header: Any = {"table": table.name, "columns": list(table.names)}
        expected.update(rfc8785.dumps(header))
        expected.update(b"\n")
        if table is station:
            for row in sorted(rows, key=lambda r: str(r["station_key"])):
                expected.update(rfc8785.dumps(row) + b"\n")
    assert view_digest(store) == expected.hexdigest()
    # 1.0 and 1 are the same JSON number: the digest does not depend on how a value was typed.
    with store.write_transaction() as curs:
        store.upsert(curs, station, [{"station_key": "b", "doc": {"a": "站", "z": 1}}])
    assert view_digest(store) == expected.hexdigest()
    with store.write_transaction() as curs:
        store.upsert(curs, station, [{"station_key": "b", "doc": {"a": "站", "z": 2}}])
    assert view_digest(store) != expected.hexdigest()


class CountingStore:
    """Wraps a store and counts key lookups."""

    def __init__(self, store: ViewStore) -> None:
        self.store = store
        self.fetches = 0
        self.tables = store.tables

    def fetch(self, curs: object, table: Table, key: str, suffix: str = "") -> object:
        self.fetches += 1
        return self.store.fetch(curs, table, key, suffix)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_row_cache_on_empty_shadow_never_looks_up_unwritten_keys(views: Views) -> None:
    store = views["donor_record"].view
    counting = CountingStore(store)
    rows = RowCache(counting, known_empty=True, capacity=1)  # type: ignore[arg-type]
    with store.write_transaction() as curs:
        rows.bind(curs)
        assert rows.get("donor_visit", "d1") is None
        rows.put("donor_visit", {"donation_id": "d1", "donor_id": "x"})
        rows.put("donor_visit", {"donation_id": "d2", "donor_id": "y"})
        rows.flush(curs)  # capacity 1: d1 is evicted
        assert counting.fetches == 0
        assert rows.get("donor_visit", "d1") == {"donation_id": "d1", "donor_id": "x"}
        assert counting.fetches == 1  # written earlier, evicted: read back
        assert rows.get("donor_visit", "d3") is None
        assert counting.fetches == 1


def test_a_failed_flush_leaves_nothing_behind(views: Views) -> None:
    store = views["donor_record"].view
    rows = RowCache(store)
    with pytest.raises(RuntimeError), store.write_transaction() as curs:
        rows.bind(curs)
        rows.put("donor_visit", {"donation_id": "d1", "donor_id": "x"})
        rows.flush(curs)
        raise RuntimeError("crash before commit")
    with store.read_transaction() as curs:
        assert store.fetch(curs, store.table("donor_visit"), "d1") is None


def test_process_event_is_idempotent_per_position(views: Views) -> None:
    donation = DonationEvents().register(at("2026-03-10T02:00"))
    feed(views, donation.events)
    projection = views["donation_record"]
    before = view_digest(projection.view)
    projection.process_event(donation.events[0], Tracking(APPLICATION_NAME, 1))  # seen: skipped
    assert view_digest(projection.view) == before
    assert projection.view.max_tracking_id(APPLICATION_NAME) == 1
    with pytest.raises(IntegrityError):  # eventsourcing's tracking refuses to go backwards
        projection.view.insert_tracking(Tracking(APPLICATION_NAME, 1))


def test_a_new_projection_version_empties_the_view(tmp_path: Path) -> None:
    env = persistence_env(f"sqlite:///{tmp_path / 'views.sqlite'}")
    views = Views.open(env)
    feed(views, DonationEvents().register(at("2026-03-10T02:00")).events)
    store = views["donation_record"].view
    tables = views["donation_record"].tables
    version = views["donation_record"].version
    assert store.max_tracking_id(APPLICATION_NAME) == 1
    assert store.ensure_schema(fingerprint(tables, version)) is False  # unchanged: kept
    assert store.max_tracking_id(APPLICATION_NAME) == 1
    assert store.ensure_schema(fingerprint(tables, version + 1)) is True  # changed: emptied
    assert store.max_tracking_id(APPLICATION_NAME) is None
    with store.read_transaction() as curs:
        assert digest_rows(store, curs) == view_digest(store)
        assert list(store.scan(curs, tables[0])) == []
    views.close()
    assert fingerprint(tables, 1) != fingerprint((TABLE,), 1)


def test_json_columns_round_trip_unicode_and_nulls(views: Views) -> None:
    store = views["archive_queue"].view
    station = store.table("archive_station")
    doc = {"name": "王𬌗", "none": None, "list": [1, 2.5, "x"]}
    with store.write_transaction() as curs:
        store.upsert(curs, station, [{"station_key": "s", "doc": doc}])
    [row] = store.select(station, {"station_key": "s"})
    assert row["doc"] == doc
    assert json.loads(json.dumps(row["doc"])) == doc
