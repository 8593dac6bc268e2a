"""Running the read models: catch up, rebuild into shadow tables and swap, compare digests.

eventsourcing's ``ProjectionRunner`` follows an application through a subscription (a thread
per projection; SQLite recorders do not support subscriptions). Here the same mechanism runs as
a loop over ``select_notifications``: read a batch of the log, decode it with the application's
mapper, and for each view apply the events it has not seen, write its rows and its tracking
position (eventsourcing's ``Tracking``) in one transaction. The view's position is checked at the
start of that transaction; a view moved by another writer raises ``ViewConflict`` and the batch
is retried from the new position.

A rebuild replays the log into shadow tables up to the position the live view has reached,
takes both digests, and (unless only checking) swaps the shadow tables in and sets the tracking
position, for all rebuilt views in one transaction.
"""

from __future__ import annotations

import contextlib
import gc
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    Mapper,
    Notification,
    Tracking,
)
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.utils import Environment, TopicError, resolve_topic

from projections.archive_queue import ArchiveQueueProjection
from projections.audit_trail import AuditTrailProjection
from projections.base import APPLICATION_NAME, LedgerProjection, Seen
from projections.donation_record import DonationRecordProjection
from projections.donor_record import DonorRecordProjection
from projections.quality import QualityMetricsProjection
from projections.store import (
    RowCache,
    ViewConflict,
    ViewStore,
    digest_at,
    fingerprint,
    shadow_suffix,
    view_digest,
)

#: Every read model, by name (``ledger rebuild --projection NAME``).
PROJECTIONS: Mapping[str, type[LedgerProjection]] = {
    cls.name: cls
    for cls in (
        DonorRecordProjection,
        DonationRecordProjection,
        AuditTrailProjection,
        QualityMetricsProjection,
        ArchiveQueueProjection,
    )
}

Progress = Callable[[int, int], None]
"""Called after each batch with (position reached, position the run goes to)."""


class Views:
    """The read models of one ledger database, sharing one datastore (and so transactions)."""

    def __init__(self, datastore: Any, projections: Sequence[LedgerProjection], closer: Any):
        self.datastore = datastore
        self.projections = {p.name: p for p in projections}
        self._closer = closer

    @classmethod
    def open(cls, env: Mapping[str, str]) -> Views:
        """The views in the database a ``persistence_env`` names; creates missing tables (on a
        read-only server, a hot standby, it only reads them)."""
        from ledger.stores import postgres_read_only, postgres_setup

        factory: Any = InfrastructureFactory.construct(Environment("LEDGER_VIEWS", dict(env)))
        datastore = factory.datastore
        if isinstance(datastore, PostgresDatastore) and postgres_read_only(env):
            # A hot standby: the views are read as the primary's projector wrote them.
            from projections.postgres import PostgresViewStore

            read_only = [
                PostgresViewStore(datastore, name=p.name, tables=p.tables)
                for p in PROJECTIONS.values()
            ]
            views = [p(store) for p, store in zip(PROJECTIONS.values(), read_only, strict=True)]
            return cls(datastore, views, factory)
        if isinstance(datastore, PostgresDatastore):
            from projections.postgres import PostgresViewStore

            with postgres_setup(dict(env)):
                stores: list[ViewStore] = []
                for projection_class in PROJECTIONS.values():
                    pg = PostgresViewStore(
                        datastore, name=projection_class.name, tables=projection_class.tables
                    )
                    pg.create_table()
                    stores.append(pg)
        elif isinstance(datastore, SQLiteDatastore):
            from projections.sqlite import SQLiteViewStore

            stores = []
            for projection_class in PROJECTIONS.values():
                lite = SQLiteViewStore(
                    datastore, name=projection_class.name, tables=projection_class.tables
                )
                lite.create_table()
                stores.append(lite)
        else:  # pragma: no cover
            raise TypeError(f"no view store for {type(datastore).__name__}")
        projections = []
        for projection_class, store in zip(PROJECTIONS.values(), stores, strict=True):
            store.ensure_schema(fingerprint(projection_class.tables, projection_class.version))
            projections.append(projection_class(store))
        return cls(datastore, projections, factory)

    def __getitem__(self, name: str) -> LedgerProjection:
        try:
            return self.projections[name]
        except KeyError:
            known = ", ".join(self.projections)
            raise KeyError(f"no projection {name!r} (known: {known})") from None

    def select(self, names: Sequence[str] | None) -> list[LedgerProjection]:
        return [self[n] for n in names] if names else list(self.projections.values())

    def close(self) -> None:
        self._closer.close()


@dataclass
class _Target:
    """One view in a run: its rows, the position it has reached, the position it goes to."""

    projection: LedgerProjection
    rows: RowCache
    position: int
    stop: int = 0


@dataclass(frozen=True)
class RebuildResult:
    name: str
    position: int
    events: int
    seconds: float
    live_digest: str | None
    rebuilt_digest: str | None
    replaced: bool

    @property
    def matches(self) -> bool:
        return self.live_digest == self.rebuilt_digest


class Projector:
    """Feeds the ledger's notification log to its views."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        views: Views,
        *,
        batch_size: int = 1000,
        cache_rows: int = 20_000,
        application_name: str = APPLICATION_NAME,
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.views = views
        self.batch_size = batch_size
        self.cache_rows = cache_rows
        self.application_name = application_name
        self._topics: dict[str, type] = {}

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def position(self, name: str) -> int:
        return int(self.views[name].view.max_tracking_id(self.application_name) or 0)

    # -- incremental --------------------------------------------------------------------------

    def catch_up(
        self,
        names: Sequence[str] | None = None,
        progress: Progress | None = None,
        *,
        attempts: int = 5,
    ) -> int:
        """Process every event the views have not seen; returns how many log events were read."""
        projections = self.views.select(names)
        for attempt in range(attempts):
            targets = [
                _Target(p, RowCache(p.view, capacity=self.cache_rows), self.position(p.name))
                for p in projections
            ]
            try:
                return self._feed(targets, None, progress)
            except ViewConflict:
                if attempt == attempts - 1:
                    raise
        return 0  # pragma: no cover

    # -- rebuild ------------------------------------------------------------------------------

    def rebuild(
        self,
        names: Sequence[str] | None = None,
        *,
        check: bool = False,
        digests: bool = True,
        progress: Progress | None = None,
    ) -> list[RebuildResult]:
        """Replay the log into shadow tables and swap them in (or, with ``check``, only
        compare digests). The live views are caught up first; the rebuild goes to the same
        position, so the two digests describe the same events."""
        projections = self.views.select(names)
        self.catch_up([p.name for p in projections])
        live: dict[str, tuple[int, str | None]] = {}
        for p in projections:
            if digests:
                live[p.name] = digest_at(p.view, self.application_name)
            else:
                live[p.name] = (self.position(p.name), None)
        token = uuid.uuid4().hex[:8]
        suffix = shadow_suffix(token)
        for p in projections:
            p.view.drop_shadows()
            p.view.create_shadow(token)
        started = time.perf_counter()
        try:
            events = self._replay(projections, live, suffix, progress)
            seconds = time.perf_counter() - started
            rebuilt = {
                p.name: view_digest(p.view, suffix) if digests else None for p in projections
            }
            if not check:
                with self._transaction() as curs:
                    for p in projections:
                        p.view.swap(curs, token, Tracking(self.application_name, live[p.name][0]))
        finally:
            for p in projections:
                with contextlib.suppress(Exception):  # cleanup must not hide the error
                    p.view.drop_shadows()
        results = [
            RebuildResult(
                name=p.name,
                position=live[p.name][0],
                events=events,
                seconds=seconds,
                live_digest=live[p.name][1],
                rebuilt_digest=rebuilt[p.name],
                replaced=not check,
            )
            for p in projections
        ]
        if not check:
            self.catch_up([p.name for p in projections])
        return results

    def digest(self, name: str) -> str:
        return view_digest(self.views[name].view)

    # -- the loop -----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        first = next(iter(self.views.projections.values()))
        with first.view.write_transaction() as curs:
            yield curs

    def _decode(self, notes: Sequence[Notification], wanted: set[type]) -> list[Seen]:
        """The events some target handles, decoded by the application's mapper; the others
        (donor certificates, number index, topics this code does not know) are not decoded."""
        classes = self._topics
        events = []
        for note in notes:
            cls = classes.get(note.topic)
            if cls is None:
                try:
                    cls = resolve_topic(note.topic)
                except TopicError:  # written by newer code: no view here handles it
                    cls = type(None)
                classes[note.topic] = cls
            if cls in wanted:
                events.append(Seen(self.mapper.to_domain_event(note), note.id))
        return events

    def _feed(self, targets: list[_Target], stop: int | None, progress: Progress | None) -> int:
        """Incremental: each batch, every target's rows and tracking in one transaction."""
        if not targets:
            return 0
        wanted = {cls for t in targets for cls in t.projection.event_classes}
        start = min(t.position for t in targets)
        goal = stop if stop is not None else self.head()
        read = 0
        while stop is None or start < stop:
            notes = self.recorder.select_notifications(start + 1, self.batch_size, stop=stop)
            if not notes:
                break
            events = self._decode(notes, wanted)
            last = notes[-1].id
            try:
                with self._transaction() as curs:
                    for target in targets:
                        self._apply(curs, target, events, last)
            except BaseException:
                for target in targets:
                    target.rows.clear()
                raise
            for target in targets:
                target.position = max(target.position, last)
            read += len(notes)
            start = last
            if progress is not None:
                progress(last, max(goal, last))
        return read

    def _replay(
        self,
        projections: Sequence[LedgerProjection],
        live: Mapping[str, tuple[int, str | None]],
        suffix: str,
        progress: Progress | None,
    ) -> int:
        """Rebuild: replay the log up to each view's live position into its shadow tables,
        one transaction per batch. Nothing else writes the shadow tables: no tracking check."""
        targets = [
            _Target(
                p,
                RowCache(p.view, suffix=suffix, known_empty=True, capacity=self.cache_rows),
                0,
                stop=live[p.name][0],
            )
            for p in projections
        ]
        stop = max((t.stop for t in targets), default=0)
        wanted = {cls for t in targets for cls in t.projection.event_classes}
        collecting = gc.isenabled()
        gc.disable()  # a bulk load allocates millions of acyclic objects: no cycles to find
        try:
            start = read = 0
            while start < stop:
                notes = self.recorder.select_notifications(start + 1, self.batch_size, stop=stop)
                if not notes:
                    break
                events = self._decode(notes, wanted)
                last = notes[-1].id
                with self._transaction() as curs:
                    for target in targets:
                        end = min(last, target.stop)
                        if target.position >= end:
                            continue
                        store, rows = target.projection.view, target.rows
                        store.lock(curs)
                        rows.bind(curs)
                        apply, floor = target.projection.apply, target.position
                        for seen in events:
                            if floor < seen.position <= end:
                                apply(seen, rows)
                        rows.flush(curs)
                        target.position = end
                read += len(notes)
                start = last
                if progress is not None:
                    progress(last, stop)
        finally:
            if collecting:
                gc.enable()
        return read

    def _apply(self, curs: Any, target: _Target, events: Sequence[Seen], last: int) -> None:
        store = target.projection.view
        if target.position >= last:
            return
        store.lock(curs)
        current = store.position(curs, self.application_name)
        if current != target.position:
            raise ViewConflict(f"{store.name} is at {current}, this run expected {target.position}")
        rows = target.rows
        rows.bind(curs)
        apply, floor = target.projection.apply, target.position
        for seen in events:
            if seen.position > floor:
                apply(seen, rows)
        rows.flush(curs)
        store.track(curs, Tracking(self.application_name, last))
