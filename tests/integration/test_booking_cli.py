"""``ledger booking ...``: publish a slot schedule, see it in the calendar, refuse bad input."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from api.cli import main
from projections.eventtime import station_today
from services.station import Station
from tests.conftest import make_settings
from tests.unit.services.test_steps import registered, through_collection
from tests.workflow import make_id

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_a_published_schedule_shows_in_the_calendar(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    first = station_today() + timedelta(days=1)
    schedule = {
        "version": "cli-1",
        "effective_from": first.isoformat(),
        "weekdays": {d: {"08:00": 3} for d in WEEKDAYS},
        "holidays": {(first + timedelta(days=1)).isoformat(): {}},
    }
    path = cli_env / "schedule.json"
    path.write_text(json.dumps(schedule))
    assert main(["booking", "schedule", str(path)]) == 0
    capsys.readouterr()
    assert main(["booking", "calendar", "--from", first.isoformat(), "--days", "3", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    days = [(s["day"], s["start"], s["capacity"], s["schedule_version"]) for s in shown]
    assert days == [  # the holiday in between is closed
        (first.isoformat(), "08:00", 3, "cli-1"),
        ((first + timedelta(days=2)).isoformat(), "08:00", 3, "cli-1"),
    ]


def test_the_same_schedule_version_twice_exits_2(cli_env: Path) -> None:
    assert main(["init"]) == 0
    path = cli_env / "schedule.json"
    path.write_text(json.dumps({"version": "v", "effective_from": "2020-01-01",
                                "weekdays": {d: {} for d in WEEKDAYS}}))  # fmt: skip
    assert main(["booking", "schedule", str(path)]) == 0
    assert main(["booking", "schedule", str(path)]) == 2


def test_an_unknown_appointment_no_show_exits_2(cli_env: Path) -> None:
    assert main(["init"]) == 0
    assert main(["booking", "no-show", "APT-NONE", "--staff", "C001"]) == 2


def test_a_recruiter_contact_shows_in_the_statistics_and_the_ledger_verifies(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    settings = make_settings(cli_env / "home", f"sqlite:///{cli_env / 'ledger.sqlite'}")
    with Station.open(settings) as st:
        registered(st, sequence=11)
    id_number = make_id(date(1985, 3, 4), "F", sequence=11)
    argv = ["recruit", "contact", id_number, "--staff", "Z001", "--channel", "phone"]
    assert main([*argv, "--outcome", "declined", "--reason", "ill"]) == 0
    assert main([*argv, "--outcome", "declined"]) == 2  # no reason
    assert main(["recruit", "contact", id_number, "--staff", "C001", "--channel", "app",
                 "--outcome", "agreed"]) == 2  # fmt: skip
    capsys.readouterr()
    assert main(["recruit", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert [(r["recruiter"], r["contacts"], r["declined"]) for r in stats["rows"]] == [
        ("Z001", 1, 1)
    ]
    assert main(["verify"]) == 0


def test_the_recruitable_list_is_masked(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 0
    settings = make_settings(cli_env / "home", f"sqlite:///{cli_env / 'ledger.sqlite'}")
    with Station.open(settings) as st:
        through_collection(st, registered(st, sequence=12), "9000626100121")
    capsys.readouterr()
    later = (station_today() + timedelta(days=15)).isoformat()
    assert main(["recruit", "list", "--as-of", later, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["id_number_masked"] == make_id(date(1985, 3, 4), "F", sequence=12)[:6] + "*" * 12
    assert main(["recruit", "list", "--abo", "Q"]) == 2


def test_the_booking_report_counts_a_collection(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    settings = make_settings(cli_env / "home", f"sqlite:///{cli_env / 'ledger.sqlite'}")
    with Station.open(settings) as st:
        through_collection(st, registered(st, sequence=13), "9000626100131")
    capsys.readouterr()
    today = station_today().isoformat()
    assert main(["booking", "report", "--from", today, "--to", today, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["registrations"], report["booked_registrations"]) == (1, 0)
    assert sum(report["collections_by_hour"].values()) == 1
    assert main(["booking", "report", "--from", today]) == 0
    assert "registrations with an appointment: 0 of 1" in capsys.readouterr().out


def test_a_matched_request_lists_donors_and_takes_contacts(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    settings = make_settings(cli_env / "home", f"sqlite:///{cli_env / 'ledger.sqlite'}")
    with Station.open(settings) as st:
        through_collection(st, registered(st, sequence=14), "9000626100141")
    capsys.readouterr()
    assert main(["recruit", "match-request", "--staff", "Z001", "--hospital", "浙大一院",
                 "--patient", "李四", "--abo", "O", "--hpa", "1a1a"]) == 0  # fmt: skip
    request_id = capsys.readouterr().out.split()[1].rstrip(":")
    later = (station_today() + timedelta(days=15)).isoformat()
    assert main(["recruit", "match", request_id, "--as-of", later, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["hla_hpa"] == "not typed"
    number = make_id(date(1985, 3, 4), "F", sequence=14)
    assert main(["recruit", "contact", number, "--staff", "Z001", "--channel", "phone",
                 "--outcome", "agreed", "--request", request_id]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["recruit", "requests", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["request_id"] == request_id and listed["contacts"] == {"agreed": 1}
    assert listed["patient_name_masked"] == "李*"
    assert main(["recruit", "match", "no-such-request"]) == 2
    # the laboratory types the donor: the match then judges HPA (1a1b carries b, the patient
    # is 1a1a); a bad genotype exits 2 and writes nothing
    assert main(["recruit", "type", number, "--staff", "T001", "--hpa", "1c1b",
                 "--laboratory", "HLA 实验室"]) == 2  # fmt: skip
    assert main(["recruit", "type", number, "--staff", "T001", "--hpa", "1a1b",
                 "--laboratory", "HLA 实验室"]) == 0  # fmt: skip
    assert number not in capsys.readouterr().out
    assert main(["recruit", "match", request_id, "--as-of", later, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["hpa"], row["hla_hpa"]) == (
        "incompatible",
        "HLA not requested; HPA incompatible (HPA-1)",
    )
    assert main(["verify"]) == 0
