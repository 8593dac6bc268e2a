"""bench/resign.py grows a ledger by copies of template visits signed again by their actors (a
fresh donor certificate per copy): the grown ledger must verify in full, or the verification
bench would time a ledger nobody could have written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.resign import grow_signed
from ledger.report import Verdict
from services.demo import DemoDay
from services.station import Station
from services.verification import ledger_verifier
from tests.conftest import make_settings


def test_signed_copies_verify_in_full(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with Station.initialise(settings) as station:
        DemoDay(station, seed=5).run(6)
        templates = station.store.count_chain()
        size = grow_signed(station, templates, templates + 300, in_flight=4)
        station.stamper().flush()
        station.checkpoint()
        report = ledger_verifier(station, now=datetime.now(UTC) + timedelta(minutes=5)).verify()
    assert size >= templates + 300
    assert report.verdict is Verdict.PASSED, report.issues()[:3]
    assert report.events == size
    assert report.signatures == size  # every copied event signed again, and verified
