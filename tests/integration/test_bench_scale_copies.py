"""The 10-million-event bench (bench/scale.py) grows its ledgers by hash-consistent copies of
signed template visits. What its figures rest on, checked: the copies' hashes, both chains,
batches and checkpoints verify (``verify --since`` passes, with and without ``--new-only``),
and a full verification rejects them for their signatures only (they are the templates')."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.scale import HashedCopier, templates_of
from ledger.report import Code, Verdict
from services.demo import DemoDay
from services.station import Station
from services.verification import ledger_verifier
from tests.conftest import make_settings


def test_copies_verify_since_a_checkpoint_and_fail_only_on_signatures(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with Station.initialise(settings) as station:
        DemoDay(station, seed=5).run(6)
        station.stamper().flush()
        templates = templates_of(station, station.store.count_chain())
        assert templates
        copier = HashedCopier(itertools.count(10**12))
        recorder: Any = station.app.recorder
        rng = random.Random(1)
        # Interleaved copies, as the bench writes them; under the cap of 100 findings in all.
        for _ in range(2):
            copies = [copier.copy(rng.choice(templates)) for _ in range(2)]
            events, hashes = [], []
            while any(c[0] for c in copies):
                copy = rng.choice([c for c in copies if c[0]])
                events.append(copy[0].pop(0))
                hashes.append(copy[1].pop(0))
            recorder.insert_events(events, event_hashes=hashes)
        station.stamper().flush()
        kept = station.checkpoint()
        DemoDay(station, seed=6).run(2)  # real events after the checkpoint
        station.stamper().flush()
        now = datetime.now(UTC) + timedelta(minutes=5)
        for new_only in (False, True):
            report = ledger_verifier(station, since=kept, now=now, new_only=new_only).verify()
            assert report.verdict is Verdict.PASSED, (new_only, report.issues()[:3])
        full = ledger_verifier(station, now=now).verify()
    assert full.verdict is Verdict.FAILED
    assert len(full.issues()) < 100
    found = {f.code for f in full.issues()}
    assert found == {Code.SIGNATURE_INVALID}, found
