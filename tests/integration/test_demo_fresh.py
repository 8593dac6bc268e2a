"""`ledger demo` on a fresh or an used checkout: a second day appends and verifies, a missing
font stops it in one line before anything exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli import main
from documents.forms import fonts
from ledger.registry import DonationNumberIndex
from services.demo import DemoDay, free_sequence_block
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
