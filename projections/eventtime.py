"""When an event happened, as the read models state it.

Every read model takes an event's time from here and nowhere else, under the name
``recorded_at``: the event's own timestamp, set by the application when the actor signed (the
signature's signing-time equals it, docs/design.md).

Trusted time (RFC 3161) is added to the ledger by batches: a TSA token over the Merkle root of a
run of events, recorded after the events themselves. It is not in the notification log, so a
projection cannot see it when it processes an event. The place for it is therefore the reader:
views keep each event's ``position`` beside ``recorded_at``, and a report looks up the batch
covering that position (``trusted_times``) to print the TSA's genTime beside it. Periods (day,
month) stay assigned by ``recorded_at`` so that a view never changes when a batch is stamped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Protocol

#: The stations' civil time: China Standard Time, UTC+8, no daylight saving. Days and months of
#: the quality metrics and the dates of the donor record are calendar dates in this zone.
STATION_TZ = timezone(timedelta(hours=8), "CST")

#: Name of the source of ``recorded_at`` in the views (the trusted time will name its TSA).
TIME_SOURCE = "event-timestamp"


def recorded_at(event: Any) -> datetime:
    """The time the event states it was recorded: its timestamp (UTC, tz-aware)."""
    timestamp: datetime = event.timestamp
    return timestamp if timestamp.tzinfo is not None else timestamp.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, the form every view stores."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def station_day(moment: datetime) -> str:
    """The station's calendar day (YYYY-MM-DD, UTC+8) of a moment."""
    return moment.astimezone(STATION_TZ).date().isoformat()


def station_date(moment: datetime) -> date:
    return moment.astimezone(STATION_TZ).date()


def station_today(now: datetime | None = None) -> date:
    """Today on the station's calendar (UTC+8): the day bookings, reports and ages refer to."""
    return station_date(now or datetime.now(UTC))


def station_start(day: date) -> datetime:
    """The first moment (00:00 UTC+8) of a station day, tz-aware."""
    return datetime.combine(day, time.min, STATION_TZ)


class TimeBatch(Protocol):
    """What a report needs of a stamped batch (``ledger.stores.Batch`` has these fields)."""

    @property
    def first_position(self) -> int: ...

    @property
    def last_position(self) -> int: ...

    @property
    def gen_time(self) -> str: ...


def trusted_times(positions: Iterable[int], batches: Sequence[TimeBatch]) -> Mapping[int, str]:
    """The TSA genTime of the batch covering each position; positions not yet stamped are absent.

    ``batches`` must be in ledger order (as ``select_batches`` returns them).
    """
    import bisect

    firsts = [b.first_position for b in batches]
    found: dict[int, str] = {}
    for position in positions:
        i = bisect.bisect_right(firsts, position) - 1
        if i >= 0 and batches[i].first_position <= position <= batches[i].last_position:
            found[position] = batches[i].gen_time
    return found
