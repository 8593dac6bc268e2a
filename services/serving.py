"""What a long-running server (`ledger serve`) needs from the station beyond the use cases."""

from __future__ import annotations

from collections.abc import Callable

from ledger.timestamping import StamperThread
from services.station import Station


def start_stamping(station: Station) -> Callable[[], None]:
    """Timestamp what the server records, in the background, as `ledger demo` does; returns the
    function that stops it (flushing what is still pending if a TSA answers)."""
    stamping = StamperThread(station.stamper()).start()
    return stamping.stop
