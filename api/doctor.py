"""``ledger doctor``: one table of what this station needs, with a fix for each problem.

Exit 0 when every check is OK, 1 when something is wrong (or could not be checked).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from services.doctor import DoctorReport, Status, diagnose
from services.settings import Settings

_STYLE = {Status.OK: "green", Status.PROBLEM: "bold red", Status.SKIPPED: "yellow"}


def register(subparsers: Any) -> None:
    """Add ``ledger doctor [--json]`` to the CLI."""
    p = subparsers.add_parser(
        "doctor", help="check font, openssl, store, PKI, TSA and staff certificates"
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(handler=cmd_doctor)


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    report = diagnose(settings)
    if args.json:
        print(json.dumps(report_json(report), ensure_ascii=False, indent=2))
    else:
        render(report, Console(highlight=False))
    return 0 if report.ok else 1


def report_json(report: DoctorReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "findings": [
            {"check": f.check, "status": f.status.value, "found": f.found, "fix": f.fix}
            for f in report.findings
        ],
    }


def render(report: DoctorReport, console: Console) -> None:
    table = Table(title="ledger doctor")
    table.add_column("check")
    table.add_column("status")
    table.add_column("found", overflow="fold")
    table.add_column("fix", overflow="fold")
    for f in report.findings:
        table.add_row(f.check, f"[{_STYLE[f.status]}]{f.status.value}[/]", f.found, f.fix)
    console.print(table)
    problems = len(report.problems)
    console.print(
        "All checks passed." if report.ok else f"{problems} of {len(report.findings)} need a fix."
    )
