"""The station's calendar for the adapters: today and the day of a moment in the station's
civil time (UTC+8, ``projections.eventtime.STATION_TZ``), the time the metrics, the booking slots
and the reports count in. Adapters take their default dates from here (not ``date.today()`` nor
the UTC date, which is the previous day from 00:00 to 08:00 at the station)."""

from __future__ import annotations

from datetime import date, datetime

from projections.eventtime import station_date, station_today


def today() -> date:
    """Today at the station."""
    return station_today()


def day_of(moment: datetime) -> date:
    """The station day of a tz-aware moment."""
    return station_date(moment)
