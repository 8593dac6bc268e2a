"""``ledger archive``, ``ledger archive audit`` and ``ledger verify-package``: parse, call one
service function (`services.archive`), print. Wiring, in `api.cli._parser`:
``archive.register(sub)``."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from documents.package_verify import PackageReport
from ledger.report import Severity, Verdict
from services import archive
from services.archive import DEFAULT_NUMBERING
from services.settings import Settings
from services.station import Station
from signing.errors import InputError

console = Console(highlight=False)

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "archive",
        help="archive a period's sealed, complete donations into one signed transfer package "
        "(`ledger archive audit`: re-verify every package in the inbox)",
    )
    p.add_argument("action", nargs="?", choices=["audit"], help="audit: the fixity audit")
    p.add_argument("--from", dest="from_date", type=_date, metavar="DATE")
    p.add_argument("--to", dest="to_date", type=_date, metavar="DATE")
    p.add_argument("--department", default=None)
    p.add_argument(
        "--out", type=Path, default=None, help="target folder (default: HOME/archive-inbox)"
    )
    p.add_argument("--archivist", default=archive.ARCHIVIST.staff_id, help="staff id (archivist)")
    p.add_argument(
        "--numbering",
        default=DEFAULT_NUMBERING,
        help=f"档号 rule: a format over station, year, seq, department ({DEFAULT_NUMBERING})",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes rendering and signing forms (default: every core)",
    )
    p.add_argument(
        "--forms-dir",
        type=Path,
        default=None,
        help="reuse the forms written here when they verify and hold the current record",
    )
    p.add_argument("--zip", action="store_true", help="also write PACKAGE.zip for transfer media")
    p.set_defaults(handler=cmd_archive)

    v = subparsers.add_parser(
        "verify-package", help="check a transfer package offline (bag, signatures, forms, proofs)"
    )
    v.add_argument("path", type=Path, metavar="PATH")
    v.add_argument("--trust", type=Path, metavar="CA.pem", help="trusted root(s), PEM")
    v.add_argument(
        "--checkpoint", type=Path, metavar="FILE", help="a checkpoint you hold: check consistency"
    )
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes checking the forms"
    )
    v.set_defaults(handler=cmd_verify_package)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def advance(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield advance


def cmd_archive(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "audit":
        with Station.open(settings) as station, _progress() as advance:
            audit = archive.AuditArchive(args.out, args.archivist, max(1, args.workers))
            audited = archive.audit_archive(station, audit, advance)
        for name, verdict, problem in audited.packages:
            line = f"{verdict:13} {name}" + (f"  {problem}" if problem else "")
            console.print(line, markup=False)
        console.print(
            f"Fixity audit {audited.audit_id}: {len(audited.packages)} packages in "
            f"{audited.inbox}, {audited.outcome}; recorded as a signed FixityAudited event"
        )
        return 0 if audited.outcome == "PASSED" else 1
    if args.from_date is None or args.to_date is None:
        raise InputError("ledger archive needs --from DATE and --to DATE")
    command = archive.ArchivePeriod(
        args.from_date,
        args.to_date,
        args.department,
        args.out,
        args.archivist,
        args.numbering,
        max(1, args.workers),
        args.forms_dir,
        args.zip,
    )
    with Station.open(settings) as station, _progress() as advance:
        result = archive.archive_period(station, command, advance)
    print_archive(result)
    return 0


def print_archive(result: archive.ArchiveResult) -> None:
    if result.refused:
        table = Table(title=f"Refused: {len(result.refused)} incomplete donations (not archived)")
        table.add_column("donation")
        table.add_column("reasons")
        for refused in result.refused:
            table.add_row(refused.donation_no, "; ".join(refused.reasons))
        console.print(table)
    if result.package is None:
        console.print(
            f"Nothing archived: {result.already_archived} donations of the period are archived "
            "already and unchanged" + (f", {len(result.refused)} refused" if result.refused else "")
        )
        return
    console.print(
        f"Archived {len(result.archived)} donations"
        + (f" and {len(result.supplements)} supplementary (修改型)" if result.supplements else "")
        + f" into {result.package} in {result.seconds:.1f} s"
        + (f" ({result.forms_reused} donations' forms reused)" if result.forms_reused else "")
        + (f"; {result.already_archived} archived before" if result.already_archived else "")
        + (f"; zip {result.zip_path}" if result.zip_path else ""),
        markup=False,
    )


def cmd_verify_package(settings: Settings, args: argparse.Namespace) -> int:
    report = archive.verify_package_file(
        settings,
        archive.VerifyPackage(args.path, args.trust, args.checkpoint, max(1, args.workers)),
    )
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return report.exit_code
    print_package_report(report)
    return report.exit_code


def print_package_report(report: PackageReport) -> None:
    if report.verdict is Verdict.PASSED:
        console.print(
            f"verify-package: OK: {report.package_id}: {report.donations} donations, "
            f"{report.forms} forms, {report.events} events, {report.files} files; checkpoint of "
            f"{report.checkpoint_size} events",
            markup=False,
        )
    else:
        problems = report.issues()
        style = "bold red" if report.verdict is Verdict.FAILED else "bold yellow"
        console.print(
            f"verify-package: {report.verdict} at {problems[0].describe()}",
            style=style,
            markup=False,
        )
        for finding in problems[1:20]:
            console.print(f"  also: {finding.describe()}", markup=False)
        console.print(f"{len(problems)} findings; {report.donations} donations")
    for finding in report.findings:
        if finding.severity is Severity.WARNING:
            console.print(f"  note: {finding.describe()}", markup=False)


def demo_archive(settings: Settings, *, forms: bool, skip: bool) -> int:
    """The demo's last step: archive its day (reusing the forms it wrote, once they verify and
    hold the ledger's current events) and verify the package; 0 when it passes."""
    if skip or not forms:
        console.print(f"Archive: skipped ({'--no-archive' if skip else '--no-forms'})")
        return 0
    with _progress() as advance:
        result, report = archive.archive_demo_day(settings, settings.home / "forms", advance)
    print_archive(result)
    if report is None:
        return 0
    print_package_report(report)
    return report.exit_code
