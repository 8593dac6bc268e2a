"""Trusted time over HTTP: batches, tokens openssl accepts, outage safety, checkpoints."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from api.cli import main
from ledger.checkpoints import SignedCheckpoint
from ledger.merkle import leaf_hash, root_from_inclusion_proof
from ledger.stores import BATCH_TABLE, CHAIN_TABLE
from ledger.timestamping import StamperThread, inclusion_evidence
from services.station import Station
from signing.tsa import TsaServer
from tests.workflow import complete


def _positions(station: Station) -> list[int]:
    return [n.id for n in station.app.recorder.select_notifications(1, 100_000)]


def test_every_event_has_a_token_and_a_path_to_its_batch_root(sqlite_station: Station) -> None:
    complete(sqlite_station)
    complete(sqlite_station)
    assert sqlite_station.stamper().flush() >= 1
    for position in _positions(sqlite_station):
        evidence = inclusion_evidence(sqlite_station.store, position)
        assert evidence is not None, f"position {position} has no timestamp"
        link = next(
            link
            for link in sqlite_station.store.select_chain(position - 1, 1)
            if link.position == position
        )
        root = root_from_inclusion_proof(
            evidence.index,
            evidence.batch.size,
            leaf_hash(bytes.fromhex(link.event_hash)),
            list(evidence.path),
        )
        assert root.hex() == evidence.batch.root
    report = sqlite_station.verifier().verify()
    assert report.ok, report.issues()[:3]
    assert report.pending == 0 and report.stamped == report.events


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_ts_accepts_an_exported_batch_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_DB", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LEDGER_PASSPHRASE", "test-only-passphrase")
    assert main(["demo", "--donations", "3", "--seed", "5"]) == 0
    out = tmp_path / "export"
    assert main(["export-event", "20", "--out", str(out)]) == 0
    meta = json.loads((out / "evidence.json").read_text())
    assert meta["trusted_time"]["status"] == "stamped"
    root = (out / "batch_root.hex").read_text().strip()
    command = [
        "openssl",
        "ts",
        "-verify",
        "-digest",
        root,
        "-in",
        "token.tsr",
        "-token_in",
        "-CAfile",
        "chain.pem",
    ]
    result = subprocess.run(command, cwd=out, capture_output=True, text=True)
    assert result.returncode == 0 and "Verification: OK" in result.stdout, result.stderr
    # The documented recomputation: the exported path leads from the event hash to the root.
    node = hashlib.sha256(b"\x00" + hashlib.sha256((out / "event.json").read_bytes()).digest())
    computed = root_from_inclusion_proof(
        meta["trusted_time"]["leaf_index"],
        meta["trusted_time"]["batch_size"],
        node.digest(),
        [bytes.fromhex(h) for h in meta["trusted_time"]["inclusion_path"]],
    )
    assert computed.hex() == root
    # And the README's own snippet, run as a newcomer would, in the export directory.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    ran = subprocess.run(["python3", "-c", snippet], cwd=out, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    wrong = subprocess.run(
        [*command[:3], "0" * 64, *command[4:]], cwd=out, capture_output=True, text=True
    )
    assert wrong.returncode != 0


def test_appends_survive_a_tsa_outage_and_are_stamped_on_recovery(
    sqlite_station: Station,
) -> None:
    tsa = TsaServer(sqlite_station.local_tsa())
    tsa.start()
    port = int(tsa.url.split(":")[2].split("/")[0])
    sqlite_station.settings = sqlite_station.settings.model_copy(
        update={"tsa_urls": tsa.url, "tsa_timeout_s": 1.0, "batch_max_delay_ms": 0}
    )
    stamper = sqlite_station.stamper()
    thread = StamperThread(stamper).start()
    complete(sqlite_station)
    tsa.stop()  # the TSA goes away mid-stream
    before = len(_positions(sqlite_station))
    complete(sqlite_station)  # appends still succeed
    assert len(_positions(sqlite_station)) > before
    report = sqlite_station.verifier().verify()
    assert report.ok and report.pending > 0
    restarted = TsaServer(sqlite_station.local_tsa(), port=port)
    restarted.start()
    try:
        thread.stop(flush=True)
        report = sqlite_station.verifier().verify()
        assert report.ok, report.issues()[:3]
        assert report.pending == 0
        assert report.stamped == report.events == len(_positions(sqlite_station))
        assert stamper.failures >= 1
    finally:
        restarted.stop()


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy a live SQLite database (WAL included) with SQLite's backup API."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def _checkpoint_file(station: Station, path: Path) -> Path:
    path.write_text(json.dumps(station.checkpoint().to_json()))
    return path


def test_verify_since_a_checkpoint_accepts_a_ledger_that_only_grew(
    sqlite_station: Station, tmp_path: Path
) -> None:
    complete(sqlite_station)
    kept = SignedCheckpoint.from_json(
        json.loads(_checkpoint_file(sqlite_station, tmp_path / "cp.json").read_text())
    )
    complete(sqlite_station)
    sqlite_station.stamper().flush()
    report = sqlite_station.verifier(since=kept).verify()
    assert report.ok, report.issues()[:3]
    assert report.since_size == kept.size


def test_truncated_ledger_fails_verify_since(sqlite_station: Station, tmp_path: Path) -> None:
    complete(sqlite_station)
    complete(sqlite_station)
    kept = SignedCheckpoint.from_json(
        json.loads(_checkpoint_file(sqlite_station, tmp_path / "cp.json").read_text())
    )
    db = sqlite3.connect(sqlite_station.settings.db.removeprefix("sqlite:///"))
    last = max(_positions(sqlite_station))
    with db:
        db.execute("DELETE FROM stored_events WHERE rowid > ?", (last - 3,))
        db.execute(f"DELETE FROM {CHAIN_TABLE} WHERE position > ?", (last - 3,))
        db.execute(f"DELETE FROM {BATCH_TABLE} WHERE last_position > ?", (last - 3,))
        db.execute("DELETE FROM ledger_checkpoints")
    db.close()
    report = sqlite_station.verifier(since=kept).verify()
    assert not report.ok
    assert any("truncated or rolled back" in f.message for f in report.issues())


def test_rolled_back_and_forked_ledger_fails_verify_since(
    sqlite_station: Station, tmp_path: Path
) -> None:
    db_path = Path(sqlite_station.settings.db.removeprefix("sqlite:///"))
    complete(sqlite_station)
    sqlite_station.stamper().flush()
    backup = tmp_path / "backup.sqlite"
    _sqlite_copy(db_path, backup)
    complete(sqlite_station)
    kept = SignedCheckpoint.from_json(
        json.loads(_checkpoint_file(sqlite_station, tmp_path / "cp.json").read_text())
    )
    sqlite_station.close()
    _sqlite_copy(backup, db_path)  # restore yesterday's backup ...
    with Station.open(sqlite_station.settings) as station:
        for _ in range(3):  # ... and write a different history past the kept size
            complete(station)
        station.stamper().flush()
        report = station.verifier(since=kept).verify()
        assert not report.ok
        assert any("history was rewritten" in f.message for f in report.issues())


def test_a_token_moved_to_another_batch_fails(sqlite_station: Station) -> None:
    sqlite_station.settings = sqlite_station.settings.model_copy(update={"batch_max_events": 8})
    complete(sqlite_station)
    assert sqlite_station.stamper().flush() >= 2
    db = sqlite3.connect(sqlite_station.settings.db.removeprefix("sqlite:///"))
    with db:
        tokens = db.execute(f"SELECT first_seq, token FROM {BATCH_TABLE} ORDER BY first_seq")
        (_first, token_a), (second, _) = list(tokens)[:2]
        db.execute(f"UPDATE {BATCH_TABLE} SET token = ? WHERE first_seq = ?", (token_a, second))
    db.close()
    report = sqlite_station.verifier().verify()
    assert not report.ok
    assert "timestamp token does not verify" in report.issues()[0].message


def test_per_event_mode_stamps_each_signature_value(sqlite_station: Station) -> None:
    complete(sqlite_station)
    sqlite_station.app.change_station_setting(
        sqlite_station.signer("A001"), "timestamp_mode", "per_event", "CAdES-T for this station"
    )
    stamper = sqlite_station.stamper()
    stamper.flush()  # first sight of the mode: from here on
    complete(sqlite_station)
    stamper.flush()
    report = sqlite_station.verifier().verify()
    assert report.ok, report.issues()[:3]
    after = [p for p in _positions(sqlite_station)]
    tokens = sqlite_station.store.select_event_timestamps()
    assert len(tokens) >= 15  # every event of the second donation
    assert report.signature_timestamps == len(tokens)
    assert max(tokens) == max(after)
    # A token moved to another event no longer matches that event's signature value.
    first, second = sorted(tokens)[:2]
    db = sqlite3.connect(sqlite_station.settings.db.removeprefix("sqlite:///"))
    with db:
        db.execute(
            "UPDATE ledger_event_timestamps SET token = ? WHERE position = ?",
            (tokens[first][0], second),
        )
    db.close()
    report = sqlite_station.verifier().verify()
    assert not report.ok
    assert report.issues()[0].position == second
    assert "signature timestamp does not verify" in report.issues()[0].message


def test_a_running_stamper_issues_periodic_checkpoints(sqlite_station: Station) -> None:
    sqlite_station.settings = sqlite_station.settings.model_copy(
        update={"checkpoint_interval_s": 0.05, "batch_max_delay_ms": 0}
    )
    thread = StamperThread(sqlite_station.stamper()).start()
    complete(sqlite_station)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stored = sqlite_station.store.select_checkpoints()
        if stored and stored[-1].size == sqlite_station.store.count_chain():
            break
        time.sleep(0.05)
    thread.stop(flush=True)
    stored = sqlite_station.store.select_checkpoints()
    assert stored and stored[-1].size == sqlite_station.store.count_chain()
    report = sqlite_station.verifier().verify()
    assert report.ok and report.checkpoints == len(stored)


def test_verify_since_a_checkpoint_taken_after_per_event_tokens_passes(
    sqlite_station: Station, tmp_path: Path
) -> None:
    """Events before the checkpoint are not signature-checked by ``--since``; their per-event
    tokens must not then be reported invalid for want of a verified signature value."""
    complete(sqlite_station)
    sqlite_station.app.change_station_setting(
        sqlite_station.signer("A001"), "timestamp_mode", "per_event", "CAdES-T for this station"
    )
    stamper = sqlite_station.stamper()
    stamper.flush()
    complete(sqlite_station)
    stamper.flush()
    tokens_before = set(sqlite_station.store.select_event_timestamps())
    kept = SignedCheckpoint.from_json(
        json.loads(_checkpoint_file(sqlite_station, tmp_path / "cp.json").read_text())
    )
    complete(sqlite_station)
    stamper.flush()
    assert tokens_before and min(tokens_before) <= kept.size  # tokens fall before the checkpoint
    report = sqlite_station.verifier(since=kept).verify()
    assert report.ok, report.issues()[:3]
    assert report.since_size == kept.size
    # A token after the checkpoint that is moved onto another new event is still caught.
    tokens = sqlite_station.store.select_event_timestamps()
    new = sorted(p for p in tokens if p not in tokens_before)
    db = sqlite3.connect(sqlite_station.settings.db.removeprefix("sqlite:///"))
    with db:
        db.execute(
            "UPDATE ledger_event_timestamps SET token = ? WHERE position = ?",
            (tokens[new[0]][0], new[1]),
        )
    db.close()
    report = sqlite_station.verifier(since=kept).verify()
    assert not report.ok
    assert report.issues()[0].position == new[1]
