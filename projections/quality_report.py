"""The quality rates of docs/metrics.md, summed from the QualityMetrics facts.

Each rate is a numerator and a denominator counted over the facts whose day lies in the period
(both ends included), in total, by month and by each of its dimensions. Counts are kept beside
every rate so that a person can recount it; ``counted_items`` lists the donations and slots
behind the numerators.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.rules import RuleKind, load_rule_set
from projections.quality import FACTS
from projections.store import ViewStore

DIMENSION_COLUMNS = {
    "month": "substr(day, 1, 7)",
    "station": "station_id",
    "step": "step",
    "staff": "staff",
    "role": "role",
}


@dataclass(frozen=True)
class Metric:
    id: str
    title: str
    kind: str
    where: str
    numerator: str
    denominator: str
    dimensions: tuple[str, ...]


@dataclass(frozen=True)
class Count:
    id: str
    title: str
    kind: str
    where: str
    value: str


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


ANY = "1 = 1"


@functools.cache
def alert_steps() -> tuple[str, ...]:
    """Steps whose rule set has plausibility alerts: the denominator of the alert rate."""
    return tuple(sorted({r.step for r in load_rule_set().rules if r.kind == RuleKind.ALERT}))


@functools.cache
def metrics() -> tuple[Metric, ...]:
    return (
        Metric(
            "record_modification_rate",
            "Data modification rate (donation records amended)",
            "donation",
            ANY,
            "CASE WHEN amendments > 0 THEN 1 ELSE 0 END",
            "1",
            ("month", "station", "staff"),
        ),
        Metric(
            "step_modification_rate",
            "Step records amended",
            "step",
            ANY,
            "CASE WHEN amendments > 0 THEN 1 ELSE 0 END",
            "1",
            ("month", "step", "station", "staff"),
        ),
        Metric(
            "field_modification_rate",
            "Recorded fields amended",
            "step",
            ANY,
            "fields_amended",
            "fields",
            ("month", "step", "station", "staff"),
        ),
        Metric(
            "staff_missing_signature_rate",
            "Staff co-signatures missing at sealing",
            "slot",
            "role <> 'donor' AND state IN ('signed', 'missing')",
            "CASE WHEN state = 'missing' THEN 1 ELSE 0 END",
            "1",
            ("month", "step", "role", "station", "staff"),
        ),
        Metric(
            "donor_missing_signature_rate",
            "Donor co-signatures missing at sealing",
            "slot",
            "role = 'donor' AND state IN ('signed', 'missing')",
            "CASE WHEN state = 'missing' THEN 1 ELSE 0 END",
            "1",
            ("month", "step", "station", "staff"),
        ),
        Metric(
            "override_rate",
            "Eligible assessments with a hard-rule override",
            "step",
            "step = 'eligibility' AND state = 'eligible'",
            "CASE WHEN overrides > 0 THEN 1 ELSE 0 END",
            "1",
            ("month", "station", "staff"),
        ),
        Metric(
            "amendment_override_rate",
            "Amendments recording a hard-rule override",
            "amendment",
            ANY,
            "CASE WHEN overrides > 0 THEN 1 ELSE 0 END",
            "1",
            ("month", "step", "station", "staff"),
        ),
        Metric(
            "alert_acknowledgement_rate",
            "Step records with an acknowledged plausibility alert",
            "step",
            f"step IN {_in(alert_steps())}",
            "CASE WHEN alerts > 0 THEN 1 ELSE 0 END",
            "1",
            ("month", "step", "station", "staff"),
        ),
    )


COUNTS: tuple[Count, ...] = (
    Count("registrations", "Registrations", "step", "step = 'registration'", "1"),
    Count("exams", "General exams", "step", "step = 'general_exam'", "1"),
    Count("tests", "Pre-donation tests", "step", "step = 'pre_donation_test'", "1"),
    Count("collections", "Collections", "step", "step = 'collection'", "1"),
    Count("deferrals", "Deferrals", "step", "step = 'eligibility' AND state = 'deferred'", "1"),
    Count("amendments", "Amendments (RecordAmended)", "amendment", ANY, "1"),
    Count("overrides", "Hard rules overridden", "step", "step = 'eligibility'", "overrides"),
    Count("alerts", "Plausibility alerts acknowledged", "step", ANY, "alerts"),
    Count(
        "amendment_overrides",
        "Hard rules overridden by amendments",
        "amendment",
        ANY,
        "overrides",
    ),
    Count(
        "slots_not_required",
        "Co-signature slots not required (e-signature off)",
        "slot",
        "state = 'not_required'",
        "1",
    ),
)


@dataclass(frozen=True)
class Rate:
    metric: str
    dimension: str
    key: str
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True)
class CountRow:
    count: str
    dimension: str
    key: str
    value: int


@dataclass(frozen=True)
class CountedItem:
    """One unit behind a numerator: a donation, or a slot of a donation."""

    metric: str
    day: str
    donation_no: str
    donation_id: str
    what: str


@dataclass(frozen=True)
class QualityReport:
    start: date
    end: date
    rates: tuple[Rate, ...]
    counts: tuple[CountRow, ...]
    items: tuple[CountedItem, ...]

    def rate(self, metric: str, dimension: str = "all", key: str = "all") -> Rate:
        for rate in self.rates:
            if (rate.metric, rate.dimension, rate.key) == (metric, dimension, key):
                return rate
        return Rate(metric, dimension, key, 0, 0)

    def count(self, count: str, dimension: str = "all", key: str = "all") -> int:
        for row in self.counts:
            if (row.count, row.dimension, row.key) == (count, dimension, key):
                return row.value
        return 0

    def months(self) -> list[str]:
        """Every month of the period (YYYY-MM), with or without facts."""
        months = []
        year, month = self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months


def _grouped(
    store: ViewStore, kind: str, where: str, exprs: Sequence[str], dimension: str, period: Any
) -> list[tuple[str, list[int]]]:
    key = "'all'" if dimension == "all" else DIMENSION_COLUMNS[dimension]
    sums = ", ".join(f"SUM({e}) AS v{i}" for i, e in enumerate(exprs))
    group = "" if dimension == "all" else f" GROUP BY {key}"
    sql = (
        f"SELECT {key} AS k, {sums} FROM {FACTS.name} "
        f"WHERE kind = {{p}} AND day >= {{p}} AND day <= {{p}} AND ({where}){group}"
    )
    rows = store.query(sql, (kind, *period))
    out = []
    for row in rows:
        values = [int(row[f"v{i}"] or 0) for i in range(len(exprs))]
        if dimension == "all" or any(values):
            out.append((str(row["k"]), values))
    return sorted(out)


def quality_report(store: ViewStore, start: date, end: date) -> QualityReport:
    """Every rate and count of the period [start, end] (station days), from the facts view."""
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    period = (start.isoformat(), end.isoformat())
    rates: list[Rate] = []
    for metric in metrics():
        for dimension in ("all", *metric.dimensions):
            for key, (num, den) in _grouped(
                store,
                metric.kind,
                metric.where,
                (metric.numerator, metric.denominator),
                dimension,
                period,
            ):
                rates.append(Rate(metric.id, dimension, key, num, den))
    counts: list[CountRow] = []
    for count in COUNTS:
        for dimension in ("all", "month"):
            for key, (value,) in _grouped(
                store, count.kind, count.where, (count.value,), dimension, period
            ):
                counts.append(CountRow(count.id, dimension, key, value))
    return QualityReport(start, end, tuple(rates), tuple(counts), tuple(_items(store, period)))


def _items(store: ViewStore, period: tuple[str, str]) -> list[CountedItem]:
    items: list[CountedItem] = []
    for row in store.query(
        f"SELECT day, donation_no, donation_id, amendments FROM {FACTS.name} "
        "WHERE kind = 'donation' AND amendments > 0 AND day >= {p} AND day <= {p} "
        "ORDER BY day, donation_id",
        period,
    ):
        items.append(
            CountedItem(
                "record_modification_rate",
                str(row["day"]),
                str(row["donation_no"]),
                str(row["donation_id"]),
                f"{row['amendments']} amendment(s)",
            )
        )
    for row in store.query(
        f"SELECT day, donation_no, donation_id, role, name FROM {FACTS.name} "
        "WHERE kind = 'slot' AND state = 'missing' AND day >= {p} AND day <= {p} "
        "ORDER BY day, donation_id, name",
        period,
    ):
        metric = (
            "donor_missing_signature_rate"
            if row["role"] == "donor"
            else "staff_missing_signature_rate"
        )
        items.append(
            CountedItem(
                metric,
                str(row["day"]),
                str(row["donation_no"]),
                str(row["donation_id"]),
                f"slot {row['name']} missing",
            )
        )
    return items


def metric_dimensions() -> dict[str, tuple[str, ...]]:
    """Metric id -> the dimensions it is broken down by, in report order."""
    return {m.id: m.dimensions for m in metrics()}


def metric_titles() -> dict[str, str]:
    return {m.id: m.title for m in metrics()} | {c.id: c.title for c in COUNTS}
