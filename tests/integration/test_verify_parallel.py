"""Verification across worker processes gives the serial report: the same verdict, findings (codes,
positions, messages, in the same order) and counts, for every tamper vector, with range boundaries
at every event (ranges of one event) and every few events, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import ledger.verify
from api.cli import main
from ledger.report import Verdict
from ledger.verify import VerificationReport
from services.station import Station
from services.verification import ledger_verifier
from tests.conftest import make_settings
from tests.integration.test_tamper_vectors import VECTORS, build_ledger
from tests.tamper import Tamperer
from tests.workflow import complete

#: Range sizes: one event per range puts a boundary between every two events; 5 and 13 put
#: them at different places of each donation.
RANGES = (1, 5, 13)


def verify(station: Station, now: datetime, workers: int, range_events: int = 10_000) -> Any:
    verifier = ledger_verifier(station, now=now, workers=workers)
    verifier.range_events = range_events
    return verifier.verify()


def comparable(report: VerificationReport) -> dict[str, Any]:
    document = report.to_json()
    return {"document": document, "findings": [f.describe() for f in report.findings]}


def tampered(tmp_path: Path, db: str, name: str) -> tuple[Station, datetime]:
    vector: dict[str, Any] = json.loads((VECTORS[0].parent / f"{name}.json").read_text())
    station = build_ledger(tmp_path, db)
    tamperer = Tamperer(station)
    try:
        tamperer.apply(vector)
    finally:
        tamperer.close()
    hours = float(vector["expect"].get("verify_after_hours", 0))
    return station, datetime.now(UTC) + timedelta(hours=hours)


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_two_workers_give_the_serial_report_for_each_tamper_vector(
    path: Path, tmp_path: Path, backend_db: str
) -> None:
    station, now = tampered(tmp_path, backend_db, path.stem)
    with station:
        serial = verify(station, now, workers=1)
        for size in RANGES:
            parallel = verify(station, now, workers=2, range_events=size)
            assert parallel == serial, (path.stem, size)
            assert comparable(parallel) == comparable(serial), (path.stem, size)


def test_two_workers_give_the_serial_report_of_an_untampered_ledger(tmp_path: Path) -> None:
    station = build_ledger(tmp_path, f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    now = datetime.now(UTC) + timedelta(hours=2)
    with station:
        serial = verify(station, now, workers=1)
        parallel = verify(station, now, workers=2, range_events=4)
    assert serial.verdict is Verdict.PASSED
    assert parallel == serial


def test_the_cap_on_findings_is_where_the_serial_run_puts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An edited event is a finding with events after it: with a cap of 1 the run stops there.
    station, now = tampered(tmp_path, f"sqlite:///{tmp_path / 'ledger.sqlite'}", "edited-payload")
    monkeypatch.setattr(ledger.verify, "MAX_FINDINGS", 1)
    with station:
        serial = verify(station, now, workers=1)
        assert "FINDINGS_TRUNCATED" in {f.code for f in serial.findings}
        for size in RANGES:
            assert verify(station, now, workers=2, range_events=size) == serial, size


def test_verify_since_with_two_workers_gives_the_serial_report(tmp_path: Path) -> None:
    # Batches only (a checkpoint before per-event tokens is another matter: see the report).
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with Station.initialise(settings) as station:
        complete(station)
        complete(station, cosign=False)
        station.stamper().flush()
        checkpoint = station.checkpoint()
        complete(station)
        station.stamper().flush()
        now = datetime.now(UTC) + timedelta(hours=2)
        serial = ledger_verifier(station, since=checkpoint, now=now, workers=1).verify()
        for size in RANGES:
            verifier = ledger_verifier(station, since=checkpoint, now=now, workers=2)
            verifier.range_events = size
            assert verifier.verify() == serial, size
    assert serial.verdict is Verdict.PASSED, serial.issues()[:2]
    assert serial.since_size == checkpoint.size
    assert serial.signatures < serial.events  # only the events after the checkpoint


def test_cli_verify_workers(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_ledger(cli_env, f"sqlite:///{cli_env / 'ledger.sqlite'}").close()
    assert main(["verify", "--workers", "2"]) == 0
    assert "ledger verify: OK" in " ".join(capsys.readouterr().out.split())
    assert main(["verify", "--workers", "0"]) == 2
