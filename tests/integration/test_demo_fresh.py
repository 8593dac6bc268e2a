"""`ledger demo` on a fresh or an used checkout: a second day appends and verifies, a missing
font stops it in one line before anything exists."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from documents.forms import fonts
from ledger.events import WorkflowError
from ledger.registry import DonationNumberIndex
from projections.eventtime import station_today
from services.demo import MAX_DONATIONS, SEQUENCE_LIMIT, DemoDay, free_sequence_block
from services.station import Station
from tests.conftest import make_settings
from tests.workflow import complete


def _numbers(station: Station) -> list[str]:
    topic = "ledger.registry:DonationNumberIndex.DonationNumberReserved"
    notes = station.app.recorder.select_notifications(1, 10**6, topics=[topic])
    out = []
    for note in notes:
        event = station.app.mapper.to_domain_event(note)
        assert isinstance(event, DonationNumberIndex.DonationNumberReserved)
        out.append(str(event.donation_no))
    return out


def _station(tmp: Path) -> Station:
    return Station.open(make_settings(tmp / "home", f"sqlite:///{tmp / 'ledger.sqlite'}"))


def test_a_second_demo_appends_a_second_verified_day(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--donations", "4", "--seed", "1", "--no-forms"]) == 0
    with _station(cli_env) as station:
        first = station.app.recorder.max_notification_id() or 0
        numbers = _numbers(station)
    capsys.readouterr()
    # The README's second step, same seed, same day: it used to die after 18 events.
    assert main(["demo", "--donations", "5", "--seed", "1", "--no-forms"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "ledger verify: OK" in out and "2 checkpoints" in out
    with _station(cli_env) as station:
        assert (station.app.recorder.max_notification_id() or 0) > first
        both = _numbers(station)
    assert both[: len(numbers)] == numbers and len(both) > len(numbers)
    assert len(set(both)) == len(both)
    assert main(["verify"]) == 0


def test_the_number_block_skips_numbers_the_ledger_holds(sqlite_station: Station) -> None:
    complete(sqlite_station)
    (taken,) = _numbers(sqlite_station)
    year, sequence = 2000 + int(taken[5:7]), int(taken[7:])
    assert free_sequence_block(sqlite_station, sequence + 5, 3, year) == sequence + 5
    assert free_sequence_block(sqlite_station, sequence - 2, 3, year) == sequence
    assert free_sequence_block(sqlite_station, sequence - 1, 1, year) == sequence


def test_a_day_on_a_used_ledger_meets_new_donors(sqlite_station: Station) -> None:
    fresh = DemoDay(sqlite_station, 1)
    complete(sqlite_station)
    later = DemoDay(sqlite_station, 1)
    assert DemoDay(sqlite_station, 1).rng.random() == later.rng.random()  # still seeded
    assert later.rng.random() != fresh.rng.random()


def test_demo_without_the_font_stops_in_one_line_before_any_work(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(fonts.FONT_ENV, raising=False)
    monkeypatch.setattr(fonts, "FONT_PACKAGE", "no_such_font_package")
    monkeypatch.setattr(fonts, "DEFAULT_FONT", cli_env / "absent.ttc")
    assert main(["demo", "--donations", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ledger: error: ") and err.count("\n") == 1, err
    assert "pip install noto-cjk-sans-otc==0.0.1" in err and "fonts-noto-cjk" in err
    assert not (cli_env / "ledger.sqlite").exists() and not (cli_env / "home").exists()


def test_the_number_block_wraps_to_the_start_of_the_year(sqlite_station: Station) -> None:
    year = datetime.now(UTC).year
    assert free_sequence_block(sqlite_station, SEQUENCE_LIMIT - 2, 5, year) == 0
    with pytest.raises(WorkflowError, match="no run of"):
        free_sequence_block(sqlite_station, 0, SEQUENCE_LIMIT + 1, year)


def test_a_day_too_large_is_refused_before_anything_exists(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--donations", str(MAX_DONATIONS + 1)])
    assert caught.value.code == 2
    assert f"at most {MAX_DONATIONS} donations" in capsys.readouterr().err
    assert not (cli_env / "ledger.sqlite").exists() and not (cli_env / "home").exists()


def test_a_command_s_error_is_one_line_without_the_dsa_warning(tmp_path: Path) -> None:
    """pyHanko's import of cryptography's DSA classes warned in two lines before every command."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LEDGER_HOME": str(tmp_path / "home"),
        "LEDGER_DB": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "PYTHONWARNINGS": "default",  # show every warning that is not filtered on purpose
    }
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("ledger: error: ") and "DSA" not in result.stderr


def test_the_demo_books_its_donors_into_slots_and_the_recruiter_calls_some(
    sqlite_station: Station,
) -> None:
    from services import booking
    from services.recruitment import RecruitmentStatsQuery, recruitment_statistics

    day = DemoDay(sqlite_station, 3)
    summary = day.run(10)
    booked = [appointment for _, appointment, _ in day.queue if appointment is not None]
    assert summary.booked == len(booked) and 5 <= len(booked) <= 10  # ~80%, by the seed
    today = station_today()
    slots = booking.booking_calendar(day.store, booking.CalendarQuery(today, 1))
    assert sum(s.booked for s in slots) == len(booked)
    assert all(s.booked <= s.capacity for s in slots)
    # each booked donor's signed registration names the appointment, which is now registered
    topic = "ledger.donation:Donation.DonorRegistered"
    notes = sqlite_station.app.recorder.select_notifications(1, 10**6, topics=[topic])
    registered: list[Any] = [sqlite_station.app.mapper.to_domain_event(n) for n in notes]
    named = {event.appointment_id for event in registered}
    assert set(booked) <= named
    with day.store.transaction() as run:
        states = {r[0] for r in run("SELECT state FROM web_appointments")}
    assert states == {"registered"}
    contacts = sum(summary.contacted.values())
    assert contacts >= 1
    stats = recruitment_statistics(sqlite_station, RecruitmentStatsQuery(today, today))
    assert sum(r.contacts for r in stats.rows if r.recruiter == "Z001") == contacts
    # the laboratory's typings are signed events, as many as the summary counts
    topic = "ledger.matching:DonorTyping.DonorTyped"
    typed = sqlite_station.app.recorder.select_notifications(1, 10**6, topics=[topic])
    assert summary.typed == len(typed) >= 1
