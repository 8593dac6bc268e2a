"""``ledger rebuild`` and ``ledger report`` (api/cli_reports.py) on a simulated day."""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from api.cli import main as ledger_main
from api.cli_reports import register
from ledger.stores import persistence_env
from projections import queries
from projections.runner import Views
from services.settings import Settings
from tests.workflow import amend_argv


def run(argv: Sequence[str]) -> int:
    """The two commands on a parser of their own (api/cli.py wires ``register`` the same way)."""
    parser = argparse.ArgumentParser(prog="ledger")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(list(argv))
    result: int = args.handler(Settings(), args)
    return result


@pytest.fixture
def day(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "200")
    assert ledger_main(["demo", "--donations", "30", "--seed", "5", "--no-archive"]) == 0
    return cli_env


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().out.split())


def test_rebuild_check_then_rebuild(day: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["rebuild", "--check"]) == 0
    out = _out(capsys)
    assert out.count("same") == 5 and "replaced" not in out
    assert run(["rebuild", "--projection", "audit_trail"]) == 0
    out = _out(capsys)
    assert "audit_trail" in out and "same, replaced" in out and "donor_record" not in out


def test_a_tampered_view_is_caught_and_replaced(
    day: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["rebuild", "--check"]) == 0
    with sqlite3.connect(day / "ledger.sqlite") as db:
        db.execute("UPDATE donation_record SET status = 'open' WHERE rowid = 1")
    capsys.readouterr()
    assert run(["rebuild", "--check"]) == 1
    assert "DIFFERENT" in _out(capsys)
    assert run(["rebuild"]) == 1  # it differed, and it was replaced
    assert run(["rebuild", "--check"]) == 0


def test_quality_report_table_csv_and_chart(day: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    csv_file, chart = day / "quality.csv", day / "quality.png"
    argv = ["report", "quality", "--from", "2000-01-01", "--to", "2099-12-31"]
    assert run([*argv, "--csv", str(csv_file), "--chart", str(chart)]) == 0
    out = _out(capsys)
    assert re.search(r"Registrations │ 30 │", out), out
    assert "Staff co-signatures missing at sealing" in out
    with csv_file.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    overall = {
        r["id"]: (int(r["numerator"]), int(r["denominator"]))
        for r in rows
        if r["section"] == "rate" and r["dimension"] == "all"
    }
    assert overall["record_modification_rate"][1] == 30
    counted = [r for r in rows if r["section"] == "counted"]
    assert len(counted) == overall["record_modification_rate"][0] + sum(
        overall[m][0] for m in ("staff_missing_signature_rate", "donor_missing_signature_rate")
    )
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_period_that_ends_before_it_starts_is_bad_input(day: Path) -> None:
    with pytest.raises(ValueError, match="before"):
        run(["report", "quality", "--from", "2026-02-01", "--to", "2026-01-01"])
    with pytest.raises(SystemExit):
        run(["report", "quality", "--from", "yesterday", "--to", "2026-01-01"])


def test_donation_and_audit_reports(day: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["report", "archive"]) == 0  # creates and fills the views
    assert "献血服务二科" in _out(capsys)
    with sqlite3.connect(day / "ledger.sqlite") as db:
        (number,) = db.execute(
            "SELECT donation_no FROM archive_item WHERE state = 'queued' "
            "ORDER BY donation_no LIMIT 1"
        ).fetchone()
    # 35.9 °C: below every temperature the demo records (36.1-37.4), so never "already" the value.
    assert ledger_main(amend_argv(number, value="35.9", reason="thermometer re-read")) == 0
    capsys.readouterr()
    assert run(["report", "donation", number]) == 0
    out = _out(capsys)
    assert number in out and "temperature_c*=35.9" in out and "************" in out
    assert run(["report", "audit", number, "--changes"]) == 0
    out = _out(capsys)
    assert "thermometer re-read" in out and "temperature_c #1" in out and "35.9" in out
    assert run(["report", "audit", number]) == 0
    assert "heat_seal" in _out(capsys)
    with pytest.raises(ValueError, match="no donation"):
        run(["report", "donation", "0000000000000"])


def test_audit_signature_digest_matches_the_exported_signature(day: Path) -> None:
    """``base64 -w0 sig.p7s | sha256sum`` after ``ledger export-event POS`` gives the digest the
    audit trail shows for the event at POS."""
    assert run(["report", "archive"]) == 0
    views = Views.open(persistence_env(f"sqlite:///{day / 'ledger.sqlite'}"))
    try:
        [item, *_] = queries.archive_queue(views)
        trail = queries.audit_trail(views, item["donation_no"])
    finally:
        views.close()
    assert trail is not None
    recorded = trail["steps"]["general_exam"]["recorded"]
    out = day / "evidence"
    assert ledger_main(["export-event", str(recorded["position"]), "--out", str(out)]) == 0
    as_base64 = base64.b64encode((out / "sig.p7s").read_bytes())
    assert hashlib.sha256(as_base64).hexdigest() == recorded["signature_sha256"]
    evidence = json.loads((out / "evidence.json").read_text())
    assert evidence["event_hash"] == recorded["event_hash"]
