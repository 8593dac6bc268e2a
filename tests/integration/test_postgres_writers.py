"""PostgreSQL: concurrent writer processes do not fork the chain; large saves do not hang."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.registry import SigningCredential
from ledger.stores import ChainReader
from services.station import Station
from tests.conftest import make_settings

WRITERS = 2
DONATIONS_PER_WRITER = 4


def _writer(home: str, db: str, start: Any, index: int) -> None:
    from tests.workflow import complete

    with Station.open(make_settings(Path(home), db)) as station:
        start.wait(timeout=60)
        for _ in range(DONATIONS_PER_WRITER):
            complete(station)


def test_two_writer_processes_append_without_forking_the_chain(
    pg_schema: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    Station.initialise(make_settings(home, pg_schema)).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_writer, args=(str(home), pg_schema, start, i)) for i in range(WRITERS)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0, f"writer exited with {p.exitcode}"
    with Station.open(make_settings(home, pg_schema)) as station:
        recorder = station.app.recorder
        assert isinstance(recorder, ChainReader)
        chain = list(recorder.select_chain(0, 100_000))
        prevs = [link.prev_hash for link in chain]
        assert len(prevs) == len(set(prevs)), "two events claim the same predecessor: a fork"
        sealed = [
            link
            for link, note in zip(
                chain,
                recorder.select_notifications(1, 100_000),
                strict=True,
            )
            if note.topic.endswith("DonationRecordSealed")
        ]
        assert len(sealed) == WRITERS * DONATIONS_PER_WRITER
        report = station.verifier().verify()
        assert report.ok, report.issues()[:3]


def test_a_save_of_several_megabytes_completes(pg_schema: str, tmp_path: Path) -> None:
    """eventsourcing's pipelined insert hangs near 4.5 MB; our recorder must not."""
    with Station.initialise(make_settings(tmp_path / "home", pg_schema)) as station:
        system = station.system
        blob = "x" * 4096
        now = datetime.now(UTC).isoformat()
        credentials = [
            SigningCredential.staff_issued(
                system,
                format(10**12 + i, "x"),
                subject_id=f"STAFF:BULK{i}",
                name="bulk",
                role="collection_nurse",
                not_before=now,
                not_after=now,
                certificate_pem=blob,
            )
            for i in range(2000)
        ]
        done = threading.Event()
        errors: list[BaseException] = []

        def save() -> None:
            try:
                station.app.save(*credentials)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=save, daemon=True)
        thread.start()
        assert done.wait(timeout=120), "a save of about 8 MB did not finish in 120 s"
        assert not errors, errors
        report = station.verifier().verify()
        assert report.ok
        assert report.event_types["StaffCertificateIssued"] >= 2000
