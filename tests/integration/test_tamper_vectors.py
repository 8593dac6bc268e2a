"""Every tamper vector in fixtures/vectors/tamper must fail verification at the right event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from services.station import Station
from tests.conftest import make_settings
from tests.tamper import Tamperer
from tests.workflow import amend_temperature, complete

VECTORS = sorted((Path(__file__).resolve().parents[2] / "fixtures/vectors/tamper").glob("*.json"))


def _ledger(tmp_path: Path) -> tuple[Station, str]:
    db = tmp_path / "ledger.sqlite"
    # The station CA dates from three days ago, so an old donor certificate can be forged.
    station = Station.initialise(
        make_settings(tmp_path / "home", f"sqlite:///{db}"),
        now=datetime.now(UTC) - timedelta(days=3),
    )
    complete(station)
    donation_id = complete(station, cosign=False)
    amend_temperature(station, donation_id, 36.8)
    assert station.verifier().verify().ok
    return station, str(db)


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
    ):
        assert required in names


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector_fails_verification_at_the_named_event(path: Path, tmp_path: Path) -> None:
    vector: dict[str, Any] = json.loads(path.read_text())
    station, db = _ledger(tmp_path)
    tamperer = Tamperer(station, db)
    try:
        named = tamperer.apply(vector)
    finally:
        tamperer.close()
    report = station.verifier().verify()
    station.close()
    assert not report.ok, f"{vector['name']}: tampering went unnoticed"
    first = report.issues()[0]
    expected_position = named[vector["expect"]["at"]]
    assert first.position == expected_position, first.describe()
    assert vector["expect"]["reason"] in first.message, first.describe()


def test_cli_verify_exits_1_naming_position_donation_and_event(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, db = _ledger(cli_env)
    tamperer = Tamperer(station, db)
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
