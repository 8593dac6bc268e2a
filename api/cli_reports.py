"""``ledger rebuild`` and ``ledger report``: the read models on the command line.

``register(subparsers)`` adds both commands to the ``ledger`` parser (api/cli.py). Each handler
parses its arguments, calls one use case of `services.reports` and renders the typed result as
rich tables or, with ``--json``, as the result's JSON (docs/reports.md). Exit codes as in
api/cli.py: 0 done, 1 a rebuilt view differed from the incrementally maintained one, 2 bad input
(`ReportError`, which ``api.cli.main`` prints as one line).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from api.progress import progress_bar
from services import reports
from services.reports import ReportError
from services.settings import Settings

__all__ = ["ReportError", "register"]

console = Console(highlight=False)
T = TypeVar("T")

REFERENCE_HELP = "donation number, visit reference (V + 12 hex) or UUID"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "rebuild", help="replay the log into the read models; prove rebuild == incremental"
    )
    p.add_argument(
        "--projection",
        action="append",
        choices=reports.PROJECTION_NAMES,
        metavar="NAME",
        help=f"only this read model (repeatable): {', '.join(reports.PROJECTION_NAMES)}",
    )
    p.add_argument(
        "--check", action="store_true", help="compare digests without replacing the views"
    )
    p.set_defaults(handler=cmd_rebuild)

    report = subparsers.add_parser("report", help="read models for people")
    kinds = report.add_subparsers(required=True, metavar="REPORT")
    p = kinds.add_parser("quality", help="quality rates with their counts, by month")
    _period(p)
    p.add_argument("--csv", type=Path, metavar="FILE", help="write every rate and count")
    p.add_argument("--chart", type=Path, metavar="FILE.png", help="monthly rates (PNG)")
    _json(p)
    p.set_defaults(handler=cmd_report_quality)
    p = kinds.add_parser("donation", help="one donation record as it stands")
    p.add_argument("donation_no", metavar="DONATION", help=REFERENCE_HELP)
    _json(p)
    p.set_defaults(handler=cmd_report_donation)
    p = kinds.add_parser("audit", help="one donation's full modification trail")
    p.add_argument("donation_no", metavar="DONATION", help=REFERENCE_HELP)
    p.add_argument("--changes", action="store_true", help="only fields that were amended")
    _json(p)
    p.set_defaults(handler=cmd_report_audit)
    p = kinds.add_parser("archive", help="sealed, completed donations not yet archived")
    _json(p)
    p.set_defaults(handler=cmd_report_archive)
    p = kinds.add_parser("amendments", help="every amendment recorded in a period")
    _period(p)
    _json(p)
    p.set_defaults(handler=cmd_report_amendments)


def _period(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", type=_day, required=True, metavar="DATE")
    p.add_argument("--to", dest="end", type=_day, required=True, metavar="DATE")


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _print_json(document: dict[str, Any]) -> int:
    print(json.dumps(document, ensure_ascii=False, indent=2))
    return 0


def _call(use_case: Callable[..., T], settings: Settings, *command: Any) -> T:
    """Run one use case of `services.reports` with a progress bar for a long catch-up."""
    with progress_bar(console) as progress:
        return use_case(settings, *command, progress)


# -- rebuild --------------------------------------------------------------------------------------


def cmd_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    command = reports.Rebuild(tuple(args.projection) if args.projection else None, args.check)
    rebuilt = _call(reports.rebuild, settings, command)
    checking = " --check" if args.check else ""
    table = Table(title=f"ledger rebuild{checking} ({rebuilt.seconds:.2f} s)")
    for column in ("read model", "position", "incremental digest", "rebuilt digest", "result"):
        table.add_column(column)
    for r in rebuilt.results:
        verdict = "same" if r.matches else "DIFFERENT"
        if not args.check:
            verdict += ", replaced"
        table.add_row(
            r.name,
            str(r.position),
            (r.live_digest or "")[:16],
            (r.rebuilt_digest or "")[:16],
            verdict if r.matches else f"[bold red]{verdict}[/]",
        )
    console.print(table)
    if rebuilt.results:
        console.print(
            f"{rebuilt.events} events replayed in {rebuilt.results[0].seconds:.2f} s "
            f"({rebuilt.events_per_second:,.0f} events/s)"
        )
    if rebuilt.differing:
        console.print(
            f"[bold red]The incrementally maintained {', '.join(rebuilt.differing)} differed "
            "from a replay of the log.[/]"
        )
        return 1
    return 0


# -- quality --------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def cmd_report_quality(settings: Settings, args: argparse.Namespace) -> int:
    query = reports.QualityQuery(args.start, args.end, args.csv, args.chart)
    result = _call(reports.quality, settings, query)
    if args.json:
        return _print_json(result.to_json())
    report, titles = result.report, result.titles
    summary = Table(title=f"Quality, {report.start} to {report.end} (station days, UTC+8)")
    for column in ("rate", "counted", "of", "value"):
        summary.add_column(column, justify="left" if column == "rate" else "right")
    for metric in result.dimensions:
        rate = report.rate(metric)
        summary.add_row(
            titles[metric], str(rate.numerator), str(rate.denominator), _percent(rate.value)
        )
    console.print(summary)
    counts = Table(title="Counts")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for count in reports.COUNT_ORDER:
        counts.add_row(titles[count], str(report.count(count)))
    console.print(counts)
    _print_by_month(result)
    _print_breakdowns(result)
    if report.items:
        items = Table(title="Counted in the numerators (recount with `ledger report audit`)")
        for column in ("rate", "day", "donation", "what"):
            items.add_column(column)
        for item in report.items[:200]:
            items.add_row(
                titles[item.metric],
                item.day,
                result.donation_label(item.donation_no, item.donation_id),
                item.what,
            )
        console.print(items)
        if len(report.items) > 200:
            console.print(f"... and {len(report.items) - 200} more (see --csv)")
    for path in result.written:
        console.print(f"Wrote {path}")
    return 0


def _print_by_month(result: reports.QualityResult) -> None:
    report, titles = result.report, result.titles
    months = report.months()
    if len(months) < 1:
        return
    table = Table(title="By month")
    table.add_column("rate")
    for month in months:
        table.add_column(month, justify="right")
    for metric in result.dimensions:
        cells = []
        for month in months:
            rate = report.rate(metric, "month", month)
            cells.append(f"{rate.numerator}/{rate.denominator} {_percent(rate.value)}")
        table.add_row(titles[metric], *cells)
    console.print(table)


def _print_breakdowns(result: reports.QualityResult) -> None:
    report, titles = result.report, result.titles
    for metric, dimensions in result.dimensions.items():
        rows = [r for r in report.rates if r.metric == metric and r.dimension in dimensions]
        if not any(r.numerator for r in rows):
            continue
        shown = [d for d in dimensions if d != "month"]
        table = Table(title=f"{titles[metric]}: by {', '.join(shown)}")
        for column in ("by", "key", "counted", "of", "value"):
            table.add_column(
                column, justify="right" if column in ("counted", "of", "value") else "left"
            )
        for rate in rows:
            if rate.dimension == "month":
                continue
            table.add_row(
                rate.dimension,
                rate.key,
                str(rate.numerator),
                str(rate.denominator),
                _percent(rate.value),
            )
        console.print(table)


# -- one donation -------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return "; ".join(_value(v) for v in value) or "[]"
    return "-" if value is None or value == "" else str(value)


def _named(donation: Any) -> str:
    return f"{donation.label} ({donation.donation_id})"


def cmd_report_donation(settings: Settings, args: argparse.Namespace) -> int:
    result = _call(reports.donation_report, settings, reports.DonationQuery(args.donation_no))
    if args.json:
        return _print_json(result.to_json())
    h = result.header
    donor = h["donor"]
    header = Table.grid(padding=(0, 2))
    for label, value in (
        ("donation", _named(result.donation)),
        ("status", f"{h['status']} {h['final_status']}".strip()),
        ("station", h["station_id"]),
        ("product", f"{h['product']} via {h['channel']}"),
        ("donor", f"{donor['name']}, {donor['sex']}, born {donor['birth_date']}"),
        ("ID", f"{donor['id_type']} {donor['id_number_masked']}"),
        ("registered", h["registered_at"]),
        ("sealed", h["sealed_at"] or "-"),
        ("amendments", str(h["amendments"])),
    ):
        header.add_row(f"[bold]{label}[/]", str(value))
    console.print(header)
    steps = Table(title="Steps (current values; * amended, see `ledger report audit`)")
    for column in ("step", "recorded by", "at", "values", "rules"):
        steps.add_column(column, overflow="fold")
    for step in result.steps:
        values = ", ".join(
            f"{k}{'*' if k in step.amended_fields else ''}={_value(v)}"
            for k, v in step.values.items()
        )
        fired = "; ".join(f"{r.rule_id} {r.outcome} ({r.value})" for r in step.rules_fired)
        steps.add_row(
            step.step,
            step.recorded_by,
            step.recorded_at,
            values,
            f"{step.rules_passed} passed" + (f"; {fired}" if fired else ""),
        )
    console.print(steps)
    slots = Table(title="Co-signatures")
    for column in ("slot", "role", "state", "signed by", "at"):
        slots.add_column(column)
    for slot in result.slots:
        slots.add_row(
            slot.slot,
            slot.role,
            f"[bold red]{slot.state}[/]" if slot.state == "missing" else slot.state,
            slot.signed_by or "-",
            slot.signed_at or "-",
        )
    console.print(slots)
    if result.reactions:
        reactions = Table(title="Adverse reactions")
        for column in ("recorded by", "at", "values"):
            reactions.add_column(column)
        for reaction in result.reactions:
            reactions.add_row(reaction.recorded_by, reaction.recorded_at, _value(reaction.values))
        console.print(reactions)
    return 0


def _when(moment: str | None) -> str:
    """``2026-11-22T01:02:25.400570+00:00`` -> ``2026-11-22 01:02:25.400570Z``."""
    if not moment:
        return "-"
    return moment.replace("T", " ").replace("+00:00", "Z")


def _audit_label(row: reports.AuditRow) -> str:
    if row.kind == "step":
        return f"[bold]{row.step}[/] ({row.event_type})"
    if row.kind == "value":
        return f"  {row.field}"
    if row.kind == "amendment":
        return f"  {row.field} #{row.seq}"
    if row.kind == "cosignature":
        return f"  co-signature {row.field}"
    if row.kind == "reaction":
        return "adverse reaction"
    return f"sealed: {row.field}"


def _audit_value(row: reports.AuditRow) -> str:
    if row.kind == "sealed":
        return f"missing: {', '.join(row.value) or 'none'}"
    if row.kind in ("step", "cosignature"):
        return ""
    return _value(row.value)


def cmd_report_audit(settings: Settings, args: argparse.Namespace) -> int:
    query = reports.AuditQuery(args.donation_no, args.changes)
    result = _call(reports.audit_report, settings, query)
    if args.json:
        return _print_json(result.to_json())
    table = Table(
        title=f"Audit trail of donation {_named(result.donation)}",
        caption=(
            f"time: recorded_at ({reports.TIME_SOURCE}), UTC. trusted: RFC 3161 genTime of the "
            "batch holding the event (pending until stamped). sig: SHA-256 of the event's base64 "
            "CMS signature (`ledger export-event POS`, then `base64 -w0 sig.p7s | sha256sum`). "
            "Bold: amendments."
        ),
    )
    for column in ("step / field", "value", "was", "who", "time", "trusted", "why", "sig", "pos"):
        table.add_column(column, overflow="fold")
    for row in result.rows:
        if not row.signed:
            table.add_row(_audit_label(row), _audit_value(row))
            continue
        table.add_row(
            _audit_label(row),
            _audit_value(row),
            _value(row.was) if row.kind == "amendment" else "",
            row.signer,
            _when(row.recorded_at),
            _when(row.trusted_at) if row.trusted_at else "pending",
            row.reason,
            row.signature_sha256[:16],
            str(row.position),
            style="bold" if row.kind == "amendment" else None,
        )
    console.print(table)
    return 0


def cmd_report_archive(settings: Settings, args: argparse.Namespace) -> int:
    queue = _call(reports.archive_queue, settings)
    if args.json:
        return _print_json(queue.to_json())
    table = Table(
        title=f"Archive queue: {len(queue.rows)} sealed, completed donations not archived"
    )
    for column in (
        "年度",
        "姓名",
        "保管期限",
        "采集时间",
        "证件类型",
        "证件编号",
        "献血编号",
        "归档部门",
        "电子全文数",
        "ready",
    ):
        table.add_column(column)
    for row in queue.rows:
        table.add_row(
            str(row.year),
            row.name,
            row.retention,
            row.collected_on or "-",
            row.id_type,
            row.id_number_masked,
            row.donation_no,
            row.department,
            str(row.forms),
            "yes" if row.ready else f"no: {row.missing_signatures} missing",
        )
    console.print(table)
    return 0


def cmd_report_amendments(settings: Settings, args: argparse.Namespace) -> int:
    query = reports.AmendmentsQuery(args.start, args.end)
    result = _call(reports.amendments_report, settings, query)
    if args.json:
        return _print_json(result.to_json())
    table = Table(
        title=f"Amendments, {result.start} to {result.end} (station days, UTC+8): "
        f"{len(result.rows)}",
        caption="time: recorded_at, UTC; trusted: RFC 3161 genTime of the event's batch",
    )
    for column in (
        "donation",
        "step",
        "field",
        "old -> new",
        "reason",
        "signer",
        "overrides",
        "time",
        "trusted",
        "pos",
    ):
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(
            row.donation,
            row.step,
            row.field,
            f"{_value(row.old_value)} -> {_value(row.new_value)}",
            row.reason,
            f"{row.signer} ({row.actor_role})",
            "; ".join(f"{rule}: {why}" for rule, why in row.overrides.items()) or "-",
            _when(row.recorded_at),
            _when(row.trusted_at) if row.trusted_at else "pending",
            str(row.position),
        )
    console.print(table)
    return 0
