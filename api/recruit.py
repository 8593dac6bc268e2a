"""``ledger booking ...`` and ``ledger recruit ...``: time-slot booking and recruitment.

ledger booking calendar [--from YYYY-MM-DD] [--days N] [--json]
ledger booking schedule FILE.json        publish a new slot-schedule version
ledger booking reminders [--sent MSG-ID]  due reminders (or mark one sent)
ledger booking no-show APT-ID --staff C001
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from services import booking, booking_report, matching, recruitable, recruitment, station_time
from services.settings import Settings
from services.station import Station
from services.users import UserStore
from signing.errors import InputError

console = Console(highlight=False)


def register(subparsers: Any) -> None:
    """Add ``ledger booking ...`` to the CLI."""
    p = subparsers.add_parser("booking", help="time-slot booking: calendar, schedule, reminders")
    sub = p.add_subparsers(dest="booking_command", required=True)
    c = sub.add_parser("calendar", help="each slot's capacity, places booked and free")
    c.add_argument("--from", dest="first", type=_day, default=None, help="first day (today)")
    c.add_argument("--days", type=int, default=7, help="how many days (1 to 92)")
    c.add_argument("--json", action="store_true", help="print the slots as JSON")
    c.set_defaults(handler=cmd_calendar)
    s = sub.add_parser("schedule", help="publish a new slot-schedule version from a JSON file")
    s.add_argument("file", type=Path)
    s.add_argument("--by", default="A001", help="who publishes it")
    s.set_defaults(handler=cmd_schedule)
    r = sub.add_parser("reminders", help="reminders due now in the outbox")
    r.add_argument("--sent", metavar="MSG-ID", help="mark this message sent")
    r.set_defaults(handler=cmd_reminders)
    n = sub.add_parser("no-show", help="record that the donor did not come")
    n.add_argument("appointment_id")
    n.add_argument("--staff", required=True, help="the staff member recording it")
    n.set_defaults(handler=cmd_no_show)
    b = sub.add_parser("report", help="appointment share, collections per open day, load by hour")
    b.add_argument("--from", dest="start", type=_day, default=None, help="first day (month start)")
    b.add_argument("--to", dest="end", type=_day, default=None, help="last day (today)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_booking_report)
    register_recruit(subparsers)


def register_recruit(subparsers: Any) -> None:
    p = subparsers.add_parser("recruit", help="recruitment: signed contacts and statistics")
    sub = p.add_subparsers(dest="recruit_command", required=True)
    c = sub.add_parser("contact", help="record a signed contact with a donor")
    c.add_argument("id_number")
    c.add_argument("--staff", required=True, help="the recruiter (a staff id with that role)")
    c.add_argument("--channel", required=True, choices=recruitment.CONTACT_CHANNELS)
    c.add_argument("--outcome", required=True, choices=recruitment.OUTCOMES)
    c.add_argument("--reason", default="", help="required unless agreed")
    c.add_argument("--request", default="", help="the matched-recruitment request it is for")
    c.set_defaults(handler=cmd_contact)
    s = sub.add_parser("stats", help="contacts per month and recruiter; the seed indicator")
    s.add_argument("--from", dest="start", type=_day, default=None, help="first day (month start)")
    s.add_argument("--to", dest="end", type=_day, default=None, help="last day (today)")
    s.add_argument("--window-days", type=int, default=90)
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=cmd_stats)
    q = sub.add_parser("list", help="recruitable donors (GB 18467 intervals), masked")
    q.add_argument("--type", dest="donor_type", default="", choices=("", *recruitable.DONOR_TYPES))
    q.add_argument("--station", default="")
    q.add_argument("--last-from", type=_day, default=None)
    q.add_argument("--last-to", type=_day, default=None)
    q.add_argument("--abo", default="")
    q.add_argument("--as-of", type=_day, default=None, help="eligible on this day (today)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_list)
    m = sub.add_parser("match-request", help="a hospital's matched-recruitment request (signed)")
    m.add_argument("--staff", required=True, help="the recruiter")
    m.add_argument("--hospital", required=True)
    m.add_argument("--patient", required=True, help="the patient's name (stored masked)")
    m.add_argument("--abo", required=True, choices=("A", "B", "O", "AB"))
    m.add_argument("--rhd", default="+", choices=("+", "-"))
    m.add_argument("--hla", default="")
    m.add_argument("--hpa", default="")
    m.set_defaults(handler=cmd_match_request)
    d = sub.add_parser("match", help="donors for a matched-recruitment request, ranked")
    d.add_argument("request_id")
    d.add_argument("--as-of", type=_day, default=None)
    d.add_argument("--json", action="store_true")
    d.set_defaults(handler=cmd_match)
    t = sub.add_parser("type", help="record a donor's HLA/HPA typing (signed, laboratory)")
    t.add_argument("id_number")
    t.add_argument("--staff", required=True, help="the screening technician who signs it")
    t.add_argument("--hla", default="", help='HLA-A/B, e.g. "A*02:01 A*11 B*46 B*58"')
    t.add_argument("--hpa", default="", help='HPA genotypes, e.g. "1a1a 2a2b HPA-15:ab"')
    t.add_argument("--laboratory", required=True)
    t.add_argument("--method", default="", help="e.g. PCR-SSO")
    t.add_argument("--id-type", default="resident_id")
    t.set_defaults(handler=cmd_type)
    r = sub.add_parser("requests", help="matched-recruitment requests and their contacts")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=cmd_requests)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_calendar(settings: Settings, args: argparse.Namespace) -> int:
    query = booking.CalendarQuery(args.first or station_time.today(), args.days)
    rows = booking.booking_calendar(UserStore(settings.db), query)
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return 0
    table = Table(title=f"booking calendar from {query.first}, {query.days} days")
    for name in ("day", "slot", "booked", "capacity", "free", "load", "schedule"):
        table.add_column(name)
    for r in rows:
        bar = "#" * r.booked + "." * r.free
        day = f"{r.day} holiday" if r.holiday else r.day
        table.add_row(day, r.start, str(r.booked), str(r.capacity), str(r.free), bar,
                      r.schedule_version)  # fmt: skip
    console.print(table)
    console.print(f"{sum(r.booked for r in rows)} of {sum(r.capacity for r in rows)} places booked")
    return 0


def cmd_schedule(settings: Settings, args: argparse.Namespace) -> int:
    try:
        body = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the schedule {args.file}: {exc}") from exc
    if not isinstance(body, dict):
        raise InputError("the schedule must be a JSON object")
    command = booking.PublishSlotSchedule(body, args.by)
    published = booking.publish_slot_schedule(UserStore(settings.db), command)
    console.print(f"schedule {published['version']} in force from {published['effective_from']}")
    return 0


def cmd_reminders(settings: Settings, args: argparse.Namespace) -> int:
    store = UserStore(settings.db)
    if args.sent:
        booking.mark_reminder_sent(store, args.sent)
        console.print(f"{args.sent} sent")
        return 0
    due = booking.due_reminders(store)
    print(json.dumps([dataclasses.asdict(m) for m in due], ensure_ascii=False, indent=2))
    return 0


def cmd_no_show(settings: Settings, args: argparse.Namespace) -> int:
    command = booking.RecordNoShow(args.appointment_id, args.staff)
    state = booking.record_no_show(UserStore(settings.db), command)
    console.print(f"{args.appointment_id}: {state}")
    return 0


def cmd_contact(settings: Settings, args: argparse.Namespace) -> int:
    command = recruitment.RecordContact(
        args.staff, args.id_number, args.channel, args.outcome, args.reason,
        request_id=args.request,
    )  # fmt: skip
    with Station.open(settings) as station:
        done = recruitment.record_contact(station, command)
    console.print(f"contact {done.contact_id} with {done.id_number_masked}: {done.outcome}")
    return 0


def cmd_stats(settings: Settings, args: argparse.Namespace) -> int:
    today = station_time.today()
    query = recruitment.RecruitmentStatsQuery(
        args.start or today.replace(day=1), args.end or today, args.window_days
    )
    with Station.open(settings) as station:
        stats = recruitment.recruitment_statistics(station, query)
    if args.json:
        print(json.dumps(dataclasses.asdict(stats), indent=2))
        return 0
    table = Table(title=f"recruitment {stats.start} to {stats.end}")
    for name in ("month", "recruiter", "contacts", *recruitment.OUTCOMES):
        table.add_column(name)
    for r in stats.rows:
        table.add_row(r.month, r.recruiter, str(r.contacts), str(r.agreed), str(r.declined),
                      str(r.unreachable), str(r.lapsed))  # fmt: skip
    console.print(table)
    share = "n/a" if stats.recruited_share is None else f"{stats.recruited_share:.1%}"
    console.print(
        f"collections after a contact (within {stats.window_days} days): "
        f"{stats.collections_after_contact} of {stats.collections} ({share})"
    )
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    query = recruitable.RecruitableQuery(
        args.as_of, args.donor_type, args.station, args.last_from, args.last_to, args.abo
    )
    with Station.open(settings) as station:
        rows = recruitable.recruitable_donors(station, query)
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    table = Table(title=f"recruitable donors: {len(rows)}")
    for name in ("ID", "name", "sex", "age", "ABO", "days", "last product", "ml", "type",
                 "contacts", "last outcome"):  # fmt: skip
        table.add_column(name)
    for r in rows:
        table.add_row(r.id_number_masked, r.name, r.sex, str(r.age), r.abo,
                      str(r.days_since_last), r.last_product, str(r.last_amount_ml),
                      r.donor_type, str(r.contacts), r.last_contact_outcome)  # fmt: skip
    console.print(table)
    return 0


def cmd_booking_report(settings: Settings, args: argparse.Namespace) -> int:
    today = station_time.today()
    query = booking_report.BookingReportQuery(args.start or today.replace(day=1), args.end or today)
    with Station.open(settings) as station:
        done = booking_report.booking_report(station, UserStore(settings.db), query)
    if args.json:
        print(json.dumps(dataclasses.asdict(done), indent=2))
        return 0
    share = "n/a" if done.appointment_share is None else f"{done.appointment_share:.1%}"
    console.print(f"booking report {done.start} to {done.end}")
    console.print(
        f"registrations with an appointment: {done.booked_registrations} of "
        f"{done.registrations} ({share})"
    )
    console.print(
        f"collections per open workday: {done.per_open_workday} ({done.open_workdays} days); "
        f"per open weekend day or holiday: {done.per_open_holiday} ({done.open_holidays} days)"
    )
    hours = sorted(set(done.booked_by_hour) | set(done.collections_by_hour))
    for hour in hours:
        placed, collected = done.booked_by_hour.get(hour, 0), done.collections_by_hour.get(hour, 0)
        console.print(f"{hour}:00  booked {placed:4d} {'#' * min(placed, 60):60s} "
                      f"collected {collected:4d} {'#' * min(collected, 60)}")  # fmt: skip
    return 0


def cmd_match_request(settings: Settings, args: argparse.Namespace) -> int:
    command = matching.RequestMatch(
        args.staff, args.hospital, args.patient, args.abo, args.rhd, args.hla, args.hpa
    )
    with Station.open(settings) as station:
        done = matching.request_match(station, command)
    console.print(
        f"request {done.request_id}: {done.hospital}, {done.patient_name_masked}, {done.abo}"
    )
    return 0


def cmd_match(settings: Settings, args: argparse.Namespace) -> int:
    with Station.open(settings) as station:
        rows = matching.matched_donors(station, matching.MatchQuery(args.request_id, args.as_of))
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    table = Table(title=f"donors for request {args.request_id}: {len(rows)}")
    for name in ("compatibility", "HLA/HPA", "ID", "name", "ABO", "days", "contacts"):
        table.add_column(name)
    for r in rows:
        d = r.donor
        table.add_row(r.compatibility, r.hla_hpa, d.id_number_masked, d.name, d.abo,
                      str(d.days_since_last), str(d.contacts))  # fmt: skip
    console.print(table)
    return 0


def cmd_type(settings: Settings, args: argparse.Namespace) -> int:
    command = matching.RecordTyping(
        args.staff, args.id_number, args.hla, args.hpa, args.laboratory, args.method, args.id_type
    )
    with Station.open(settings) as station:
        done = matching.record_typing(station, command)
    hpa = " ".join(f"{k}:{v}" for k, v in done.hpa.items())
    console.print(
        f"typing {done.typing_id}: {done.id_number_masked} HLA {' '.join(done.hla) or '-'} "
        f"HPA {hpa or '-'}"
    )
    return 0


def cmd_requests(settings: Settings, args: argparse.Namespace) -> int:
    with Station.open(settings) as station:
        rows = matching.match_requests(station)
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    table = Table(title=f"matched-recruitment requests: {len(rows)}")
    for name in ("request", "requested", "recruiter", "hospital", "patient", "ABO", "contacts"):
        table.add_column(name)
    for r in rows:
        contacts = ", ".join(f"{k} {v}" for k, v in sorted(r.contacts.items()))
        table.add_row(r.request_id, r.requested_at, r.recruiter, r.hospital,
                      r.patient_name_masked, r.abo + r.rhd, contacts)  # fmt: skip
    console.print(table)
    return 0
