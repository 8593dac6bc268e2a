"""Checkpoints published to a witness the database administrator does not control: an
administrator who rewrites the tail consistently (deletes, re-links, wipes the evidence, then
re-stamps and re-checkpoints) leaves a ledger that verifies on its own, and fails against the
witness: rollback and fork, with a file witness and an HTTP witness."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from api.cli import main
from ledger.report import Code, Verdict
from ledger.verify_time import WitnessedCheckpoint
from services import checkpoints
from services.checkpoints import read_witness
from services.station import Station
from services.verification import verify_station
from tests.conftest import make_settings
from tests.tamper import Tamperer
from tests.workflow import amend_temperature, complete


class _Witness(BaseHTTPRequestHandler):
    lines: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        json.loads(body)
        self.lines.append(body)
        self.send_response(201)
        self.end_headers()

    def do_GET(self) -> None:
        data = "".join(line + "\n" for line in self.lines).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_witness() -> Iterator[str]:
    handler = type("Witness", (_Witness,), {"lines": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/checkpoints"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["file", "http"])
def witness(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return str(tmp_path / "witness.jsonl")
    target: str = request.getfixturevalue("http_witness")
    return target


def _station(tmp_path: Path, db: str, witness: str) -> Station:
    settings = make_settings(tmp_path / "home", db).model_copy(update={"witness": witness})
    station = Station.initialise(settings)
    complete(station)
    donation_id = complete(station)
    amend_temperature(station, donation_id, 36.8)
    complete(station)
    station.checkpoint()  # published to the witness
    return station


def _verify(station: Station, witnessed: list[WitnessedCheckpoint] | None = None) -> Any:
    return verify_station(station, witnessed=witnessed or [], now=datetime.now(UTC))


def _rewrite_consistently(station: Station, vector: dict[str, Any], *, grow: bool = False) -> None:
    """The administrator's rewrite (then, with *grow*, the station writes on), then a fresh
    stamp and checkpoint of the rewritten log."""
    tamperer = Tamperer(station)
    try:
        tamperer.apply(vector)
    finally:
        tamperer.close()
    if grow:
        complete(station)
    station.stamper().flush()
    checkpoints.issue(station, witness="")  # stored in the database only: not witnessed


ROLLBACK = {
    "target": {"event_type": "HeatSealVerified", "occurrence": 3},
    "mutation": {
        "ops": [
            {"op": "delete_tail"},
            {"op": "delete_evidence", "tables": ["batches", "checkpoints", "event_tokens"]},
        ]
    },
}
FORK = {
    "target": {"event_type": "RecordAmended"},
    "mutation": {
        "ops": [
            {"op": "delete_event"},
            {"op": "relink_over"},
            {"op": "delete_evidence", "tables": ["batches", "checkpoints", "event_tokens"]},
        ]
    },
}


@pytest.mark.parametrize(
    ("attack", "grow", "words"),
    [(ROLLBACK, False, "truncated or rolled back"), (FORK, True, "forked")],
    ids=["rollback", "fork"],
)
def test_a_consistent_rewrite_passes_alone_and_fails_against_the_witness(
    attack: dict[str, Any],
    grow: bool,
    words: str,
    tmp_path: Path,
    backend_db: str,
    witness: str,
) -> None:
    station = _station(tmp_path, backend_db, witness)
    witnessed = read_witness(witness)
    assert len(witnessed) == 1
    assert _verify(station, witnessed).verdict is Verdict.PASSED
    _rewrite_consistently(station, attack, grow=grow)
    alone = _verify(station)
    assert alone.verdict is Verdict.PASSED, alone.issues()[:3]  # the ledger alone cannot tell
    report = _verify(station, read_witness(witness))
    station.close()
    assert report.verdict is Verdict.FAILED
    first = report.issues()[0]
    assert first.code is Code.CHECKPOINT_INCONSISTENT, first.describe()
    assert words in first.message and f"Witness {witness}:1" in first.subject, first.describe()
    assert first.position == witnessed[0].checkpoint.head_position


def test_the_checkpoint_signs_the_chain_head(tmp_path: Path, witness: str) -> None:
    station = _station(tmp_path, f"sqlite:///{tmp_path / 'l.sqlite'}", witness)
    head = station.store.chain_head()
    station.close()
    (entry,) = read_witness(witness)
    assert head is not None
    assert (entry.checkpoint.head_position, entry.checkpoint.head_hash) == (
        head.position,
        head.event_hash,
    )
    assert "head_hash" in json.loads(entry.checkpoint.canonical())


def test_cli_checkpoint_publishes_and_verify_witness_checks(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = cli_env / "ledger.sqlite"
    witness = cli_env / "witness.jsonl"
    station = Station.initialise(make_settings(cli_env / "home", f"sqlite:///{db}"))
    complete(station)
    station.close()
    assert main(["checkpoint", "--witness", str(witness)]) == 0
    assert len(witness.read_text().splitlines()) == 1
    capsys.readouterr()
    assert main(["verify", "--witness", str(witness), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["witnessed_checkpoints"] == 1
    station = Station.open(make_settings(cli_env / "home", f"sqlite:///{db}"))
    _rewrite_consistently(station, ROLLBACK_FIRST)
    station.close()
    capsys.readouterr()
    assert main(["verify"]) == 0
    assert main(["verify", "--witness", str(witness)]) == 1
    assert "CHECKPOINT_INCONSISTENT" in capsys.readouterr().out
    witness.write_text("not json\n")
    assert main(["verify", "--witness", str(witness)]) == 2
    assert f"{witness}:1" in capsys.readouterr().err


ROLLBACK_FIRST = {**ROLLBACK, "target": {"event_type": "HeatSealVerified"}}


def test_a_stored_checkpoint_missing_from_the_witness_is_a_warning(
    tmp_path: Path, witness: str
) -> None:
    station = _station(tmp_path, f"sqlite:///{tmp_path / 'l.sqlite'}", witness)
    complete(station)
    checkpoints.issue(station, witness="")
    report = verify_station(
        station, witnessed=read_witness(witness), now=datetime.now(UTC) + timedelta(seconds=1)
    )
    station.close()
    assert report.verdict is Verdict.PASSED
    assert [f.code for f in report.findings] == [Code.CHECKPOINT_NOT_WITNESSED]
