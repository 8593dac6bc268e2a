"""Every tamper vector in fixtures/vectors/tamper, applied through SQL to a SQLite and to a
PostgreSQL ledger, must give its verdict with its code at the named event (or, where only a
checkpoint kept outside the database could tell, be INDETERMINATE or PASSED as the vector says)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from ledger.report import Verdict
from services.station import Station
from services.verification import verify_station
from tests.conftest import make_settings
from tests.tamper import Tamperer
from tests.workflow import amend_temperature, complete

VECTORS = sorted((Path(__file__).resolve().parents[2] / "fixtures/vectors/tamper").glob("*.json"))


def build_ledger(tmp_path: Path, db: str) -> Station:
    """Three donations, an amendment of the second (not the last event of the log), the third in
    per-event (CAdES-T) mode, every event stamped, one checkpoint stored: a ledger with all its
    evidence."""
    # The station CA dates from three days ago, so an old donor certificate can be forged.
    station = Station.initialise(
        make_settings(tmp_path / "home", db), now=datetime.now(UTC) - timedelta(days=3)
    )
    complete(station)
    donation_id = complete(station, cosign=False)
    amend_temperature(station, donation_id, 36.8)
    station.app.amend(  # a personal value: signed masked and committed (RecordAmended v3)
        donation_id,
        station.signer("C001"),
        step="registration",
        field="name",
        new_value="张叁",
        reason="misspelt at the desk",
    )
    station.app.change_station_setting(
        station.signer("A001"), "timestamp_mode", "per_event", "CAdES-T from here on"
    )
    stamper = station.stamper()
    stamper.flush()  # the stamper sees the mode: per-event tokens from here on
    complete(station)
    stamper.flush()
    station.checkpoint()
    report = verify_station(station, now=datetime.now(UTC) + timedelta(hours=2))
    assert report.verdict is Verdict.PASSED, report.issues()[:3]
    assert report.pending == 0 and report.checkpoints == 1 and report.signature_timestamps > 10
    return station


def test_there_is_a_vector_for_each_required_kind_of_tampering() -> None:
    names = {p.stem for p in VECTORS}
    for required in (
        "edited-payload",
        "deleted-event",
        "inserted-event",
        "reordered-events",
        "replaced-signature",
        "signature-by-another-certificate",
        "expired-donor-certificate",
        "changed-topic",
        "swapped-states",
        "garbage-state",
        "edited-batch-time",
        "wiped-batches",
        "wiped-checkpoints",
        "wiped-evidence",
        "deleted-last-event-relinked",
        "deleted-signature-timestamp",
        "wiped-event-tokens",
    ):
        assert required in names


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector_is_detected_at_the_named_event(path: Path, tmp_path: Path, backend_db: str) -> None:
    vector: dict[str, Any] = json.loads(path.read_text())
    expect = vector["expect"]
    station = build_ledger(tmp_path, backend_db)
    tamperer = Tamperer(station)
    try:
        named = tamperer.apply(vector)
    finally:
        tamperer.close()
    now = datetime.now(UTC) + timedelta(hours=float(expect.get("verify_after_hours", 0)))
    report = verify_station(station, now=now)
    station.close()
    assert report.verdict == Verdict(expect["verdict"]), (vector["name"], report.issues()[:3])
    if report.verdict is Verdict.PASSED:
        return
    first = report.issues()[0]
    assert first.position == named[expect["at"]], first.describe()
    assert first.code == expect["code"], first.describe()
    assert expect["reason"] in first.message, first.describe()
    if expect.get("only_at"):  # no false finding at the events after it
        assert {f.position for f in report.issues()} == {first.position}, [
            f.describe() for f in report.issues()
        ]


def test_cli_verify_exits_1_naming_position_donation_and_event(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station = build_ledger(cli_env, f"sqlite:///{cli_env / 'ledger.sqlite'}")
    tamperer = Tamperer(station)
    vector = json.loads((VECTORS[0].parent / "edited-payload.json").read_text())
    named = tamperer.apply(vector)
    number = station.app.donation(tamperer.event_at(named["target"]).originator_id).donation_no
    tamperer.close()
    station.close()
    assert main(["verify"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"position {named['target']}" in out
    assert f"donation {number}" in out
    assert "GeneralExamRecorded" in out
