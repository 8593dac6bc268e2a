"""The DonationRecord document of one donation, from its events alone.

Forms are produced right after sealing, when the DonationRecord view may not have caught up; the
donation's own events are at hand. Replaying them through the projection's handlers over an
in-memory row map gives the same document the view holds (same code, same shape), without a
view store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from projections.base import Seen
from projections.donation_record import TABLE, DonationRecordProjection


class _Rows:
    """The two calls the DonationRecord handlers make on a RowCache, over a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        return self.rows.get(key) if table == TABLE else None

    def put(self, table: str, row: dict[str, Any]) -> None:
        if table == TABLE:
            self.rows[row["donation_id"]] = row


def donation_record(events: Sequence[tuple[int, Any]]) -> dict[str, Any]:
    """The record document of the donation whose events (with log positions) are given, in
    version order. Raises ValueError if they do not start with its registration."""
    projection = DonationRecordProjection(cast(Any, None))  # no view store: rows are in memory
    rows = _Rows()
    for position, event in events:
        projection.apply(Seen(event, position), cast(Any, rows))
    if len(rows.rows) != 1:
        raise ValueError("the events do not hold one registered donation")
    doc: dict[str, Any] = next(iter(rows.rows.values()))["doc"]
    return doc
