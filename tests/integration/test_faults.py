"""Faults with real processes and real stores (SQLite and PostgreSQL).

kill -9 of a writer at random moments while it appends (and while its stamper cuts batches):
every acknowledged event is there, `ledger verify` passes, and what was pending is stamped on
restart. N kills per backend: ``LEDGER_FAULT_KILLS`` (default below); the counts are printed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from ledger.report import Verdict
from services.station import Station
from services.verification import verify_station
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("LEDGER_FAULT_KILLS", "40"))


@pytest.fixture(scope="module")
def zygote() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fault_writer"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


def _wait_for_new_ack(ack: Path, timeout: float) -> None:
    size = ack.stat().st_size if ack.exists() else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ack.exists() and ack.stat().st_size > size:
            return
        time.sleep(0.005)


def _acknowledged(ack: Path) -> dict[UUID, int]:
    acked: dict[UUID, int] = {}
    if ack.exists():
        for line in ack.read_text().splitlines():
            donation, steps = line.split()
            acked[UUID(donation)] = max(acked.get(UUID(donation), 0), int(steps))
    return acked


def test_kill_9_of_a_writer_loses_nothing_acknowledged(
    zygote: subprocess.Popen[str], backend_db: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    Station.initialise(make_settings(home, backend_db)).close()
    ack = tmp_path / "acks.txt"
    rng = random.Random(int(os.environ.get("LEDGER_FAULT_SEED", "14")))
    assert zygote.stdin is not None and zygote.stdout is not None
    started = time.monotonic()
    for _ in range(KILLS):
        zygote.stdin.write(f"{home}\t{backend_db}\t{ack}\n")
        zygote.stdin.flush()
        pid = int(zygote.stdout.readline())
        if rng.random() < 0.15:  # while it opens the store, loads its keys, starts its stamper
            time.sleep(rng.uniform(0.0, 0.5))
        else:  # once it appends: a random moment among its saves (each ~10-50 ms)
            _wait_for_new_ack(ack, timeout=30.0)
            time.sleep(rng.uniform(0.0, 0.4))
        os.kill(pid, signal.SIGKILL)
        assert _gone(pid), f"writer {pid} survived SIGKILL"
    seconds = time.monotonic() - started
    acked = _acknowledged(ack)
    assert acked, "no writer acknowledged anything: the kill window is too short"

    # restart: open the store as the next command would
    with Station.open(make_settings(home, backend_db)) as station:
        for donation_id, steps in acked.items():
            donation = station.app.donation(donation_id)  # raises if it is not there
            assert donation.version >= steps, (donation_id, donation.version, steps)
        before = verify_station(station, now=datetime.now(UTC))
        assert before.verdict is Verdict.PASSED, before.issues()[:3]
        made = station.stamper().flush()
        after = verify_station(station, now=datetime.now(UTC) + timedelta(days=1))
        assert after.verdict is Verdict.PASSED, after.issues()[:3]
        assert after.pending == 0 and after.stamped == after.events
        print(
            f"\nkill -9 ({backend_db.split(':')[0]}): {KILLS} kills survived in {seconds:.0f} s, "
            f"{len(acked)} donations / {sum(acked.values())} acknowledged saves checked, "
            f"{after.events} events verified, {before.pending} pending at restart stamped in "
            f"{made} batches"
        )
