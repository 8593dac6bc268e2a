"""The `ledger` command line: exit codes, one-line errors, and an export that openssl accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from ledger.events import WorkflowError
from ledger.signer import CredentialSigner
from services.station import Station
from tests.conftest import make_settings
from tests.workflow import amend_argv, complete


def _station(tmp: Path) -> Station:
    return Station.open(make_settings(tmp / "home", f"sqlite:///{tmp / 'ledger.sqlite'}"))


def _events(tmp: Path) -> int:
    with _station(tmp) as station:
        return len(station.app.recorder.select_notifications(1, 100_000))


def test_demo_runs_a_day_and_verifies(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--donations", "12", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"donations registered\s*│\s*12\s*│", out), out
    assert "ledger verify: OK" in " ".join(out.split())


def test_verify_before_init_is_a_one_line_error(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ledger init" in err


def test_amend_with_bad_input_exits_2_and_writes_nothing(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    with _station(cli_env) as station:
        donation_id = complete(station)
        number = station.app.donation(donation_id).donation_no
    before = _events(cli_env)
    cases = [
        amend_argv("0000000000000"),
        amend_argv(number, field="no_such_field", value="1"),
        amend_argv(number, reason=" "),
        amend_argv(number, value='"hot"'),
        amend_argv(number, staff="NOBODY"),
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("ledger: error: ") and err.count("\n") == 1, err
    assert _events(cli_env) == before
    assert main(amend_argv(number)) == 0
    assert _events(cli_env) == before + 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_exported_event_verifies_with_openssl(cli_env: Path) -> None:
    assert main(["init"]) == 0
    with _station(cli_env) as station:
        complete(station)
        positions = [n.id for n in station.app.recorder.select_notifications(1, 100_000)]
        exam = next(
            n.id
            for n in station.app.recorder.select_notifications(1, 100_000)
            if n.topic.endswith("GeneralExamRecorded")
        )
    out = cli_env / "export"
    assert main(["export-event", str(exam), "--out", str(out)]) == 0
    command = [
        "openssl",
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "sig.p7s",
        "-content",
        "event.json",
        "-CAfile",
        "chain.pem",
        "-out",
        "/dev/null",
    ]
    ok = subprocess.run(command, cwd=out, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    meta = json.loads((out / "evidence.json").read_text())
    import hashlib

    assert hashlib.sha256((out / "event.json").read_bytes()).hexdigest() == meta["event_hash"]
    body = json.loads((out / "event.json").read_text())
    body["weight_kg"] = 44.0
    (out / "event.json").write_text(json.dumps(body, separators=(",", ":")))
    bad = subprocess.run(command, cwd=out, capture_output=True, text=True)
    assert bad.returncode != 0
    assert main(["export-event", str(max(positions) + 10), "--out", str(out)]) == 2


def test_revoked_staff_signature_after_revocation_fails_verify(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    with _station(cli_env) as station:
        complete(station)
    assert main(["revoke", "P001", "--reason", "left the station"]) == 0
    assert main(["verify"]) == 0  # what P001 signed before the revocation stays valid
    with _station(cli_env) as station:
        with pytest.raises(WorkflowError, match="revoked"):
            station.signer("P001")  # the application refuses a revoked signer ...
        # ... so the attacker signs with the key directly, bypassing it.
        signer = CredentialSigner(station.pki.load_staff("P001"), "examining_physician")
        complete_until_exam(station, signer)
    capsys.readouterr()
    assert main(["verify"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "GeneralExamRecorded" in out and "revoked" in out


def complete_until_exam(station: Station, examiner: Any) -> Any:
    from tests.workflow import register

    donation_id = register(station)
    donor = station.donor_signer(donation_id, fingerprint_verified=True)
    station.app.sign_consent(
        donation_id,
        donor,
        answers={},
        consent=True,
        fingerprint_verified=True,
        donor_certificate_serial=donor.certificate_serial,
    )
    station.app.record_exam(
        donation_id,
        examiner,
        weight_kg=60.0,
        sbp_mmhg=120,
        dbp_mmhg=80,
        pulse_per_min=70,
        temperature_c=36.5,
    )
    return donation_id


def test_station_setting_change_is_a_signed_event(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    assert main(["station", "set", "mpv_enabled", "true", "--reason", "analyser upgrade"]) == 0
    assert main(["station", "set", "mpv_enabled", '"yes"', "--reason", "typo"]) == 2
    assert main(["station", "set", "no_such_key", "1", "--reason", "x"]) == 2
    assert main(["station", "set", "forms", '["audit"]', "--reason", "x"]) == 2
    assert main(["station", "set", "timestamp_mode", '"hourly"', "--reason", "x"]) == 2
    capsys.readouterr()
    assert main(["station", "show"]) == 0
    assert json.loads(capsys.readouterr().out)["mpv_enabled"] is True
    assert main(["verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["event_types"]["StationSettingChanged"] == 1
