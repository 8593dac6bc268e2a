"""Opening the read models for a use case: the station, its views and their projector.

Every reader (the reports, naming a deferred donation by its visit reference for ``ledger
forms``) catches the views up with the log first, so that what it reads is current.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass

from ledger.stores import persistence_env
from projections.runner import Projector, Views
from services.settings import Settings
from services.station import Station

#: ``progress(label, done, total)``: told how a long catch-up or rebuild advances.
Progress = Callable[[str, int, int], None]

#: A catch-up of fewer events than this reports no progress (it takes well under a second).
CATCH_UP_PROGRESS_MIN = 5000


@dataclass
class OpenedViews:
    station: Station
    views: Views
    projector: Projector


@contextmanager
def station_views(
    station: Station, *, catch_up: bool = True, progress: Progress | None = None
) -> Iterator[tuple[Views, Projector]]:
    """The read models of an open station, caught up with the log unless ``catch_up`` is
    False."""
    with closing(Views.open(persistence_env(station.settings.db))) as views:
        projector = Projector(station.app.recorder, station.app.mapper, views)
        if catch_up:
            behind = projector.head() - min(projector.position(n) for n in views.projections)
            told = progress if progress is not None and behind > CATCH_UP_PROGRESS_MIN else None
            projector.catch_up(
                progress=(lambda done, total: told("catching up", done, total)) if told else None
            )
        yield views, projector


@contextmanager
def open_views(
    settings: Settings, *, catch_up: bool = True, progress: Progress | None = None
) -> Iterator[OpenedViews]:
    """The station with its read models, caught up with the log unless ``catch_up`` is False."""
    with (
        Station.open(settings) as station,
        station_views(station, catch_up=catch_up, progress=progress) as (views, projector),
    ):
        yield OpenedViews(station, views, projector)
