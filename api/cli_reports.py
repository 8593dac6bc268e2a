"""``ledger rebuild`` and ``ledger report``: the read models on the command line.

``register(subparsers)`` adds both commands to the ``ledger`` parser (api/cli.py). Every handler
catches the views up with the log first, so what it prints is current. Exit codes as in
api/cli.py: 0 done, 1 a rebuilt view differed from the incrementally maintained one, 2 bad input
(raised as ``ValueError``, which ``api.cli.main`` prints as one line).
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.stores import persistence_env
from projections import queries
from projections.audit_trail import field_trails, ordered_steps
from projections.eventtime import TIME_SOURCE, trusted_times
from projections.quality_report import QualityReport, metric_dimensions, metric_titles
from projections.quality_report import quality_report as compute_quality
from projections.runner import PROJECTIONS, Projector, Views
from services.settings import Settings
from services.station import Station
from signing.errors import InputError

console = Console(highlight=False)

Handler = Callable[[Settings, argparse.Namespace], int]


class ReportError(InputError, ValueError):
    """Bad input to a report (exit 2 with one line)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "rebuild", help="replay the log into the read models; prove rebuild == incremental"
    )
    p.add_argument(
        "--projection",
        action="append",
        choices=sorted(PROJECTIONS),
        metavar="NAME",
        help=f"only this read model (repeatable): {', '.join(PROJECTIONS)}",
    )
    p.add_argument(
        "--check", action="store_true", help="compare digests without replacing the views"
    )
    p.set_defaults(handler=cmd_rebuild)

    report = p = subparsers.add_parser("report", help="read models for people")
    reports = report.add_subparsers(required=True, metavar="REPORT")
    p = reports.add_parser("quality", help="quality rates with their counts, by month")
    p.add_argument("--from", dest="start", type=_day, required=True, metavar="DATE")
    p.add_argument("--to", dest="end", type=_day, required=True, metavar="DATE")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write every rate and count")
    p.add_argument("--chart", type=Path, metavar="FILE.png", help="monthly rates (PNG)")
    p.set_defaults(handler=cmd_report_quality)
    p = reports.add_parser("donation", help="one donation record as it stands")
    p.add_argument("donation_no", metavar="NUMBER")
    p.set_defaults(handler=cmd_report_donation)
    p = reports.add_parser("audit", help="one donation's full modification trail")
    p.add_argument("donation_no", metavar="NUMBER")
    p.add_argument("--changes", action="store_true", help="only fields that were amended")
    p.set_defaults(handler=cmd_report_audit)
    p = reports.add_parser("archive", help="sealed, completed donations not yet archived")
    p.set_defaults(handler=cmd_report_archive)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


# -- opening --------------------------------------------------------------------------------------


@dataclass
class _Opened:
    station: Station
    views: Views
    projector: Projector


@contextmanager
def _open(settings: Settings, *, catch_up: bool = True) -> Iterator[_Opened]:
    with (
        Station.open(settings) as station,
        closing(Views.open(persistence_env(settings.db))) as views,
    ):
        projector = Projector(station.app.recorder, station.app.mapper, views)
        if catch_up:
            behind = projector.head() - min(projector.position(n) for n in views.projections)
            with _progress("catching up", enabled=behind > 5000) as advance:
                projector.catch_up(progress=advance)
        yield _Opened(station, views, projector)


@contextmanager
def _progress(label: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    if not enabled:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


# -- rebuild --------------------------------------------------------------------------------------


def cmd_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    names: Sequence[str] | None = args.projection
    with _open(settings, catch_up=False) as opened:
        started = time.perf_counter()
        label = "checking" if args.check else "rebuilding"
        with _progress(f"{label} {', '.join(names or ['all read models'])}") as advance:
            results = opened.projector.rebuild(names, check=args.check, progress=advance)
        elapsed = time.perf_counter() - started
    table = Table(title=f"ledger rebuild{' --check' if args.check else ''} ({elapsed:.2f} s)")
    for column in ("read model", "position", "incremental digest", "rebuilt digest", "result"):
        table.add_column(column)
    for r in results:
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
    if results:
        rate = results[0].events / max(results[0].seconds, 1e-9)
        console.print(
            f"{results[0].events} events replayed in {results[0].seconds:.2f} s "
            f"({rate:,.0f} events/s)"
        )
    differing = [r.name for r in results if not r.matches]
    if differing:
        console.print(
            f"[bold red]The incrementally maintained {', '.join(differing)} differed from a "
            "replay of the log.[/]"
        )
        return 1
    return 0


# -- quality --------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def cmd_report_quality(settings: Settings, args: argparse.Namespace) -> int:
    if args.end < args.start:
        raise ReportError(f"--to {args.end} is before --from {args.start}")
    with _open(settings) as opened:
        report = compute_quality(opened.views["quality_metrics"].view, args.start, args.end)
    titles = metric_titles()
    summary = Table(title=f"Quality, {report.start} to {report.end} (station days, UTC+8)")
    for column in ("rate", "counted", "of", "value"):
        summary.add_column(column, justify="left" if column == "rate" else "right")
    for metric in metric_dimensions():
        rate = report.rate(metric)
        summary.add_row(
            titles[metric], str(rate.numerator), str(rate.denominator), _percent(rate.value)
        )
    console.print(summary)
    counts = Table(title="Counts")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for count in (
        "registrations",
        "exams",
        "tests",
        "collections",
        "deferrals",
        "amendments",
        "overrides",
        "alerts",
        "slots_not_required",
    ):
        counts.add_row(titles[count], str(report.count(count)))
    console.print(counts)
    _print_by_month(report, titles)
    _print_breakdowns(report, titles)
    if report.items:
        items = Table(title="Counted in the numerators (recount with `ledger report audit`)")
        for column in ("rate", "day", "donation", "what"):
            items.add_column(column)
        for item in report.items[:200]:
            items.add_row(
                titles[item.metric], item.day, item.donation_no or item.donation_id, item.what
            )
        console.print(items)
        if len(report.items) > 200:
            console.print(f"... and {len(report.items) - 200} more (see --csv)")
    if args.csv:
        _write_csv(report, titles, args.csv)
        console.print(f"Wrote {args.csv}")
    if args.chart:
        _write_chart(report, titles, args.chart)
        console.print(f"Wrote {args.chart}")
    return 0


def _print_by_month(report: QualityReport, titles: Mapping[str, str]) -> None:
    months = report.months()
    if len(months) < 1:
        return
    table = Table(title="By month")
    table.add_column("rate")
    for month in months:
        table.add_column(month, justify="right")
    for metric in metric_dimensions():
        cells = []
        for month in months:
            rate = report.rate(metric, "month", month)
            cells.append(f"{rate.numerator}/{rate.denominator} {_percent(rate.value)}")
        table.add_row(titles[metric], *cells)
    console.print(table)


def _print_breakdowns(report: QualityReport, titles: Mapping[str, str]) -> None:
    for metric, dimensions in metric_dimensions().items():
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


def _write_csv(report: QualityReport, titles: Mapping[str, str], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["section", "id", "title", "dimension", "key", "numerator", "denominator", "value"]
        )
        for rate in report.rates:
            value = "" if rate.value is None else f"{rate.value:.6f}"
            writer.writerow(
                [
                    "rate",
                    rate.metric,
                    titles[rate.metric],
                    rate.dimension,
                    rate.key,
                    rate.numerator,
                    rate.denominator,
                    value,
                ]
            )
        for count in report.counts:
            writer.writerow(
                [
                    "count",
                    count.count,
                    titles[count.count],
                    count.dimension,
                    count.key,
                    "",
                    "",
                    count.value,
                ]
            )
        for item in report.items:
            writer.writerow(
                [
                    "counted",
                    item.metric,
                    item.what,
                    "day",
                    item.day,
                    item.donation_no,
                    item.donation_id,
                    "",
                ]
            )


def _write_chart(report: QualityReport, titles: Mapping[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = report.months()
    figure, (rates_axis, counts_axis) = plt.subplots(
        2, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    x = list(range(len(months)))
    for metric in (
        "record_modification_rate",
        "field_modification_rate",
        "staff_missing_signature_rate",
        "donor_missing_signature_rate",
    ):
        values = [report.rate(metric, "month", m).value for m in months]
        rates_axis.plot(
            x,
            [100 * v if v is not None else float("nan") for v in values],
            marker="o",
            label=titles[metric],
        )
    rates_axis.set_ylabel("% of the counted units")
    rates_axis.set_title(f"Quality by month, {report.start} to {report.end}")
    rates_axis.legend(fontsize="small")
    rates_axis.grid(alpha=0.3)
    width = 0.4
    for offset, count in ((-width / 2, "registrations"), (width / 2, "collections")):
        counts_axis.bar(
            [i + offset for i in x],
            [report.count(count, "month", m) for m in months],
            width=width,
            label=titles[count],
        )
    counts_axis.set_ylabel("per month")
    counts_axis.set_xticks(x, months)
    counts_axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# -- one donation -------------------------------------------------------------------------------


def _name_of(actor: str, signers: Mapping[str, Mapping[str, Any]]) -> str:
    signer = signers.get(actor)
    if signer is not None:
        return f"{actor.partition(':')[2]} {signer['name']}"
    return "donor" if actor.startswith("DONOR:") else actor


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return "; ".join(_value(v) for v in value) or "[]"
    return "-" if value is None or value == "" else str(value)


def cmd_report_donation(settings: Settings, args: argparse.Namespace) -> int:
    with _open(settings) as opened:
        record = queries.donation_record(opened.views, args.donation_no)
        signers = queries.signers(opened.views)
    if record is None:
        raise ReportError(f"no donation with number {args.donation_no}")
    identity = record["identity"]
    header = Table.grid(padding=(0, 2))
    for label, value in (
        ("donation", f"{record['donation_no']} ({record['donation_id']})"),
        ("status", f"{record['status']} {record['final_status']}".strip()),
        ("station", record["station_id"]),
        ("product", f"{record['product']} via {record['channel']}"),
        ("donor", f"{identity['name']}, {identity['sex']}, born {identity['birth_date']}"),
        ("ID", f"{identity['id_type']} {identity['id_number_masked']}"),
        ("registered", record["registered_at"]),
        ("sealed", record["sealed_at"] or "-"),
        ("amendments", str(record["amendments"])),
    ):
        header.add_row(f"[bold]{label}[/]", str(value))
    console.print(header)
    steps = Table(title="Steps (current values; * amended, see `ledger report audit`)")
    for column in ("step", "recorded by", "at", "values", "rules"):
        steps.add_column(column, overflow="fold")
    for name in ordered_steps(record):
        step = record["steps"][name]
        amended = set(step["amended_fields"])
        values = ", ".join(
            f"{k}{'*' if k in amended else ''}={_value(v)}"
            for k, v in step["values"].items()
            if k not in ("required_slots", "donor_ref", "donor_id")
        )
        rules = step["rules"]
        fired = "; ".join(f"{o['rule_id']} {o['outcome']} ({o['value']})" for o in rules["fired"])
        steps.add_row(
            name,
            _name_of(step["actor"], signers),
            step["recorded_at"],
            values,
            f"{len(rules['passed'])} passed" + (f"; {fired}" if fired else ""),
        )
    console.print(steps)
    slots = Table(title="Co-signatures")
    for column in ("slot", "role", "state", "signed by", "at"):
        slots.add_column(column)
    for slot in record["slots"]:
        state = slot["state"]
        style = "bold red" if state == "missing" else ""
        slots.add_row(
            slot["slot"],
            slot["role"],
            f"[{style}]{state}[/]" if style else state,
            _name_of(slot["signed_by"], signers) if slot["signed_by"] else "-",
            slot["signed_at"] or "-",
        )
    console.print(slots)
    if record["reactions"]:
        reactions = Table(title="Adverse reactions")
        for column in ("recorded by", "at", "values"):
            reactions.add_column(column)
        for reaction in record["reactions"]:
            reactions.add_row(
                _name_of(reaction["actor"], signers),
                reaction["recorded_at"],
                _value(reaction["values"]),
            )
        console.print(reactions)
    return 0


def _when(moment: str | None) -> str:
    """``2026-11-22T01:02:25.400570+00:00`` -> ``2026-11-22 01:02:25.400570Z``."""
    if not moment:
        return "-"
    return moment.replace("T", " ").replace("+00:00", "Z")


def _positions(trail: Mapping[str, Any]) -> list[int]:
    found = []
    for step in trail["steps"].values():
        found.append(step["recorded"]["position"])
        found.extend(a["position"] for a in step["amendments"])
        found.extend(c["position"] for c in step["cosignatures"])
    found.extend(r["recorded"]["position"] for r in trail["reactions"])
    if trail["sealed"]:
        found.append(trail["sealed"]["position"])
    return found


def cmd_report_audit(settings: Settings, args: argparse.Namespace) -> int:
    with _open(settings) as opened:
        trail = queries.audit_trail(opened.views, args.donation_no)
        signers = queries.signers(opened.views)
        batches = opened.station.store.select_batches()
    if trail is None:
        raise ReportError(f"no donation with number {args.donation_no}")
    stamped = trusted_times(_positions(trail), batches)
    entries = list(field_trails(trail))
    amended = {(e.step, e.field) for e in entries if e.is_amendment}
    table = Table(
        title=f"Audit trail of donation {trail['donation_no']} ({trail['donation_id']})",
        caption=(
            f"time: recorded_at ({TIME_SOURCE}), UTC. trusted: RFC 3161 genTime of the batch "
            "holding the event (pending until stamped). sig: SHA-256 of the event's base64 CMS "
            "signature (`ledger export-event POS`, then `base64 -w0 sig.p7s | sha256sum`). "
            "Bold: amendments."
        ),
    )
    for column in ("step / field", "value", "was", "who", "time", "trusted", "why", "sig", "pos"):
        table.add_column(column, overflow="fold")

    def signed_row(label: str, entry: Mapping[str, Any], **cells: str) -> None:
        position = entry["position"]
        table.add_row(
            label,
            cells.get("value", ""),
            cells.get("was", ""),
            _name_of(entry["actor"], signers),
            _when(entry["recorded_at"]),
            _when(stamped.get(position)) if position in stamped else "pending",
            cells.get("why", ""),
            entry["signature_sha256"][:16],
            str(position),
            style=cells.get("style"),
        )

    for name in ordered_steps(trail):
        step = trail["steps"][name]
        if args.changes and not any(s == name for s, _ in amended):
            continue
        signed_row(f"[bold]{name}[/] ({step['event_type']})", step["recorded"])
        for field, value in step["original"].items():
            if args.changes and (name, field) not in amended:
                continue
            table.add_row(f"  {field}", _value(value))
            for n, change in enumerate(
                (a for a in step["amendments"] if a["field"] == field), start=1
            ):
                signed_row(
                    f"  {field} #{n}",
                    change,
                    value=_value(change["new_value"]),
                    was=_value(change["old_value"]),
                    why=change["reason"],
                    style="bold",
                )
        for cosignature in step["cosignatures"]:
            signed_row(f"  co-signature {cosignature['slot']}", cosignature)
    for reaction in trail["reactions"]:
        signed_row("adverse reaction", reaction["recorded"], value=_value(reaction["values"]))
    sealed = trail["sealed"]
    if sealed:
        missing = ", ".join(s["slot"] for s in sealed["missing_slots"]) or "none"
        signed_row(f"sealed: {sealed['final_status']}", sealed, value=f"missing: {missing}")
    console.print(table)
    return 0


def cmd_report_archive(settings: Settings, args: argparse.Namespace) -> int:
    with _open(settings) as opened:
        queue = queries.archive_queue(opened.views)
    table = Table(title=f"Archive queue: {len(queue)} sealed, completed donations not archived")
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
    for item in queue:
        c = item["catalogue"]
        table.add_row(
            str(c["year"]),
            c["name"],
            c["retention"],
            c["collected_on"] or "-",
            c["id_type"],
            c["id_number_masked"],
            c["donation_no"],
            c["department"],
            str(c["forms"]),
            "yes" if item["ready"] else f"no: {item['missing_signatures']} missing",
        )
    console.print(table)
    return 0
