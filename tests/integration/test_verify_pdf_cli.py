"""`ledger verify-pdf FILE [--trust CA.pem] [--json]`: readable and JSON reports, exit codes.

Exit 0 valid, 1 invalid (with reasons), 2 unusable input (not a PDF, unreadable, no signature,
no trust root). The command is built with `api.verify_pdf.register`, as `api.cli` wires it; the
last test runs it through `api.cli.main` once that wiring is in.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.verify_pdf import register
from services.settings import Settings
from tests import pdf_attacks
from tests.pdf_samples import (
    SampleStation,
    evidence_attachments,
    genuine_form,
    make_station,
    unsigned_form,
)

logging.getLogger("pyhanko").setLevel(logging.CRITICAL)


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> SampleStation:
    return make_station(tmp_path_factory.mktemp("cli") / "home" / "pki")


@pytest.fixture(scope="module")
def files(station: SampleStation, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("files")
    unsigned = unsigned_form(attachments=evidence_attachments(station))
    genuine = genuine_form(station, unsigned)
    contents = {
        "genuine.pdf": genuine,
        "attacked.pdf": pdf_attacks.isa_content_appended(genuine),
        "unsigned.pdf": unsigned,
        "text.pdf": b"just some text\n",
        "truncated.pdf": genuine[: len(genuine) // 3],
        "root.pem": station.root_pem(),
    }
    for name, data in contents.items():
        (directory / name).write_bytes(data)
    return {name: directory / name for name in contents}


def _settings(home: Path) -> Settings:
    return Settings(home=home, db=f"sqlite:///{home / 'unused.sqlite'}", passphrase=SecretStr("x"))


def _run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ledger")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(["verify-pdf", *argv])
    code: int = args.handler(settings, args)
    return code


def test_valid_form_readable_report(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(_settings(tmp_path), str(files["genuine.pdf"]), "--trust", str(files["root.pem"]))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ok   signature 'Nurse' (revision 2): Li Na (nurse) [STAFF:N001]" in out
    assert "ok   signature 'Physician' (revision 4): Wang Fang (physician) [STAFF:P001]" in out
    assert "PDF/A: ok: claims PDF/A-3b" in out
    assert "Evidence: ok: 3 events, 3 signatures, 3 inclusion proofs, 1 batch tokens" in out
    assert out.rstrip().splitlines()[-1].startswith("VALID: 3 signatures and timestamps hold")


def test_valid_form_json_report(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(
        _settings(tmp_path), str(files["genuine.pdf"]), "--trust", str(files["root.pem"]), "--json"
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["verdict"] == "PASSED" and report["failures"] == [] and report["findings"] == []
    assert [s["field"] for s in report["signatures"]["signatures"]][:2] == ["Nurse", "Physician"]
    assert report["signatures"]["signatures"][2]["kind"] == "document timestamp"
    assert report["pdfa"]["claim"] == "PDF/A-3b"
    assert report["evidence"]["donation_numbers"] == ["9000626123456"]


def test_attacked_form_is_invalid(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(_settings(tmp_path), str(files["attacked.pdf"]), "--trust", str(files["root.pem"]))
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL signature 'Nurse' (revision 2)" in out
    assert "INVALID: " in out
    assert "  - signature 'Nurse' (revision 2): changed after signing: Values for dict key " in out


def test_another_root_is_invalid(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(make_station(tmp_path / "other").root_pem())
    assert _run(_settings(tmp_path), str(files["genuine.pdf"]), "--trust", str(other)) == 1
    assert "no trusted certificate path" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("text.pdf", "not a PDF: no %PDF- header"),
        ("truncated.pdf", "not a complete PDF"),
        ("unsigned.pdf", "the PDF holds no signature"),
        ("missing.pdf", "cannot read"),
    ],
)
def test_unusable_input_exits_2(
    name: str,
    reason: str,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = files.get(name, tmp_path / name)
    code = _run(_settings(tmp_path), str(path), "--trust", str(files["root.pem"]), "--json")
    captured = capsys.readouterr()
    assert code == 2
    assert reason in captured.err
    assert json.loads(captured.out)["unusable"].startswith(reason.split(":")[0])


def test_no_trust_root_exits_2(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(_settings(tmp_path), str(files["genuine.pdf"])) == 2
    assert "no trust root" in capsys.readouterr().err
    assert (
        _run(_settings(tmp_path), str(files["genuine.pdf"]), "--trust", str(files["text.pdf"])) == 2
    )


def test_the_station_root_is_the_default(
    files: dict[str, Path], station: SampleStation, capsys: pytest.CaptureFixture[str]
) -> None:
    home = station.pki.directory.parent  # LEDGER_HOME, with pki/root.cert.pem
    assert _run(_settings(home), str(files["genuine.pdf"])) == 0
    assert "VALID" in capsys.readouterr().out


def test_wired_into_the_ledger_command(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import cli

    if "verify-pdf" not in cli._parser().format_help():
        pytest.skip("api.cli does not register verify-pdf yet (verify_pdf.register(sub))")
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    argv = ["verify-pdf", str(files["genuine.pdf"]), "--trust", str(files["root.pem"])]
    assert cli.main(argv) == 0
    assert (
        cli.main(["verify-pdf", str(files["attacked.pdf"]), "--trust", str(files["root.pem"])]) == 1
    )
    assert cli.main(["verify-pdf", str(files["text.pdf"]), "--trust", str(files["root.pem"])]) == 2


def test_attacked_form_json_findings_carry_codes_and_subjects(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(files["attacked.pdf"]), "--trust", str(files["root.pem"]), "--json"]
    assert _run(_settings(tmp_path), *argv) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 1 and report["verdict"] == "FAILED"
    codes = {(f["code"], f["subject"]) for f in report["findings"]}
    assert ("PDF_MODIFIED_AFTER_SIGNING", "signature 'Nurse' (revision 2)") in codes
    assert len(report["findings"]) == len(report["failures"])
