"""`ledger verify` and `ledger checkpoint` on the command line: the typed report in JSON, its
exit codes, and bad input (a store that is not there, an unreadable checkpoint, an unwritable
--out) refused in one line with nothing written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from api.cli import main
from services.station import Station
from tests.conftest import make_settings
from tests.tamper import Tamperer
from tests.workflow import complete


def _station(cli_env: Path) -> tuple[Station, Path]:
    db = cli_env / "ledger.sqlite"
    station = Station.initialise(make_settings(cli_env / "home", f"sqlite:///{db}"))
    complete(station)
    return station, db


def test_verify_json_on_an_edited_event_names_its_position(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, db = _station(cli_env)
    tamperer = Tamperer(station, str(db))
    target = tamperer.find("GeneralExamRecorded")
    event = tamperer.event_at(target)
    tamperer.write_event(target, tamperer.replace(event, weight_kg=44.0))
    tamperer.close()
    station.close()
    capsys.readouterr()
    assert main(["verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 1 and report["verdict"] == "FAILED"
    first = report["findings"][0]
    assert first["position"] == target and isinstance(first["position"], int)
    assert first["code"] == "EVENT_HASH_MISMATCH"
    assert first["event_type"] == "GeneralExamRecorded"
    assert {"code", "subject", "message", "severity"} <= set(first)


def test_verify_json_on_an_intact_ledger_passes(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, _ = _station(cli_env)
    station.close()
    capsys.readouterr()
    assert main(["verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "PASSED" and report["findings"] == []
    assert report["events"] > 10 and report["pending"] == report["events"]


def test_verify_a_store_that_does_not_exist_is_an_error_and_creates_nothing(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    station, _ = _station(cli_env)
    station.close()
    missing = cli_env / "elsewhere" / "typo.sqlite"
    monkeypatch.setenv("LEDGER_DB", f"sqlite:///{missing}")
    capsys.readouterr()
    assert main(["verify"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no ledger at" in err and str(missing) in err
    assert not missing.exists() and not missing.parent.exists()


def test_verify_a_missing_postgres_schema_is_an_error(
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pg_schema: str,
) -> None:
    station, _ = _station(cli_env)
    station.close()
    monkeypatch.setenv("LEDGER_DB", pg_schema)  # a schema nobody created
    capsys.readouterr()
    assert main(["verify"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no ledger in schema" in err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xff\xfe\x00garbage", "is not UTF-8 text"),
        (b"{not json", "is not JSON"),
        (b'{"format": "something else"}', "not a ledger checkpoint"),
        (None, "cannot read checkpoint"),
    ],
)
def test_verify_since_a_bad_file_names_the_file(
    content: bytes | None,
    reason: str,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    station, _ = _station(cli_env)
    station.close()
    bad = cli_env / "cp.json"
    if content is not None:
        bad.write_bytes(content)
    capsys.readouterr()
    assert main(["verify", "--since", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and reason in err


def test_checkpoint_to_an_unwritable_path_stores_nothing(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, db = _station(cli_env)
    station.close()
    capsys.readouterr()
    for out in (cli_env / "no-such-dir" / "cp.json", cli_env):
        assert main(["checkpoint", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(out) in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM ledger_checkpoints").fetchone()[0] == 0
    good = cli_env / "cp.json"
    assert main(["checkpoint", "--out", str(good)]) == 0
    assert json.loads(good.read_text())["format"] == "donation-ledger-checkpoint/2"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM ledger_checkpoints").fetchone()[0] == 1
    assert main(["verify", "--since", str(good)]) == 0


def test_events_pending_beyond_the_policy_exit_3_indeterminate(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    station, _ = _station(cli_env)  # nothing stamped: every event is pending
    station.close()
    capsys.readouterr()
    assert main(["verify"]) == 0  # within the batch delay plus the one-hour grace
    monkeypatch.setenv("LEDGER_PENDING_GRACE_S", "0")
    monkeypatch.setenv("LEDGER_BATCH_MAX_DELAY_MS", "0")
    capsys.readouterr()
    assert main(["verify", "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "INDETERMINATE"
    (finding,) = report["findings"]
    assert finding["code"] == "EVENTS_PENDING_TOO_LONG" and finding["position"] == 1
    assert main(["verify"]) == 3
    assert "ledger verify: INDETERMINATE at position 1" in " ".join(capsys.readouterr().out.split())
