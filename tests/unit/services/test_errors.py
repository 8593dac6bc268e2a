"""One error base: expected failures are `LedgerError` (one line, exit 2); anything else is a
bug (one line saying so and where the traceback went, exit 70)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli import UsageError, main
from api.cli_reports import ReportError
from documents.forms.fonts import FontUnavailable
from documents.forms.model import FormConfigError
from ledger.canonical import CanonicalisationError
from ledger.checkpoints import CheckpointError
from ledger.events import WorkflowError
from ledger.identity import InvalidIdentity
from ledger.merkle import MerkleVerificationError, RootMismatchError
from ledger.rules import RuleViolation
from ledger.stores import StoreURLError
from services.bugs import EXIT_BUG
from services.station import Station, StationNotInitialised
from signing.errors import InputError, LedgerError, SigningError

EXPECTED_ERRORS = [
    WorkflowError,
    CheckpointError,
    StoreURLError,
    InvalidIdentity,
    CanonicalisationError,
    FormConfigError,
    FontUnavailable,
    StationNotInitialised,
    ReportError,
    UsageError,
    RuleViolation,
    MerkleVerificationError,
    RootMismatchError,
    SigningError,
]


@pytest.mark.parametrize("error", EXPECTED_ERRORS, ids=lambda e: e.__name__)
def test_every_expected_error_is_a_ledger_error(error: type[Exception]) -> None:
    assert issubclass(error, LedgerError)


@pytest.mark.parametrize(
    "error", [StoreURLError, InvalidIdentity, ReportError, UsageError], ids=lambda e: e.__name__
)
def test_bad_input_errors_are_input_errors(error: type[Exception]) -> None:
    assert issubclass(error, InputError)


def _boom(*args: object, **kwargs: object) -> Station:
    raise KeyError("boom: an unexpected failure")


def test_an_expected_error_is_one_line_and_exit_2(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(*args: object, **kwargs: object) -> Station:
        raise WorkflowError("refused\nfor a reason")

    monkeypatch.setattr(Station, "open", refused)
    assert main(["station", "show"]) == 2
    err = capsys.readouterr().err
    assert err == "ledger: error: refused for a reason\n"


def test_an_unexpected_exception_is_reported_as_a_bug_with_its_traceback_file(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LEDGER_DEBUG", raising=False)
    monkeypatch.setattr(Station, "open", _boom)
    assert main(["station", "show"]) == EXIT_BUG == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "a bug" in err and "KeyError" in err and "Traceback" not in err
    written = list((cli_env / "home" / "bugs").glob("ledger-bug-*.txt"))
    assert len(written) == 1 and str(written[0]) in err
    text = written[0].read_text()
    assert text.startswith("Traceback") and "_boom" in text and "boom: an unexpected" in text


def test_ledger_debug_prints_the_traceback_instead(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGER_DEBUG", "1")
    monkeypatch.setattr(Station, "open", _boom)
    assert main(["station", "show"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "_boom" in err and "LEDGER_DEBUG=1" in err.splitlines()[-1]
    assert not (cli_env / "home" / "bugs").exists()


def test_a_bad_setting_in_the_environment_is_bad_input(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGER_BATCH_MAX_EVENTS", "many")
    assert main(["station", "show"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ledger: error: LEDGER_BATCH_MAX_EVENTS")


def test_a_reader_that_goes_away_is_not_a_bug(cli_env: Path) -> None:
    """``ledger report ... --json | head``: the closed pipe ends the command with the shell's
    SIGPIPE status (141), no 'internal error' line and no bug report written."""
    import os
    import subprocess
    import sys

    assert main(["init"]) == 0
    argv = ["report", "quality", "--from", "2026-01-01", "--to", "2026-12-31", "--json"]
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "internal error" not in done.stderr
    assert not (cli_env / "home" / "bugs").exists()
