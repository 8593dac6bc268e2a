"""`ledger doctor`: a healthy station passes every check; each problem we can provoke is one
row with a fix, and exit 1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.cli import main
from documents.forms import fonts
from services.doctor import DoctorReport, Finding, Status, diagnose
from services.roster import DEMO_STAFF
from services.settings import Settings
from services.station import Station
from signing.pki import StationPKI
from signing.tsa import TimestampAuthority, TsaServer
from tests.conftest import make_settings


def _finding(report: DoctorReport, check: str) -> Finding:
    (finding,) = [f for f in report.findings if f.check == check]
    return finding


def test_a_healthy_station_passes_every_check(station: Station) -> None:
    report = diagnose(station.settings)
    assert report.ok, report.problems
    assert [f.check for f in report.findings] == [
        "form font",
        "openssl",
        "store",
        "station PKI",
        "TSA",
        "staff certificates",
    ]
    assert "5 tables in this version's layout" in _finding(report, "store").found
    assert "token valid" in _finding(report, "TSA").found
    assert f"{len(DEMO_STAFF)} valid beyond" in _finding(report, "staff certificates").found


def test_doctor_prints_one_table_and_exits_0_then_1(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["doctor"]) == 1  # nothing there yet
    out = capsys.readouterr().out
    assert "ledger doctor" in out and "no station under" in out and "ledger init" in out
    assert not (cli_env / "ledger.sqlite").exists()  # the doctor creates no store
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["doctor"]) == 0
    assert "All checks passed." in capsys.readouterr().out
    assert main(["doctor", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and len(document["findings"]) == 6


def test_a_missing_font_is_a_problem_with_the_install_command(
    sqlite_station: Station, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(fonts.FONT_ENV, raising=False)
    monkeypatch.setattr(fonts, "FONT_PACKAGE", "no_such_font_package")
    monkeypatch.setattr(fonts, "DEFAULT_FONT", tmp_path / "absent.ttc")
    report = diagnose(sqlite_station.settings)
    font = _finding(report, "form font")
    assert font.status is Status.PROBLEM and "pip install noto-cjk-sans-otc" in font.fix
    assert not report.ok and report.problems == (font,)


def test_missing_openssl_is_a_problem(
    sqlite_station: Station, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    finding = _finding(diagnose(sqlite_station.settings), "openssl")
    assert finding.status is Status.PROBLEM and "apt-get install openssl" in finding.fix


def test_a_missing_or_foreign_sqlite_store_is_a_problem_and_stays_absent(
    sqlite_station: Station, tmp_path: Path
) -> None:
    absent = tmp_path / "nowhere" / "ledger.sqlite"
    settings = sqlite_station.settings.model_copy(update={"db": f"sqlite:///{absent}"})
    finding = _finding(diagnose(settings), "store")
    assert finding.status is Status.PROBLEM and "ledger init" in finding.fix
    assert not absent.exists() and not absent.parent.exists()
    foreign = tmp_path / "other.sqlite"
    import sqlite3

    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE stored_events (x)")
    settings = sqlite_station.settings.model_copy(update={"db": f"sqlite:///{foreign}"})
    finding = _finding(diagnose(settings), "store")
    assert (
        finding.status is Status.PROBLEM
        and "lacks ledger_chain" in finding.found
        and "stored_events" not in finding.found
    )


def test_a_store_of_another_layout_is_a_problem(sqlite_station: Station, tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "ledger.sqlite"
    assert path.is_file()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE ledger_batches DROP COLUMN gen_time")
    finding = _finding(diagnose(sqlite_station.settings), "store")
    assert finding.status is Status.PROBLEM
    assert "another layout: ledger_batches lacks gen_time" in finding.found


def test_an_unreachable_postgresql_server_is_a_problem(sqlite_station: Station) -> None:
    settings = sqlite_station.settings.model_copy(
        update={"db": "postgresql://postgres@127.0.0.1:1/nothing"}
    )
    finding = _finding(diagnose(settings), "store")
    assert finding.status is Status.PROBLEM and "unreachable" in finding.found


def test_a_wrong_passphrase_skips_what_needs_the_pki(sqlite_station: Station) -> None:
    settings = sqlite_station.settings.model_copy(update={"passphrase": SecretStr("wrong")})
    report = diagnose(settings)
    pki = _finding(report, "station PKI")
    assert pki.status is Status.PROBLEM and "LEDGER_PASSPHRASE" in pki.fix
    assert _finding(report, "TSA").status is Status.SKIPPED
    assert _finding(report, "staff certificates").status is Status.SKIPPED


def test_staff_certificates_expiring_within_30_days_or_expired(sqlite_station: Station) -> None:
    now = datetime.now(UTC)
    soon = _finding(
        diagnose(sqlite_station.settings, now=now + timedelta(days=350)), "staff certificates"
    )
    assert soon.status is Status.PROBLEM and "within 30 days" in soon.found
    assert "A001 expires on" in soon.found
    late = _finding(
        diagnose(sqlite_station.settings, now=now + timedelta(days=370)), "staff certificates"
    )
    assert late.status is Status.PROBLEM and "A001 expired on" in late.found


def test_revoked_staff_certificates_are_listed(sqlite_station: Station) -> None:
    sqlite_station.revoke_staff("N002", "left the station")
    finding = _finding(diagnose(sqlite_station.settings), "staff certificates")
    assert finding.status is Status.OK
    valid = f"{len(DEMO_STAFF) - 1} valid"
    assert "revoked (cannot sign): N002" in finding.found and valid in finding.found


def test_an_unreachable_tsa_is_a_problem(sqlite_station: Station) -> None:
    settings: Settings = sqlite_station.settings.model_copy(
        update={"tsa_urls": "http://127.0.0.1:9/tsa", "tsa_timeout_s": 2.0}
    )
    finding = _finding(diagnose(settings), "TSA")
    assert finding.status is Status.PROBLEM and "LEDGER_TSA_URLS" in finding.fix


def test_a_tsa_whose_certificate_is_not_trusted_is_a_problem(
    sqlite_station: Station, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    other = StationPKI.create(tmp_path / "other-pki", "Other center", b"other-passphrase", now)
    server = TsaServer(TimestampAuthority(other.issue_tsa("Other TSA", now)))
    server.start()
    try:
        settings = sqlite_station.settings.model_copy(update={"tsa_urls": server.url})
        finding = _finding(diagnose(settings), "TSA")
    finally:
        server.stop()
    assert finding.status is Status.PROBLEM and "rejected" in finding.found
    assert "LEDGER_TSA_TRUST" in finding.fix
    trust = tmp_path / "tsa-trust.pem"
    trust.write_bytes(other.chain_pem())
    server = TsaServer(TimestampAuthority(other.load_tsa()))
    server.start()
    try:
        settings = settings.model_copy(update={"tsa_urls": server.url, "tsa_trust": trust})
        finding = _finding(diagnose(settings), "TSA")
    finally:
        server.stop()
    assert finding.status is Status.OK and server.url in finding.found


def test_a_tsa_clock_offset_beyond_the_tolerance_is_a_problem(sqlite_station: Station) -> None:
    finding = _finding(diagnose(sqlite_station.settings, max_clock_offset_s=-1.0), "TSA")
    assert finding.status is Status.PROBLEM and "clock offset" in finding.found
    assert "NTP" in finding.fix


def test_a_tsa_certificate_near_its_end_is_a_problem(sqlite_station: Station) -> None:
    tsa_end = sqlite_station.pki.load_tsa().certificate.not_valid_after_utc
    finding = _finding(diagnose(sqlite_station.settings, now=tsa_end - timedelta(days=3)), "TSA")
    assert finding.status is Status.PROBLEM and "its certificate expires on" in finding.found


def test_findings_for_a_fresh_home(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'l.sqlite'}")
    report = diagnose(settings)
    assert {f.check for f in report.problems} == {
        "store",
        "station PKI",
        "TSA",
        "staff certificates",
    }
    assert not (tmp_path / "home").exists()
