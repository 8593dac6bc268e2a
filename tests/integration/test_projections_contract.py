"""One contract for the read models, run against every store (SQLite and PostgreSQL).

The ledger is written through the real application (signed events, chained stores); the views
follow it with eventsourcing tracking in the same database.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from ledger.stores import persistence_env
from projections import queries
from projections.quality_report import quality_report
from projections.runner import PROJECTIONS, Projector, Views
from projections.store import ViewStore, view_digest, view_dump
from services.station import Station
from tests.workflow import amend_temperature, complete, make_id, register, through_test


@pytest.fixture
def views(station: Station) -> Iterator[Views]:
    opened = Views.open(persistence_env(station.settings.db))
    yield opened
    opened.close()


def _projector(station: Station, views: Views, batch_size: int = 1000) -> Projector:
    return Projector(station.app.recorder, station.app.mapper, views, batch_size=batch_size)


def _digests(views: Views) -> dict[str, str]:
    return {name: view_digest(p.view) for name, p in views.projections.items()}


def _day(station: Station) -> None:
    """A few donations: complete, amended, missing co-signature, deferred, open."""
    amended = complete(station)
    amend_temperature(station, amended)
    complete(station, cosign=False)
    deferred = register(station, sex="F")
    through_test(station, deferred, hb=110.0)
    station.app.assess(
        deferred, station.signer("P002"), decision="deferred", defer_reason="hb.female.min"
    )
    station.app.seal(deferred, station.system)
    register(station)


def test_rebuild_equals_the_incrementally_maintained_views(station: Station, views: Views) -> None:
    projector = _projector(station, views, batch_size=3)
    amended = complete(station)
    projector.catch_up()  # the views follow the ledger command by command
    amend_temperature(station, amended)
    projector.catch_up()
    _day(station)
    projector.catch_up()
    head = projector.head()
    assert {projector.position(name) for name in PROJECTIONS} == {head}
    incremental = _digests(views)
    checked = projector.rebuild(check=True)
    assert all(r.matches for r in checked), checked
    assert {r.name: r.rebuilt_digest for r in checked} == incremental
    assert _digests(views) == incremental  # --check replaces nothing
    # One read model at a time, on the same projector (each reads only the events it needs).
    for name in ("donor_record", "audit_trail", "archive_queue"):
        [alone] = projector.rebuild([name], check=True)
        assert alone.matches and alone.rebuilt_digest == incremental[name]
    rebuilt = _projector(station, views, batch_size=5000).rebuild()
    assert all(r.matches and r.replaced for r in rebuilt)
    assert _digests(views) == incremental
    assert {projector.position(name) for name in PROJECTIONS} == {head}


def test_a_crash_mid_rebuild_leaves_the_old_views_serving(
    station: Station, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    _day(station)
    projector = _projector(station, views, batch_size=5)
    projector.catch_up()
    before = _digests(views)
    number = _any_number(views)
    projection = views["donation_record"]
    calls = {"n": 0}
    original = projection.apply

    def crashing(seen: Any, rows: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 20:
            raise RuntimeError("power cut")
        original(seen, rows)

    monkeypatch.setattr(projection, "apply", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        projector.rebuild()
    monkeypatch.undo()
    assert _digests(views) == before
    assert queries.donation_record(views, number) is not None  # the old view still serves
    assert not _shadow_tables(views)
    assert all(r.matches for r in projector.rebuild(check=True))


def test_a_failing_swap_changes_no_view(
    station: Station, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    _day(station)
    projector = _projector(station, views)
    projector.catch_up()
    before = _digests(views)
    last = views["archive_queue"].view
    original = type(last).swap

    def failing(self: ViewStore, curs: Any, token: str, tracking: Any) -> None:
        original(self, curs, token, tracking)
        if self is last:
            raise RuntimeError("crash between the table renames and the commit")

    monkeypatch.setattr(type(last), "swap", failing)
    with pytest.raises(RuntimeError, match="crash between"):
        projector.rebuild()
    monkeypatch.undo()
    assert _digests(views) == before  # the four swaps before it were rolled back too
    assert all(r.matches for r in projector.rebuild(check=True))


def test_concurrent_catch_ups_apply_each_event_once(station: Station) -> None:
    _day(station)
    opened = [Views.open(persistence_env(station.settings.db)) for _ in range(3)]
    try:
        projectors = [_projector(station, v, batch_size=4) for v in opened]
        errors: list[BaseException] = []

        def run(projector: Projector) -> None:
            try:
                projector.catch_up(attempts=50)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(p,)) for p in projectors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert all(r.matches for r in projectors[0].rebuild(check=True))
    finally:
        for v in opened:
            v.close()


def test_id_numbers_are_masked_in_every_view(station: Station, views: Views) -> None:
    birth = date(1990, 5, 17)
    number = make_id(birth, "F")
    donation_id = register(station, id_number=number, birth=birth)
    through_test(station, donation_id)
    _projector(station, views).catch_up()
    dumped = repr({name: view_dump(p.view) for name, p in views.projections.items()})
    assert number not in dumped and number[6:14] not in dumped.replace("1990-05-17", "")
    assert number[:6] + "*" * 12 in dumped
    # No other 18-character resident ID either (hex digests are not IDs: letters around them).
    assert not re.search(r"(?<![0-9a-fA-F])\d{17}[\dX](?![0-9a-fA-F])", dumped)


def test_quality_report_from_the_ledger(station: Station, views: Views) -> None:
    _day(station)
    _projector(station, views).catch_up()
    today = date.today()
    report = quality_report(
        views["quality_metrics"].view, today - timedelta(days=1), today + timedelta(days=1)
    )
    records = report.rate("record_modification_rate")
    assert (records.numerator, records.denominator) == (1, 4)
    staff = report.rate("staff_missing_signature_rate")
    # complete(cosign=True), complete(cosign=False), the deferral (consent not co-signed).
    assert (staff.numerator, staff.denominator) == (2, 3)
    # tests/workflow.complete never has the donor co-sign the collection checks.
    donor = report.rate("donor_missing_signature_rate")
    assert (donor.numerator, donor.denominator) == (4, 4)
    assert report.count("deferrals") == 1
    assert report.count("collections") == 2
    queued = queries.archive_queue(views)
    assert [(q["ready"], q["missing_signatures"]) for q in queued] == [(False, 2), (False, 3)]


def test_views_of_an_older_projection_version_are_rebuilt(
    station: Station, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    _day(station)
    _projector(station, views).catch_up()
    before = _digests(views)
    views.close()
    monkeypatch.setattr(PROJECTIONS["audit_trail"], "version", 99)
    reopened = Views.open(persistence_env(station.settings.db))
    try:
        projector = _projector(station, reopened)
        assert projector.position("audit_trail") == 0
        assert projector.position("donor_record") == projector.head()
        projector.catch_up()
        assert _digests(reopened) == before
    finally:
        reopened.close()


def _any_number(views: Views) -> str:
    queue = queries.archive_queue(views)
    return str(queue[0]["donation_no"])


def _shadow_tables(views: Views) -> list[str]:
    store = views["donation_record"].view
    if "sqlite" in type(store).__name__.lower():
        rows = store.query("SELECT name FROM sqlite_master WHERE name LIKE '%rebuild%'")
    else:
        rows = store.query(
            "SELECT tablename AS name FROM pg_catalog.pg_tables WHERE tablename LIKE "
            "'%rebuild%' AND schemaname = current_schema()"
        )
    return [str(r["name"]) for r in rows]
