"""The ``ledger`` command line.

Exit codes: 0 success, 1 verification FAILED, 2 bad input or unusable state (one line),
3 verification INDETERMINATE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydantic
from rich.console import Console
from rich.table import Table

from api import archive as archive_cli
from api import doctor, forms, recruit, verify_pdf, webserve
from api.backup import register as register_backup
from api.cli_reports import register as register_read_models
from api.keys import register as register_keys
from api.progress import progress_bar
from ledger.report import Severity, Verdict
from services import amend, checkpoints, demo, evidence, staff, station_settings, tsa, verification
from services.bugs import EXIT_BUG, report_bug
from services.files import disk_full
from services.settings import Settings
from services.station import Station
from services.verification import VerificationReport
from signing.errors import InputError, LedgerError

console = Console(highlight=False)


class UsageError(InputError):
    """Bad input: exit 2 with a one-line reason."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Expected failures (`LedgerError`) print one line and exit 2; anything
    else is a bug: one line saying so and where its traceback went, exit 70 (EX_SOFTWARE)."""
    parser = _parser()
    args = parser.parse_args(argv)
    settings: Settings | None = None
    try:
        settings = _settings()
        result: int = args.handler(settings, args)
        return result
    except LedgerError as exc:
        if disk_full(exc) is not None:
            return _report_disk_full(exc)
        print(f"ledger: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ledger: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`ledger report ... --json | head`): not a bug. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again, and exit as a shell
        # does for SIGPIPE (128 + 13). The recipe of the Python docs (library/signal.html).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        if disk_full(exc) is not None:
            return _report_disk_full(exc)
        where = report_bug(exc, settings.home if settings is not None else None)
        print(
            f"ledger: internal error (a bug, please report it): {type(exc).__name__}: "
            f"{_one_line(exc)}; {where}",
            file=sys.stderr,
        )
        return EXIT_BUG


def _settings() -> Settings:
    """The environment's settings; a bad ``LEDGER_*`` value is bad input, not a bug."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"LEDGER_{'_'.join(str(p) for p in e['loc']).upper() or 'SETTINGS'}: {e['msg']}"
            for e in exc.errors()
        )
        raise InputError(problems) from None


#: sysexits.h EX_IOERR: an input/output error (here: the disk is full).
EXIT_IO = 74


def _report_disk_full(exc: BaseException) -> int:
    """A full disk is the machine's trouble, not bad input and not a bug: one line, EX_IOERR."""
    full = disk_full(exc)
    where = f" writing {full.filename}" if full is not None and full.filename else ""
    print(
        f"ledger: error: no space left on the device{where}: the command stopped and kept "
        "nothing half-written; free space and run it again",
        file=sys.stderr,
    )
    return EXIT_IO


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledger",
        description="Signed, hash-chained evidence ledger for apheresis donation.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create the station CA, staff certificates and settings")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("demo", help="simulate a day of donations, then verify the ledger")
    p.add_argument("--donations", type=_demo_donations, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--no-forms", action="store_true", help="skip the three signed PDF/A-3 forms per donation"
    )
    p.add_argument("--no-archive", action="store_true", help="skip archiving the day")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("verify", help="recompute every hash, chain link, signature and token")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--since",
        type=Path,
        metavar="CHECKPOINT_FILE",
        help="a checkpoint kept earlier: check consistency with it, verify only what came after",
    )
    p.add_argument(
        "--new-only",
        action="store_true",
        help="with --since: take the events the checkpoint covers from the chain's stored "
        "hashes without reading their bodies (cost of the new events only; an older event "
        "edited in place is seen by a full verify)",
    )
    p.add_argument(
        "--witness",
        metavar="PATH_OR_URL",
        help="check the ledger against every checkpoint this witness holds "
        "(default: LEDGER_WITNESS)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="verify ranges of the log in N processes (default: all cores for a large ledger)",
    )
    p.set_defaults(handler=cmd_verify)

    p = sub.add_parser("checkpoint", help="sign and timestamp the ledger's size and Merkle root")
    p.add_argument("--out", type=Path, help="write the checkpoint JSON here (default: print it)")
    p.add_argument(
        "--witness",
        metavar="PATH_OR_URL",
        help="publish the checkpoint to this witness (default: LEDGER_WITNESS)",
    )
    p.set_defaults(handler=cmd_checkpoint)

    p = sub.add_parser("stamp", help="timestamp every pending event now (after a TSA outage)")
    p.set_defaults(handler=cmd_stamp)

    p = sub.add_parser("tsa", help="the station's RFC 3161 time-stamping authority")
    tsa = p.add_subparsers(required=True, metavar="ACTION")
    serve = tsa.add_parser("serve", help="answer RFC 3161 requests over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3161)
    serve.set_defaults(handler=cmd_tsa_serve)

    p = sub.add_parser("amend", help="correct a recorded value with a signed amendment")
    p.add_argument("donation_no", help="13-digit donation number")
    p.add_argument("--step", required=True, help="e.g. general_exam, pre_donation_test")
    p.add_argument("--field", required=True, help="e.g. temperature_c")
    p.add_argument("--value", required=True, help='new value (JSON: 36.8, true, "text")')
    p.add_argument("--reason", required=True)
    p.add_argument("--staff", required=True, help="staff id of the amending person")
    p.add_argument(
        "--override-reason",
        default="",
        help="record the new value although it fails a hard rule, with this reason "
        "(overrides each failed rule; only a role the amendment policy allows, a physician)",
    )
    p.add_argument(
        "--acknowledge",
        action="append",
        default=[],
        metavar="RULE_ID",
        help="acknowledge a plausibility alert the new value raises (repeatable)",
    )
    p.set_defaults(handler=cmd_amend)

    p = sub.add_parser("revoke", help="revoke a staff certificate (CRL and a signed event)")
    p.add_argument("staff_id")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", default="A001", help="staff id of the administrator")
    p.set_defaults(handler=cmd_revoke)

    p = sub.add_parser("station", help="station settings (versioned, signed changes)")
    station_sub = p.add_subparsers(required=True, metavar="ACTION")
    show = station_sub.add_parser("show", help="print the current station parameters")
    show.set_defaults(handler=cmd_station_show)
    change = station_sub.add_parser("set", help="change one parameter, with a reason")
    change.add_argument("key")
    change.add_argument("value", help='JSON value (true, 3, "text") or plain text')
    change.add_argument("--reason", required=True)
    change.add_argument("--by", default="A001", help="staff id of the administrator")
    change.set_defaults(handler=cmd_station_set)

    forms.register(sub)
    verify_pdf.register(sub)
    doctor.register(sub)
    webserve.register(sub)
    register_read_models(sub)
    archive_cli.register(sub)
    register_keys(sub)
    register_backup(sub)
    recruit.register(sub)

    p = sub.add_parser("export-event", help="write one event's evidence for openssl")
    p.add_argument("position", type=_positive, help="global position (notification id)")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=cmd_export_event)
    return parser


def _demo_donations(text: str) -> int:
    value = _positive(text)
    if value > demo.MAX_DONATIONS:
        raise argparse.ArgumentTypeError(
            f"at most {demo.MAX_DONATIONS} donations a day, not {value}"
        )
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# -- commands -----------------------------------------------------------------------------------


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    with Station.initialise(settings):
        console.print(
            f"Station {settings.station_id} initialised: CA and staff certificates under "
            f"{settings.pki_dir}, ledger at {settings.db}"
        )
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    command = demo.RunDemo(args.donations, args.seed, forms=not args.no_forms)
    with progress_bar(console) as progress:
        run = demo.run_demo(settings, command, progress)
    if run.initialised:
        console.print(f"No station under {settings.home}: initialised one.")
    summary = run.summary
    table = Table(title=f"Simulated day (seed {run.seed}) in {run.seconds:.1f} s")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("donations registered", summary.donations),
        ("completed and sealed", summary.completed),
        ("deferred by hard rules", summary.deferred),
        ("hard-rule overrides by a physician", summary.overrides),
        ("plausibility alerts acknowledged", summary.alerts_acknowledged),
        ("adverse reactions", summary.reactions),
        ("amendments", summary.amendments),
        ("missing co-signature slots at sealing", summary.missing_slots),
        ("repeat donors", summary.repeat_donors),
        ("booked into a time slot before the day", summary.booked),
        ("regional donor history checked (local stand-in)", summary.history_checked),
        ("called by the recruiter after the visit", sum(summary.contacted.values())),
        ("HLA/HPA typing recorded by the laboratory", summary.typed),
    ):
        table.add_row(label, str(value))
    console.print(table)
    if summary.deferral_reasons:
        reasons = ", ".join(f"{k} x{v}" for k, v in summary.deferral_reasons.most_common())
        console.print(f"Deferral reasons: {reasons}")
    if summary.contacted:
        outcomes = ", ".join(f"{k} x{v}" for k, v in sorted(summary.contacted.items()))
        console.print(f"Recruitment contacts: {outcomes}")
    if run.forms_written:
        console.print(f"Forms: {run.forms_written} signed PDF/A-3b files under {run.forms_dir}")
    console.print(
        f"Timestamps: {run.tsa_requests} TSA requests; checkpoint of "
        f"{run.checkpoint_size} events written to {run.checkpoint_file}"
    )
    verified = _print_report(run.report, run.verify_seconds, as_json=False)
    archived = archive_cli.demo_archive(settings, forms=not args.no_forms, skip=args.no_archive)
    return verified or archived


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        report = verification.verify_ledger(
            settings,
            since=args.since,
            witness=args.witness,
            workers=args.workers,
            new_only=args.new_only,
        )
    except LedgerError as exc:  # bad input: a missing store, an unreadable checkpoint or witness
        raise UsageError(str(exc)) from exc
    return _print_report(report, time.perf_counter() - started, as_json=args.json)


def cmd_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.out is not None:  # refused before the store is opened: nothing written
            checkpoints.check_writable(args.out, "checkpoint file")
        with Station.open(settings) as station:
            checkpoint = checkpoints.issue(station, args.out, args.witness)
    except LedgerError as exc:
        raise UsageError(str(exc)) from exc
    if args.out is None:
        print(json.dumps(checkpoint.to_json(), indent=2))
    else:
        console.print(
            f"Checkpoint: {checkpoint.size} events, root {checkpoint.root[:16]}..., "
            f"written to {args.out}"
        )
    return 0


def cmd_stamp(settings: Settings, args: argparse.Namespace) -> int:
    with Station.open(settings) as station:
        pending, batches = checkpoints.stamp_pending(station)
        console.print(f"Stamped {pending} pending events in {batches} batches")
        return 0


def cmd_tsa_serve(settings: Settings, args: argparse.Namespace) -> int:
    def ready(url: str) -> None:
        console.print(f"RFC 3161 TSA listening on {url} (Ctrl-C to stop)")

    tsa.serve_tsa(settings, tsa.ServeTsa(args.host, args.port), ready)
    return 0


def _print_report(report: VerificationReport, elapsed: float, *, as_json: bool) -> int:
    """Print the report (text or JSON); the exit code is its verdict's: 0, 1 or 3."""
    if as_json:
        print(json.dumps(_report_json(report, elapsed), ensure_ascii=False, indent=2))
        return report.exit_code
    if report.verdict is Verdict.PASSED:
        console.print(
            f"ledger verify: OK: {report.events} events, {report.aggregates} records, "
            f"{report.signatures} signatures by {report.signers} signers, chain head "
            f"{report.head_hash[:16]}... at position {report.last_position} "
            f"({elapsed:.2f} s, {report.events / max(elapsed, 1e-9):,.0f} events/s)"
        )
    else:
        problems = report.issues()
        style = "bold red" if report.verdict is Verdict.FAILED else "bold yellow"
        console.print(f"ledger verify: {report.verdict} at {problems[0].describe()}", style=style)
        for finding in problems[1:10]:
            console.print(f"  also: {finding.describe()}")
        console.print(f"{len(problems)} findings; {report.events} events")
    console.print(
        f"trusted time: {report.stamped} events in {report.batches} timestamped batches, "
        f"{report.pending} pending"
        + (f" (oldest {report.oldest_pending_s:.0f} s)" if report.pending else "")
        + f"; {report.checkpoints} checkpoints"
        + (
            f"; {report.signature_timestamps} per-event signature timestamps"
            if report.signature_timestamps
            else ""
        )
        + (
            f"; consistent with the checkpoint of {report.since_size} events"
            if report.since_size is not None and report.ok
            else ""
        )
        + (f"; {report.witnessed} witnessed checkpoints" if report.witnessed else "")
        + (
            f"; the {report.from_chain} events before it taken from the chain's stored hashes "
            "(--new-only: their bodies were not read)"
            if report.from_chain
            else ""
        )
    )
    for finding in report.findings:
        if finding.severity is Severity.WARNING:
            console.print(f"  note: {finding.describe()}")
    return report.exit_code


def _report_json(report: VerificationReport, elapsed: float) -> dict[str, Any]:
    return {**report.to_json(), "seconds": round(elapsed, 3)}


def _json_or_text(text: str) -> Any:
    """A command-line value: JSON (36.8, true, "text") or, failing that, the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cmd_amend(settings: Settings, args: argparse.Namespace) -> int:
    value = _json_or_text(args.value)
    command = amend.AmendRecord(
        donation=args.donation_no,
        step=args.step,
        field=args.field,
        new_value=value,
        reason=args.reason,
        staff_id=args.staff,
        override_reason=args.override_reason,
        acknowledged=tuple(args.acknowledge),
    )
    with Station.open(settings) as station:
        amended = amend.amend_record(station, command)
    console.print(
        f"Amended {args.step}.{args.field} of donation {args.donation_no} to {value!r}",
        markup=False,
    )
    for description in amended.rule_descriptions:
        console.print(f"  rule {description}", markup=False)
    if not amended.rule_descriptions:
        console.print("  no control point applies to the new value")
    return 0


def cmd_revoke(settings: Settings, args: argparse.Namespace) -> int:
    with Station.open(settings) as station:
        revoked = staff.revoke_staff(
            station, staff.RevokeStaff(args.staff_id, args.reason, args.by)
        )
        console.print(
            f"Revoked the certificate of {revoked.staff_id} (serial {revoked.serial_number:x})"
        )
        return 0


def cmd_station_show(settings: Settings, args: argparse.Namespace) -> int:
    with Station.open(settings) as station:
        parameters = station_settings.station_settings(station)
        print(json.dumps(parameters, ensure_ascii=False, indent=2))
        return 0


def cmd_station_set(settings: Settings, args: argparse.Namespace) -> int:
    command = station_settings.ChangeStationSetting(
        args.key, station_settings.parse_setting_value(args.value), args.reason, args.by
    )
    with Station.open(settings) as station:
        changed = station_settings.change_station_setting(station, command)
        console.print(f"Station setting {changed.key} = {changed.new_value!r}")
        return 0


def cmd_export_event(settings: Settings, args: argparse.Namespace) -> int:
    exported = evidence.export_event(settings, evidence.ExportEvent(args.position, args.out))
    console.print(
        f"Exported position {exported.position} ({exported.event_type}) to {exported.out_dir}: "
        + ", ".join(exported.files)
        + ("" if exported.stamped else " (timestamp pending)")
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
