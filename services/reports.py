"""Report use cases: rebuilding the read models, the quality report, one donation, its audit
trail, the archive queue and the amendments of a period.

Each use case takes a typed frozen command, catches the views up with the log (see
`services.views`), and returns a typed result: rows a person reads, already named (signers by
name, deferred donations by their visit reference) and with personal data masked (ID numbers
keep their first 6 characters, names their first one). Every result has ``to_json()``: stable
keys under ``{"report": NAME, "version": REPORT_JSON_VERSION, ...}`` (docs/reports.md).
Rendering (tables, colours) is the adapter's. Bad input raises `ReportError` (exit 2).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from documents.quality_files import write_quality_chart, write_quality_csv
from ledger.identity import mask_id
from ledger.personal import mask_phone
from projections import queries
from projections.archive_queue import surname_only
from projections.audit_trail import ordered_steps
from projections.eventtime import TIME_SOURCE, station_day, trusted_times
from projections.quality_report import QualityReport, metric_dimensions, metric_titles
from projections.quality_report import quality_report as compute_quality
from projections.runner import PROJECTIONS, RebuildResult
from services.references import ResolvedDonation, resolve_donation, visit_reference
from services.settings import Settings
from services.views import Progress, open_views
from signing.errors import InputError

__all__ = [
    "COUNT_ORDER",
    "PROJECTION_NAMES",
    "REPORT_JSON_VERSION",
    "TIME_SOURCE",
    "AmendmentRow",
    "AmendmentsQuery",
    "AmendmentsReport",
    "ArchiveQueue",
    "ArchiveRow",
    "AuditQuery",
    "AuditReport",
    "AuditRow",
    "DonationQuery",
    "DonationReport",
    "QualityQuery",
    "QualityResult",
    "Rebuild",
    "Rebuilt",
    "ReportError",
    "amendments_in",
    "amendments_report",
    "archive_queue",
    "audit_report",
    "donation_report",
    "mask_personal",
    "quality",
    "rebuild",
]

#: Version of every report's JSON shape (docs/reports.md); a key removed or renamed bumps it.
REPORT_JSON_VERSION = 1

#: The read models `rebuild` knows, in replay order.
PROJECTION_NAMES: tuple[str, ...] = tuple(PROJECTIONS)

#: The counts the quality report shows beside its rates, in report order.
COUNT_ORDER = (
    "registrations",
    "exams",
    "tests",
    "collections",
    "deferrals",
    "amendments",
    "overrides",
    "alerts",
    "slots_not_required",
)


class ReportError(InputError, ValueError):
    """Bad input to a report (exit 2 with one line)."""


def _envelope(report: str, **body: Any) -> dict[str, Any]:
    return {"report": report, "version": REPORT_JSON_VERSION, **body}


# -- personal data ------------------------------------------------------------------------------


def mask_personal(key: str, value: Any) -> Any:
    """A value as a report may show it: a ``name`` keeps its first character, an ID number
    (any ``*id_number*`` key not already ``*_masked``) its first 6, a phone number (``phone`` or
    ``*_phone``) its first 3 and last 4 digits; dicts and lists recursively."""
    if isinstance(value, Mapping):
        return {str(k): mask_personal(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_personal(key, v) for v in value]
    if isinstance(value, str) and value:
        if key == "name":
            return surname_only(value)
        if "id_number" in key and not key.endswith("_masked"):
            return mask_id(value)
        if key == "phone" or key.endswith("_phone"):
            return mask_phone(value)
    return value


def _signer_name(actor: str, signers: Mapping[str, Mapping[str, Any]]) -> str:
    """``STAFF:P001`` -> ``P001 <name on the certificate>``; a donor is ``donor``."""
    signer = signers.get(actor)
    if signer is not None:
        return f"{actor.partition(':')[2]} {signer['name']}"
    return "donor" if actor.startswith("DONOR:") else actor


# -- rebuild ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rebuild:
    """Replay the log into the read models (all, or ``projections``); with ``check``, only
    compare the rebuilt digests with the incrementally maintained views."""

    projections: tuple[str, ...] | None = None
    check: bool = False


@dataclass(frozen=True)
class Rebuilt:
    results: tuple[RebuildResult, ...]
    seconds: float
    check: bool

    @property
    def differing(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.results if not r.matches)

    @property
    def events(self) -> int:
        return self.results[0].events if self.results else 0

    @property
    def events_per_second(self) -> float:
        return self.events / max(self.results[0].seconds, 1e-9) if self.results else 0.0


def rebuild(settings: Settings, command: Rebuild, progress: Progress | None = None) -> Rebuilt:
    unknown = sorted(set(command.projections or ()) - set(PROJECTION_NAMES))
    if unknown:
        raise ReportError(f"no read model {', '.join(unknown)} (known: {', '.join(PROJECTIONS)})")
    label = "checking" if command.check else "rebuilding"
    label += " " + ", ".join(command.projections or ["all read models"])
    with open_views(settings, catch_up=False) as opened:
        started = time.perf_counter()
        results = opened.projector.rebuild(
            command.projections,
            check=command.check,
            progress=(lambda done, total: progress(label, done, total)) if progress else None,
        )
        return Rebuilt(tuple(results), time.perf_counter() - started, command.check)


# -- quality --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityQuery:
    """The quality rates of the station days ``start`` to ``end`` (both included); optionally
    written as CSV and as a PNG chart."""

    start: date
    end: date
    csv: Path | None = None
    chart: Path | None = None


@dataclass(frozen=True)
class QualityResult:
    report: QualityReport
    titles: Mapping[str, str]
    #: Metric id -> the dimensions it is broken down by, in report order.
    dimensions: Mapping[str, tuple[str, ...]]
    #: Visit reference of each counted donation that has no number.
    visit_references: Mapping[str, str]
    written: tuple[Path, ...] = ()

    def donation_label(self, donation_no: str, donation_id: str) -> str:
        return donation_no or self.visit_references.get(donation_id, donation_id)

    def to_json(self) -> dict[str, Any]:
        report = self.report
        return _envelope(
            "quality",
            **{"from": report.start.isoformat(), "to": report.end.isoformat()},
            rates=[
                {**dataclasses.asdict(r), "title": self.titles[r.metric], "value": r.value}
                for r in report.rates
            ],
            counts=[
                {**dataclasses.asdict(c), "title": self.titles[c.count]} for c in report.counts
            ],
            counted=[
                {
                    "metric": i.metric,
                    "day": i.day,
                    "donation": self.donation_label(i.donation_no, i.donation_id),
                    "donation_no": i.donation_no,
                    "donation_id": i.donation_id,
                    "what": i.what,
                }
                for i in report.items
            ],
            written=[str(p) for p in self.written],
        )


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise ReportError(f"--to {end} is before --from {start}")


def quality(
    settings: Settings, query: QualityQuery, progress: Progress | None = None
) -> QualityResult:
    _check_period(query.start, query.end)
    with open_views(settings, progress=progress) as opened:
        report = compute_quality(opened.views["quality_metrics"].view, query.start, query.end)
    titles = metric_titles()
    written: list[Path] = []
    if query.csv is not None:
        write_quality_csv(report, titles, query.csv)
        written.append(query.csv)
    if query.chart is not None:
        write_quality_chart(report, titles, query.chart)
        written.append(query.chart)
    refs = {i.donation_id: visit_reference(i.donation_id) for i in report.items}
    return QualityResult(report, titles, metric_dimensions(), refs, tuple(written))


# -- one donation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DonationQuery:
    """One donation, named by its donation number, visit reference or UUID."""

    donation: str


@dataclass(frozen=True)
class FiredRule:
    rule_id: str
    outcome: str
    value: Any


@dataclass(frozen=True)
class StepLine:
    step: str
    recorded_by: str
    recorded_at: str
    values: Mapping[str, Any]
    amended_fields: tuple[str, ...]
    rules_passed: int
    rules_fired: tuple[FiredRule, ...]


@dataclass(frozen=True)
class SlotLine:
    slot: str
    role: str
    state: str
    signed_by: str | None
    signed_at: str | None


@dataclass(frozen=True)
class ReactionLine:
    recorded_by: str
    recorded_at: str
    values: Mapping[str, Any]


#: Step values a report leaves out (keys and slot bookkeeping, not what was recorded).
_HIDDEN_VALUES = ("required_slots", "donor_ref", "donor_id")


@dataclass(frozen=True)
class DonationReport:
    donation: ResolvedDonation
    #: The record's header: status, station, product, donor (masked), dates.
    header: Mapping[str, Any]
    steps: tuple[StepLine, ...]
    slots: tuple[SlotLine, ...]
    reactions: tuple[ReactionLine, ...]

    def to_json(self) -> dict[str, Any]:
        return _envelope(
            "donation",
            donation=_donation_json(self.donation),
            **self.header,
            steps=[
                {
                    "step": s.step,
                    "recorded_by": s.recorded_by,
                    "recorded_at": s.recorded_at,
                    "values": dict(s.values),
                    "amended_fields": list(s.amended_fields),
                    "rules_passed": s.rules_passed,
                    "rules_fired": [
                        {"rule_id": r.rule_id, "outcome": r.outcome, "value": r.value}
                        for r in s.rules_fired
                    ],
                }
                for s in self.steps
            ],
            slots=[
                {
                    "slot": s.slot,
                    "role": s.role,
                    "state": s.state,
                    "signed_by": s.signed_by,
                    "signed_at": s.signed_at,
                }
                for s in self.slots
            ],
            reactions=[
                {"recorded_by": r.recorded_by, "recorded_at": r.recorded_at, "values": r.values}
                for r in self.reactions
            ],
        )


def _donation_json(donation: ResolvedDonation) -> dict[str, str]:
    return {
        "label": donation.label,
        "donation_no": donation.donation_no,
        "visit_reference": donation.visit_reference,
        "donation_id": str(donation.donation_id),
    }


def donation_report(
    settings: Settings, query: DonationQuery, progress: Progress | None = None
) -> DonationReport:
    with open_views(settings, progress=progress) as opened:
        donation = resolve_donation(opened.views, query.donation)
        record = queries.donation_record_by_id(opened.views, str(donation.donation_id))
        signers = queries.signers(opened.views)
    if record is None:  # pragma: no cover - resolve_donation read the same view
        raise ReportError(f"no donation {query.donation}")
    identity = mask_personal("identity", record["identity"])
    header = {
        "status": record["status"],
        "final_status": record["final_status"],
        "station_id": record["station_id"],
        "product": record["product"],
        "channel": record["channel"],
        "donor": {
            "name": identity["name"],
            "sex": identity["sex"],
            "birth_date": identity["birth_date"],
            "id_type": identity["id_type"],
            "id_number_masked": identity["id_number_masked"],
        },
        "registered_at": record["registered_at"],
        "sealed_at": record["sealed_at"],
        "amendments": record["amendments"],
    }
    steps = []
    for name in ordered_steps(record):
        step = record["steps"][name]
        rules = step["rules"]
        steps.append(
            StepLine(
                name,
                _signer_name(step["actor"], signers),
                step["recorded_at"],
                {
                    k: mask_personal(k, v)
                    for k, v in step["values"].items()
                    if k not in _HIDDEN_VALUES
                },
                tuple(step["amended_fields"]),
                len(rules["passed"]),
                tuple(FiredRule(o["rule_id"], o["outcome"], o["value"]) for o in rules["fired"]),
            )
        )
    slots = tuple(
        SlotLine(
            s["slot"],
            s["role"],
            s["state"],
            _signer_name(s["signed_by"], signers) if s["signed_by"] else None,
            s["signed_at"],
        )
        for s in record["slots"]
    )
    reactions = tuple(
        ReactionLine(
            _signer_name(r["actor"], signers),
            r["recorded_at"],
            mask_personal("values", r["values"]),
        )
        for r in record["reactions"]
    )
    return DonationReport(donation, header, tuple(steps), slots, reactions)


# -- audit trail ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditQuery:
    """One donation's full modification trail; ``changes_only``: only amended fields."""

    donation: str
    changes_only: bool = False


@dataclass(frozen=True)
class AuditRow:
    """One line of the trail. ``kind``: ``step`` (the signed step event), ``value`` (a value as
    first recorded, signed by the step row above it), ``amendment`` (``seq``-th change of
    ``field``), ``cosignature`` (``field`` is the slot), ``reaction``, ``sealed`` (``field`` is
    the final status, ``value`` the missing slots)."""

    kind: str
    step: str = ""
    event_type: str = ""
    field: str = ""
    seq: int = 0
    value: Any = None
    was: Any = None
    signer: str = ""
    recorded_at: str | None = None
    #: RFC 3161 genTime of the batch holding the event; None while pending (or unsigned row).
    trusted_at: str | None = None
    reason: str = ""
    overrides: Mapping[str, str] = dataclasses.field(default_factory=dict)
    signature_sha256: str = ""
    position: int | None = None

    @property
    def signed(self) -> bool:
        return self.position is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "step": self.step,
            "event_type": self.event_type,
            "field": self.field,
            "seq": self.seq,
            "value": self.value,
            "was": self.was,
            "signer": self.signer,
            "recorded_at": self.recorded_at,
            "trusted_at": self.trusted_at,
            "reason": self.reason,
            "overrides": dict(self.overrides),
            "signature_sha256": self.signature_sha256,
            "position": self.position,
        }


@dataclass(frozen=True)
class AuditReport:
    donation: ResolvedDonation
    rows: tuple[AuditRow, ...]
    changes_only: bool

    def to_json(self) -> dict[str, Any]:
        return _envelope(
            "audit",
            donation=_donation_json(self.donation),
            changes_only=self.changes_only,
            time_source=TIME_SOURCE,
            rows=[row.to_json() for row in self.rows],
        )


def _positions(trail: Mapping[str, Any]) -> Iterator[int]:
    for step in trail["steps"].values():
        yield step["recorded"]["position"]
        yield from (a["position"] for a in step["amendments"])
        yield from (c["position"] for c in step["cosignatures"])
    yield from (r["recorded"]["position"] for r in trail["reactions"])
    if trail["sealed"]:
        yield trail["sealed"]["position"]


def audit_report(
    settings: Settings, query: AuditQuery, progress: Progress | None = None
) -> AuditReport:
    with open_views(settings, progress=progress) as opened:
        donation = resolve_donation(opened.views, query.donation)
        trail = queries.audit_trail_by_id(opened.views, str(donation.donation_id))
        signers = queries.signers(opened.views)
        batches = opened.station.store.select_batches()
    if trail is None:  # pragma: no cover - the two views are fed by the same events
        raise ReportError(f"no audit trail for donation {query.donation}")
    stamped = trusted_times(list(_positions(trail)), batches)

    def signed(kind: str, entry: Mapping[str, Any], **cells: Any) -> AuditRow:
        position = int(entry["position"])
        return AuditRow(
            kind,
            signer=_signer_name(entry["actor"], signers),
            recorded_at=entry["recorded_at"],
            trusted_at=stamped.get(position),
            signature_sha256=entry["signature_sha256"],
            position=position,
            **cells,
        )

    amended = {(name, a["field"]) for name, s in trail["steps"].items() for a in s["amendments"]}
    rows: list[AuditRow] = []
    for name in ordered_steps(trail):
        step = trail["steps"][name]
        if query.changes_only and not any(s == name for s, _ in amended):
            continue
        rows.append(signed("step", step["recorded"], step=name, event_type=step["event_type"]))
        for field_name, value in step["original"].items():
            if query.changes_only and (name, field_name) not in amended:
                continue
            rows.append(
                AuditRow(
                    "value", step=name, field=field_name, value=mask_personal(field_name, value)
                )
            )
            changes = (a for a in step["amendments"] if a["field"] == field_name)
            for n, change in enumerate(changes, start=1):
                rows.append(
                    signed(
                        "amendment",
                        change,
                        step=name,
                        event_type="RecordAmended",
                        field=field_name,
                        seq=n,
                        value=mask_personal(field_name, change["new_value"]),
                        was=mask_personal(field_name, change["old_value"]),
                        reason=change["reason"],
                        overrides=dict(change.get("overrides", {})),
                    )
                )
        for cosignature in step["cosignatures"]:
            rows.append(
                signed(
                    "cosignature",
                    cosignature,
                    step=name,
                    event_type="SignatureApplied",
                    field=cosignature["slot"],
                )
            )
    for reaction in trail["reactions"]:
        rows.append(
            signed(
                "reaction",
                reaction["recorded"],
                event_type="AdverseReactionRecorded",
                value=mask_personal("values", reaction["values"]),
            )
        )
    sealed = trail["sealed"]
    if sealed:
        rows.append(
            signed(
                "sealed",
                sealed,
                event_type="DonationRecordSealed",
                field=sealed["final_status"],
                value=[s["slot"] for s in sealed["missing_slots"]],
            )
        )
    return AuditReport(donation, tuple(rows), query.changes_only)


# -- archive queue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveRow:
    """A catalogue line of the archive system (name: surname only; ID number masked)."""

    year: int | None
    name: str
    retention: str
    collected_on: str | None
    id_type: str
    id_number_masked: str
    donation_no: str
    department: str
    forms: int
    ready: bool
    missing_signatures: int


@dataclass(frozen=True)
class ArchiveQueue:
    rows: tuple[ArchiveRow, ...]

    def to_json(self) -> dict[str, Any]:
        return _envelope("archive", items=[vars(row) for row in self.rows])


def archive_queue(settings: Settings, progress: Progress | None = None) -> ArchiveQueue:
    """Sealed, completed donations not yet archived, oldest sealing first."""
    with open_views(settings, progress=progress) as opened:
        queue = queries.archive_queue(opened.views)
    rows = []
    for item in queue:
        c = item["catalogue"]
        rows.append(
            ArchiveRow(
                c["year"],
                mask_personal("name", c["name"]),
                c["retention"],
                c["collected_on"],
                c["id_type"],
                mask_personal("id_number", c["id_number_masked"]),
                c["donation_no"],
                c["department"],
                int(c["forms"]),
                bool(item["ready"]),
                int(item["missing_signatures"]),
            )
        )
    return ArchiveQueue(tuple(rows))


# -- amendments of a period -----------------------------------------------------------------------


@dataclass(frozen=True)
class AmendmentsQuery:
    """Every RecordAmended whose station day (UTC+8) lies in [start, end]."""

    start: date
    end: date


@dataclass(frozen=True)
class AmendmentRow:
    donation: str  # the donation number, or the visit reference of a deferred donation
    donation_id: str
    step: str
    field: str
    old_value: Any
    new_value: Any
    reason: str
    signer: str
    actor_role: str
    overrides: Mapping[str, str]
    recorded_at: str
    trusted_at: str | None
    position: int

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "overrides": dict(self.overrides)}


@dataclass(frozen=True)
class AmendmentsReport:
    start: date
    end: date
    rows: tuple[AmendmentRow, ...]

    def to_json(self) -> dict[str, Any]:
        return _envelope(
            "amendments",
            **{"from": self.start.isoformat(), "to": self.end.isoformat()},
            time_source=TIME_SOURCE,
            amendments=[row.to_json() for row in self.rows],
        )


AmendmentFound = tuple[str, str, str, Mapping[str, Any]]


def amendments_in(
    trails: Iterable[Mapping[str, Any]], start: date, end: date
) -> list[AmendmentFound]:
    """(donation label, donation UUID, step, amendment entry) of every amendment in the audit
    trails whose station day (UTC+8, as the quality report counts days) lies in [start, end],
    in log order."""
    first, last = start.isoformat(), end.isoformat()
    found: list[AmendmentFound] = []
    for trail in trails:
        label = trail["donation_no"] or visit_reference(trail["donation_id"])
        for step_name, step in trail["steps"].items():
            for amendment in step["amendments"]:
                day = station_day(datetime.fromisoformat(amendment["recorded_at"]))
                if first <= day <= last:
                    found.append((label, str(trail["donation_id"]), step_name, amendment))
    found.sort(key=lambda f: int(f[3]["position"]))
    return found


def amendments_report(
    settings: Settings, query: AmendmentsQuery, progress: Progress | None = None
) -> AmendmentsReport:
    """From the audit-trail view, in log order."""
    _check_period(query.start, query.end)
    with open_views(settings, progress=progress) as opened:
        trails = queries.audit_trails(opened.views)
        signers = queries.signers(opened.views)
        batches = opened.station.store.select_batches()
    found = amendments_in(trails, query.start, query.end)
    stamped = trusted_times([int(f[3]["position"]) for f in found], batches)
    rows = tuple(
        AmendmentRow(
            label,
            donation_id,
            step_name,
            a["field"],
            mask_personal(a["field"], a["old_value"]),
            mask_personal(a["field"], a["new_value"]),
            a["reason"],
            _signer_name(a["actor"], signers),
            a["actor_role"],
            dict(a.get("overrides", {})),
            a["recorded_at"],
            stamped.get(int(a["position"])),
            int(a["position"]),
        )
        for label, donation_id, step_name, a in found
    )
    return AmendmentsReport(query.start, query.end, rows)
