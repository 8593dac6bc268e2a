"""What every request shares: the settings, the open station, the user store, one write lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from services.archive_jobs import ArchiveJobs
from services.settings import Settings
from services.station import Station
from services.users import UserStore

T = TypeVar("T")


@dataclass
class WebContext:
    settings: Settings
    station: Station
    users: UserStore
    #: Service calls run one at a time (the routes are sync: each runs in a worker thread, off
    #: the event loop; pyHanko's asyncio entry points are never called from the loop).
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: Archiving in the background, one job at a time (services/archive_jobs.py).
    archive_jobs: ArchiveJobs = field(init=False)

    def __post_init__(self) -> None:
        self.archive_jobs = ArchiveJobs(self.settings)

    def call(self, fn: Callable[[Station], T]) -> T:
        with self.lock:
            return fn(self.station)
