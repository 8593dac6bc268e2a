"""What every request shares: the settings, the open station, the user store, one write lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

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

    def call(self, fn: Callable[[Station], T]) -> T:
        with self.lock:
            return fn(self.station)
