"""The `ledger` command line: exit codes, one-line errors, and an export that openssl accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from api.cli import main
from api.station import Station
from tests.conftest import make_settings
from tests.workflow import complete


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LEDGER_DB", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LEDGER_PASSPHRASE", "test-only-passphrase")
    monkeypatch.setenv("LEDGER_STATION_ID", "TEST-01")
    return tmp_path


def _station(tmp: Path) -> Station:
    return Station.open(make_settings(tmp / "home", f"sqlite:///{tmp / 'ledger.sqlite'}"))


def _events(tmp: Path) -> int:
    station = _station(tmp)
    try:
        return len(station.app.recorder.select_notifications(1, 100_000))
    finally:
        station.close()


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
    station = _station(cli_env)
    donation_id = complete(station)
    number = station.app.donation(donation_id).donation_no
    station.close()
    before = _events(cli_env)
    cases = [
        [
            "amend",
            "0000000000000",
            "--step",
            "general_exam",
            "--field",
            "temperature_c",
            "--value",
            "36.9",
            "--reason",
            "typo",
            "--staff",
            "P001",
        ],
        [
            "amend",
            number,
            "--step",
            "general_exam",
            "--field",
            "no_such_field",
            "--value",
            "1",
            "--reason",
            "typo",
            "--staff",
            "P001",
        ],
        [
            "amend",
            number,
            "--step",
            "general_exam",
            "--field",
            "temperature_c",
            "--value",
            "36.9",
            "--reason",
            " ",
            "--staff",
            "P001",
        ],
        [
            "amend",
            number,
            "--step",
            "general_exam",
            "--field",
            "temperature_c",
            "--value",
            '"hot"',
            "--reason",
            "typo",
            "--staff",
            "P001",
        ],
        [
            "amend",
            number,
            "--step",
            "general_exam",
            "--field",
            "temperature_c",
            "--value",
            "36.9",
            "--reason",
            "typo",
            "--staff",
            "NOBODY",
        ],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("ledger: error: ") and err.count("\n") == 1, err
    assert _events(cli_env) == before
    assert (
        main(
            [
                "amend",
                number,
                "--step",
                "general_exam",
                "--field",
                "temperature_c",
                "--value",
                "36.9",
                "--reason",
                "typo",
                "--staff",
                "P001",
            ]
        )
        == 0
    )
    assert _events(cli_env) == before + 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_exported_event_verifies_with_openssl(cli_env: Path) -> None:
    assert main(["init"]) == 0
    station = _station(cli_env)
    complete(station)
    positions = [n.id for n in station.app.recorder.select_notifications(1, 100_000)]
    exam = next(
        n.id
        for n in station.app.recorder.select_notifications(1, 100_000)
        if n.topic.endswith("GeneralExamRecorded")
    )
    station.close()
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
