"""``ledger verify --since CHECKPOINT --new-only``: the events the checkpoint covers come from the
chain's stored hashes (their bodies are not read), the new events are verified in full.

One test per way the log can be altered, against what the mode promises: a new event edited, the
log truncated, a chain row before the checkpoint rewritten, a link broken; and the one thing it
does not promise (an old body edited in place, chain untouched), which plain ``--since`` sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.cli import main
from ledger.checkpoints import SignedCheckpoint
from ledger.report import Code, Verdict
from ledger.stores import CHAIN_TABLE
from ledger.verify import VerificationReport
from services.station import Station
from services.verification import ledger_verifier
from tests.conftest import make_settings
from tests.tamper import Tamperer
from tests.workflow import complete


@pytest.fixture
def grown(tmp_path: Path, backend_db: str) -> Iterator[tuple[Station, SignedCheckpoint]]:
    """Two donations, a checkpoint, one more donation, all stamped."""
    with Station.initialise(make_settings(tmp_path / "home", backend_db)) as station:
        complete(station)
        complete(station, cosign=False)
        station.stamper().flush()
        checkpoint = station.checkpoint()
        complete(station)
        station.stamper().flush()
        yield station, checkpoint


NOW = datetime.now(UTC) + timedelta(hours=2)


def verify(
    station: Station, since: SignedCheckpoint, *, new_only: bool, workers: int = 1, size: int = 0
) -> VerificationReport:
    verifier = ledger_verifier(station, since=since, now=NOW, workers=workers, new_only=new_only)
    if size:
        verifier.range_events = size
    return verifier.verify()


def codes(report: VerificationReport) -> set[Code]:
    return {f.code for f in report.issues()}


def test_a_ledger_that_only_grew_passes_and_reads_only_the_new_events(
    grown: tuple[Station, SignedCheckpoint],
) -> None:
    station, kept = grown
    quick = verify(station, kept, new_only=True)
    full = verify(station, kept, new_only=False)
    assert quick.verdict is Verdict.PASSED, quick.issues()[:3]
    assert quick.from_chain == kept.size
    assert quick.events == full.events - kept.size  # the bodies before it were not read
    assert quick.signatures == full.signatures
    assert (quick.head_hash, quick.last_position) == (full.head_hash, full.last_position)
    assert (quick.batches, quick.stamped, quick.checkpoints) == (
        full.batches,
        full.stamped,
        full.checkpoints,
    )


def test_two_workers_give_the_serial_new_only_report(
    grown: tuple[Station, SignedCheckpoint],
) -> None:
    station, kept = grown
    serial = verify(station, kept, new_only=True)
    for size in (1, 5):
        assert verify(station, kept, new_only=True, workers=2, size=size) == serial, size


def test_an_edited_event_after_the_checkpoint_fails(
    grown: tuple[Station, SignedCheckpoint],
) -> None:
    station, kept = grown
    tamperer = Tamperer(station)
    try:
        position = max(tamperer.positions()) - 2
        event = tamperer.event_at(position)
        tamperer.write_event(position, tamperer.replace(event, actor="X999"))
    finally:
        tamperer.close()
    report = verify(station, kept, new_only=True)
    assert report.verdict is Verdict.FAILED
    assert report.issues()[0].position == position
    assert Code.EVENT_HASH_MISMATCH in codes(report)


def test_a_truncated_ledger_fails(grown: tuple[Station, SignedCheckpoint]) -> None:
    station, kept = grown
    tamperer = Tamperer(station)
    try:
        cut = kept.size - 3
        tamperer.db.run("DELETE FROM {events} WHERE {id} > ?", (cut,))
        tamperer.db.run(f"DELETE FROM {CHAIN_TABLE} WHERE position > ?", (cut,))
        tamperer.db.run("DELETE FROM ledger_batches WHERE last_position > ?", (cut,))
        tamperer.db.run("DELETE FROM ledger_checkpoints")
    finally:
        tamperer.close()
    report = verify(station, kept, new_only=True)
    assert report.verdict is Verdict.FAILED
    assert any("truncated or rolled back" in f.message for f in report.issues())


def test_a_rewritten_chain_row_before_the_checkpoint_fails(
    grown: tuple[Station, SignedCheckpoint],
) -> None:
    """An attacker who edits an old event and rewrites its chain row (and every link after it)
    to match: the leaves no longer give the checkpoint's root."""
    station, kept = grown
    tamperer = Tamperer(station)
    try:
        position = kept.size // 2
        forged = "ab" * 32
        tamperer.db.run(
            f"UPDATE {CHAIN_TABLE} SET event_hash = ? WHERE position = ?", (forged, position)
        )
        tamperer.db.run(
            f"UPDATE {CHAIN_TABLE} SET prev_hash = ? WHERE position = ?", (forged, position + 1)
        )
    finally:
        tamperer.close()
    report = verify(station, kept, new_only=True)
    assert report.verdict is Verdict.FAILED
    assert Code.CHECKPOINT_INCONSISTENT in codes(report), report.issues()[:3]


def test_a_broken_link_before_the_checkpoint_is_named(
    grown: tuple[Station, SignedCheckpoint],
) -> None:
    station, kept = grown
    tamperer = Tamperer(station)
    try:
        position = kept.size // 2
        tamperer.db.run(
            f"UPDATE {CHAIN_TABLE} SET prev_hash = ? WHERE position = ?", ("cd" * 32, position)
        )
    finally:
        tamperer.close()
    report = verify(station, kept, new_only=True)
    assert report.verdict is Verdict.FAILED
    first = report.issues()[0]
    assert (first.code, first.position) == (Code.CHAIN_LINK_MISMATCH, position)


def test_an_old_body_edited_in_place_is_seen_by_since_not_by_new_only(
    grown: tuple[Station, SignedCheckpoint],
) -> None:
    """What the mode gives up, stated: the body of an event before the checkpoint is not read."""
    station, kept = grown
    tamperer = Tamperer(station)
    try:
        position = kept.size // 2
        event = tamperer.event_at(position)
        tamperer.write_event(position, tamperer.replace(event, actor="X999"))
    finally:
        tamperer.close()
    assert verify(station, kept, new_only=True).verdict is Verdict.PASSED
    plain = verify(station, kept, new_only=False)
    assert plain.verdict is Verdict.FAILED
    assert plain.issues()[0].position == position


def test_cli_new_only(cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(cli_env / "home", f"sqlite:///{cli_env / 'ledger.sqlite'}")
    with Station.initialise(settings) as station:
        complete(station)
        station.stamper().flush()
        kept = tmp_path / "cp.json"
        kept.write_text(json.dumps(station.checkpoint().to_json()))
        size = station.store.count_chain()
        complete(station)
        station.stamper().flush()
    capsys.readouterr()
    assert main(["verify", "--new-only"]) == 2
    assert "--new-only needs --since" in capsys.readouterr().err
    assert main(["verify", "--since", str(kept), "--new-only"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "ledger verify: OK" in out
    assert f"the {size} events before it taken from the chain's stored hashes" in out
