"""Faults with real processes and real stores (SQLite and PostgreSQL).

kill -9 of a writer at random moments while it appends (and while its stamper cuts batches):
every acknowledged event is there, `ledger verify` passes, and what was pending is stamped on
restart. N kills per backend: ``LEDGER_FAULT_KILLS`` (default below); the counts are printed.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from asn1crypto import tsp

from ledger.events import ConcurrentChange
from ledger.report import Verdict
from services.station import Station
from services.verification import verify_station
from signing.errors import SigningError
from signing.tsa import TimestampAuthority
from tests.conftest import make_settings
from tests.workflow import amend_temperature, complete, number_for, register

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


# -- a TSA that is down, answers garbage, or answers for another imprint ---------------------------


class _BadTsa(ThreadingHTTPServer):
    def __init__(self, mode: str, authority: TimestampAuthority) -> None:
        super().__init__(("127.0.0.1", 0), _BadTsaHandler)
        self.mode = mode
        self.authority = authority
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _BadTsaHandler(BaseHTTPRequestHandler):
    server: _BadTsa

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests += 1
        mode = self.server.mode
        if mode == "down":
            self.send_response(503)
            self.end_headers()
            return
        if mode == "garbage":
            reply = os.urandom(300)
        else:  # a genuine token of the station's own TSA, over another imprint, same nonce
            request = tsp.TimeStampReq.load(body)
            request["message_imprint"]["hashed_message"] = hashlib.sha256(b"another").digest()
            reply = self.server.authority.respond(request.dump(force=True))
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("mode", ["down", "garbage", "wrong-imprint"])
def test_a_bad_tsa_leaves_no_batch_and_the_events_pending(
    mode: str, backend_db: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    settings = make_settings(home, backend_db)
    with Station.initialise(settings) as station:
        authority = station.local_tsa()
    server = _BadTsa(mode, authority)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        bad = settings.model_copy(update={"tsa_urls": server.url, "tsa_timeout_s": 2.0})
        with Station.open(bad) as station:
            complete(station)
            events = verify_station(station).events
            with pytest.raises(SigningError):
                station.stamper().flush()
            assert server.requests >= 1
            assert station.store.last_batch() is None  # nothing half-written
            report = verify_station(station, now=datetime.now(UTC))
            assert report.verdict is Verdict.PASSED, report.issues()[:3]
            assert report.pending == events and report.batches == 0
            with pytest.raises(SigningError):
                station.checkpoint()  # a checkpoint needs a token: none is stored without
            assert verify_station(station).checkpoints == 0
    finally:
        server.shutdown()
        server.server_close()
    with Station.open(settings) as station:  # the TSA is back: everything is stamped
        assert station.stamper().flush() >= 1
        report = verify_station(station, now=datetime.now(UTC) + timedelta(days=1))
        assert report.verdict is Verdict.PASSED and report.pending == 0, report.issues()[:3]


# -- two amendments of the same field at once ---------------------------------------------------


def _amender(home: str, db: str, donation: str, value: float, barrier: Any, out: Any) -> None:
    """Read the record, wait until the other process has read it too, then amend and save."""
    with Station.open(make_settings(Path(home), db)) as station:
        app = station.app
        read = app.donation

        def donation_read_by_both(donation_id: UUID) -> Any:
            record = read(donation_id)
            barrier.wait(timeout=60)  # both hold version N: the saves race for version N+1
            return record

        app.donation = donation_read_by_both  # type: ignore[method-assign]
        try:
            amend_temperature(station, UUID(donation), value)
            out.put(("saved", value))
        except ConcurrentChange as exc:
            out.put(("conflict", str(exc)))


def test_two_amendments_of_one_field_at_once_one_wins_one_conflicts(
    backend_db: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with Station.initialise(make_settings(home, backend_db)) as station:
        donation_id = complete(station)
        version = station.app.donation(donation_id).version
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=_amender, args=(str(home), backend_db, str(donation_id), v, barrier, out)
        )
        for v in (36.7, 36.9)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    results = sorted(out.get(timeout=5) for _ in procs)
    assert [kind for kind, _ in results] == ["conflict", "saved"], results
    assert "nothing written" in str(results[0][1])
    winner = results[1][1]
    with Station.open(make_settings(home, backend_db)) as station:
        donation = station.app.donation(donation_id)
        assert donation.version == version + 1  # exactly one amendment was written
        assert donation.steps["general_exam"]["values"]["temperature_c"] == winner
        report = verify_station(station)
        assert report.verdict is not Verdict.FAILED and not report.issues(), report.issues()[:3]
    print(f"\nconcurrent amendments ({backend_db.split(':')[0]}): 1 saved, 1 conflict")


# -- the PostgreSQL connection dropped in the middle of a save's transaction ---------------------

DROPS = int(os.environ.get("LEDGER_FAULT_DROPS", "12"))


def _schema_of(dsn: str) -> tuple[str, str]:
    base, _, query = dsn.partition("?schema=")
    return base, query


def _lock_chain_and_catch_a_save(admin: Any, schema: str, timeout: float) -> int:
    """In the admin's open transaction, lock the chain table, then wait for one of our backends
    to be blocked on it *inside its save*: it holds the events table lock (its transaction's
    first statement) and its event rows are inserted, its chain rows are not. Its pid."""
    from psycopg.sql import SQL, Identifier

    from ledger.stores import CHAIN_TABLE

    admin.execute(
        SQL("LOCK TABLE {}.{} IN ACCESS EXCLUSIVE MODE").format(
            Identifier(schema), Identifier(CHAIN_TABLE)
        )
    )
    # pg_stat_activity is a snapshot per transaction: watch it from another session
    watcher = psycopg.connect(admin.info.dsn, autocommit=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = watcher.execute(
            "SELECT a.pid FROM pg_stat_activity a WHERE a.wait_event_type = 'Lock' "
            "AND a.state = 'active' AND a.query ILIKE %s AND EXISTS (SELECT 1 FROM pg_locks l "
            "WHERE l.pid = a.pid AND l.granted AND l.mode = 'ExclusiveLock' "
            "AND l.locktype = 'relation')",
            (f"%INSERT INTO%{schema}%{CHAIN_TABLE}%",),  # the test's own schema: only ours
        ).fetchall()
        if rows:
            watcher.close()
            return int(rows[0][0])
        time.sleep(0.005)
    watcher.close()
    raise AssertionError("no save reached its chain insert while the chain table was locked")


def _events_and_links(station: Station, dsn: str) -> tuple[int, int]:
    from psycopg.sql import SQL, Identifier

    from ledger.stores import CHAIN_TABLE

    base, schema = _schema_of(dsn)
    with psycopg.connect(base, autocommit=True) as conn:
        (events,) = conn.execute(
            SQL("SELECT count(*) FROM {}.{}").format(
                Identifier(schema),
                Identifier(station.app.recorder.events_table_name),  # type: ignore[attr-defined]
            )
        ).fetchone() or (0,)
        (links,) = conn.execute(
            SQL("SELECT count(*) FROM {}.{}").format(Identifier(schema), Identifier(CHAIN_TABLE))
        ).fetchone() or (0,)
    return int(events), int(links)


def test_a_connection_dropped_mid_transaction_leaves_all_or_nothing(
    pg_schema: str, tmp_path: Path
) -> None:
    """DROPS times: a save is caught inside its transaction (events inserted, chain rows not)
    and its server session is terminated; the transaction is rolled back, the recorder retries
    on a new connection, the save is acknowledged once. Afterwards every acknowledged donation is
    there once, every event has its chain link (and its signature: verify), the chain verifies."""
    base, schema = _schema_of(pg_schema)
    with Station.initialise(make_settings(tmp_path / "home", pg_schema)) as station:
        events_before, links_before = _events_and_links(station, pg_schema)
        assert events_before == links_before
        register(station)  # one save undisturbed: how many events a registration writes
        per_save = _events_and_links(station, pg_schema)[0] - events_before
        events_before += per_save
        acked: list[UUID] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def writer() -> None:
            try:
                while not stop.is_set():
                    acked.append(register(station))
            except BaseException as exc:  # reported below
                errors.append(exc)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        drops = 0
        with psycopg.connect(base) as admin:
            for _ in range(DROPS):
                done = len(acked)
                victim = _lock_chain_and_catch_a_save(admin, schema, timeout=30)
                with psycopg.connect(base, autocommit=True) as killer:
                    (ended,) = killer.execute(
                        "SELECT pg_terminate_backend(%s)", (victim,)
                    ).fetchone() or (False,)
                assert ended
                drops += 1
                admin.commit()  # release the chain table: the retried save goes through
                deadline = time.monotonic() + 30
                while len(acked) <= done and not errors and time.monotonic() < deadline:
                    time.sleep(0.005)
                assert not errors, errors
                assert len(acked) > done, "the save whose session was dropped never completed"
        stop.set()
        thread.join(timeout=30)
        assert not errors, errors
        events, links = _events_and_links(station, pg_schema)
        assert events == links, "an event without its chain link: a half-written save"
        # each acknowledged save once, whole; nothing of a dropped attempt
        assert events - events_before == per_save * len(acked)
        for donation_id in acked:
            assert station.app.donation(donation_id).version == 1
        report = verify_station(station, now=datetime.now(UTC))
        assert report.verdict is Verdict.PASSED, report.issues()[:3]
        assert report.events == events
        register(station)  # the writer's next save succeeds
    print(
        f"\nconnection dropped mid-transaction (postgres): {drops} drops survived, "
        f"{len(acked)} acknowledged saves checked, {report.events} events verified"
    )


def test_a_save_dropped_more_often_than_retried_fails_loudly_and_leaves_nothing(
    pg_schema: str, tmp_path: Path
) -> None:
    """The server ends the session of one save on every attempt: the caller gets the error
    (not a silent loss), nothing of the save is stored, and the next save succeeds."""
    from eventsourcing.persistence import OperationalError

    base, schema = _schema_of(pg_schema)
    with Station.initialise(make_settings(tmp_path / "home", pg_schema)) as station:
        events_before, _ = _events_and_links(station, pg_schema)
        outcome: list[object] = []

        def writer() -> None:
            try:
                outcome.append(register(station))
            except BaseException as exc:  # reported below
                outcome.append(exc)

        thread = threading.Thread(target=writer, daemon=True)
        drops = 0
        with psycopg.connect(base) as admin:
            thread.start()
            while thread.is_alive() and drops < 20:
                try:
                    victim = _lock_chain_and_catch_a_save(admin, schema, timeout=5)
                except AssertionError:
                    break  # the writer gave up
                with psycopg.connect(base, autocommit=True) as killer:
                    killer.execute("SELECT pg_terminate_backend(%s)", (victim,))
                drops += 1
            admin.commit()
        thread.join(timeout=30)
        assert len(outcome) == 1 and isinstance(outcome[0], OperationalError), outcome
        assert "terminat" in str(outcome[0])
        assert _events_and_links(station, pg_schema) == (
            events_before,
            events_before,
        )  # nothing stored
        register(station)
        report = verify_station(station, now=datetime.now(UTC))
        assert report.verdict is Verdict.PASSED, report.issues()[:3]
    print(
        f"\na save dropped {drops} times: refused with {type(outcome[0]).__name__}, nothing stored"
    )


# -- a full disk while writing the forms (PDF) or an archive package ------------------------------

REQUIRE_MOUNT_ENV = "LEDGER_TEST_REQUIRE_MOUNT"


def _tmpfs_or_skip() -> None:
    """A small tmpfs needs root and `unshare -m` (a private mount namespace: nothing stays
    mounted); skip visibly without them, fail when CI requires it."""
    reason = ""
    if shutil.which("unshare") is None:
        reason = "no unshare (util-linux)"
    else:
        probe = subprocess.run(
            ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            reason = f"cannot mount a tmpfs in a private namespace: {probe.stderr.strip()}"
    if reason:
        if os.environ.get(REQUIRE_MOUNT_ENV) == "1":
            pytest.fail(f"{REQUIRE_MOUNT_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)


def _ledger_on_a_full_disk(
    env: dict[str, str], size_kib: int, args: list[str], out: Path, kept: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``ledger ARGS`` (which name *out*) with *out* a tmpfs of *size_kib* KiB, in its own
    mount namespace, then copy what the command left there to *kept*."""
    out.mkdir()
    kept.mkdir()
    ledger = str(Path(sys.executable).with_name("ledger"))
    script = (
        'mount -t tmpfs -o size="$1"k tmpfs "$2" || exit 99; shift 2; '
        '"$@"; rc=$?; cp -a "$OUT/." "$KEPT/"; exit $rc'
    )
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(size_kib), str(out), ledger, *args],
        env={**env, "OUT": str(out), "KEPT": str(kept)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _assert_one_line_disk_full(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 74, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("ledger: error: no space left on the device"), lines
    assert "Traceback" not in result.stderr


def _station_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LEDGER_DB": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "LEDGER_HOME": str(tmp_path / "home"),
        "LEDGER_PASSPHRASE": "test-only-passphrase",
        "LEDGER_STATION_ID": "TEST-01",
    }


def test_a_full_disk_while_writing_the_forms_leaves_no_half_pdf(tmp_path: Path) -> None:
    """The forms are written on a tmpfs with room for the first PDF and half the second: the
    command stops in one line (exit 74, no traceback), the PDF written before is whole (it
    verifies) and nothing else is there, not even a temporary file."""
    _tmpfs_or_skip()
    env = _station_env(tmp_path)
    with Station.initialise(make_settings(tmp_path / "home", env["LEDGER_DB"])) as station:
        number = number_for(complete(station))
    ledger = str(Path(sys.executable).with_name("ledger"))
    roomy = tmp_path / "roomy"
    made = subprocess.run(
        [ledger, "forms", number, "--out", str(roomy)], env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    pdfs = sorted(roomy.glob("*.pdf"), key=lambda p: p.stat().st_mtime_ns)
    assert len(pdfs) >= 2
    first, second = pdfs[0].stat().st_size, pdfs[1].stat().st_size
    size_kib = (first + second // 2) // 1024 + 1
    full = tmp_path / "full"
    result = _ledger_on_a_full_disk(
        env, size_kib, ["forms", number, "--out", str(full)], full, tmp_path / "kept"
    )
    _assert_one_line_disk_full(result)
    left = sorted(p.name for p in (tmp_path / "kept").iterdir())
    assert left == [pdfs[0].name], left  # the whole first PDF, no half second, no temp file
    check = subprocess.run(
        [ledger, "verify-pdf", str(tmp_path / "kept" / pdfs[0].name)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout[-2000:]
    print(
        f"\nfull disk while writing forms: tmpfs {size_kib} KiB, PDFs of {first} and {second} "
        f"bytes; exit {result.returncode}: {result.stderr.strip()}"
    )


def test_a_full_disk_while_writing_an_archive_package_leaves_nothing(tmp_path: Path) -> None:
    """`ledger archive` into a tmpfs too small for the package: one line (exit 74), no package
    and no staging folder left, the ledger records no archiving; with room, the same command
    archives the donation."""
    _tmpfs_or_skip()
    from tests.integration.test_archive import TODAY
    from tests.integration.test_archive import _complete as complete_archivable

    env = _station_env(tmp_path)
    with Station.initialise(make_settings(tmp_path / "home", env["LEDGER_DB"])) as station:
        complete_archivable(station)
        events = verify_station(station).events
    args = ["archive", "--from", str(TODAY), "--to", str(TODAY), "--workers", "1", "--zip"]
    full = tmp_path / "full"
    result = _ledger_on_a_full_disk(env, 192, [*args, "--out", str(full)], full, tmp_path / "kept")
    _assert_one_line_disk_full(result)
    assert list((tmp_path / "kept").iterdir()) == []  # no package, no .partial, no zip
    with Station.open(make_settings(tmp_path / "home", env["LEDGER_DB"])) as station:
        report = verify_station(station)
        assert report.verdict is not Verdict.FAILED, report.issues()[:3]
        assert report.events == events  # nothing recorded of the failed archiving
    ledger = str(Path(sys.executable).with_name("ledger"))
    roomy = tmp_path / "roomy"
    made = subprocess.run(
        [ledger, *args, "--out", str(roomy)], env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr[-2000:]
    packages = [p for p in roomy.iterdir() if (p / "bagit.txt").is_file()]
    assert len(packages) == 1 and (roomy / f"{packages[0].name}.zip").is_file()
    print(
        f"\nfull disk while writing an archive package: tmpfs 192 KiB; exit {result.returncode}: "
        f"{result.stderr.strip()}; with room: {packages[0].name}"
    )


# -- several stations, several writer processes each, on one PostgreSQL server -------------------

STATIONS = ("NORD-01", "SUED-02", "WEST-03")
WRITERS_PER_STATION = 2
SAVES_PER_WRITER = int(os.environ.get("LEDGER_FAULT_STATION_SAVES", "10"))


def _station_settings(home: Path, db: str, station_id: str) -> Any:
    from pydantic import SecretStr

    from services.settings import Settings

    return Settings(
        db=db,
        home=home,
        passphrase=SecretStr("test-only-passphrase"),
        station_id=station_id,
        station_name=f"Station {station_id}",
    )


def _station_writer(home: str, db: str, station_id: str, ack: str, start: Any) -> None:
    """One writer process of a station: registrations and consents, each save acknowledged
    (a line appended to *ack*) once it returned."""
    with Station.open(_station_settings(Path(home), db, station_id)) as station:
        assert station.app.station().station_id == station_id
        start.wait(timeout=120)
        fd = os.open(ack, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for _ in range(SAVES_PER_WRITER // 2):
                donation_id = register(station)
                os.write(fd, f"{donation_id} 1\n".encode())
                donor = station.donor_signer(donation_id, fingerprint_verified=True)
                station.app.sign_consent(
                    donation_id,
                    donor,
                    answers={"recent_illness": False},
                    consent=True,
                    fingerprint_verified=True,
                    donor_certificate_serial=donor.certificate_serial,
                )
                os.write(fd, f"{donation_id} 2\n".encode())
        finally:
            os.close(fd)


@pytest.fixture
def pg_schemas() -> Iterator[list[str]]:
    """One schema per station on the test server (the design: a station's ledger is one
    database or schema), dropped afterwards."""
    import uuid

    from psycopg.sql import SQL, Identifier

    from tests.conftest import pg_dsn_or_skip

    dsn = pg_dsn_or_skip()
    schemas = [f"t_{uuid.uuid4().hex[:12]}" for _ in STATIONS]
    yield [f"{dsn}?schema={s}" for s in schemas]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))


def test_several_stations_and_writers_on_one_postgresql_no_fork_no_lost_save(
    pg_schemas: list[str], tmp_path: Path
) -> None:
    """Three stations (each its own LEDGER_STATION_ID, keys and schema) on one server, two writer
    processes each, all writing at once. Then per station: every acknowledged save is there, no
    two events claim one predecessor, the ledger verifies and a checkpoint over it verifies."""
    from ledger.stores import ChainReader

    homes = {sid: tmp_path / sid for sid in STATIONS}
    dbs = dict(zip(STATIONS, pg_schemas, strict=True))
    for sid in STATIONS:
        Station.initialise(_station_settings(homes[sid], dbs[sid], sid)).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = []
    for sid in STATIONS:
        for w in range(WRITERS_PER_STATION):
            ack = str(tmp_path / f"{sid}-{w}.acks")
            args = (str(homes[sid]), dbs[sid], sid, ack, start)
            procs.append(ctx.Process(target=_station_writer, args=args))
    for p in procs:
        p.start()
    started = time.monotonic()
    start.set()
    for p in procs:
        p.join(timeout=600)
        assert p.exitcode == 0, f"writer exited with {p.exitcode}"
    seconds = time.monotonic() - started
    counts = []
    for sid in STATIONS:
        acked: dict[UUID, int] = {}
        for w in range(WRITERS_PER_STATION):
            for donation_id, steps in _acknowledged(tmp_path / f"{sid}-{w}.acks").items():
                acked[donation_id] = max(acked.get(donation_id, 0), steps)
        saves = sum(acked.values())
        assert saves == WRITERS_PER_STATION * SAVES_PER_WRITER, (sid, saves)
        with Station.open(_station_settings(homes[sid], dbs[sid], sid)) as station:
            assert station.app.station().station_id == sid
            for donation_id, steps in acked.items():
                donation = station.app.donation(donation_id)  # in this station's ledger
                assert donation.version >= steps and donation.station_id == sid
            recorder = station.app.recorder
            assert isinstance(recorder, ChainReader)
            chain = list(recorder.select_chain(0, 1_000_000))
            prevs = [link.prev_hash for link in chain]
            assert len(prevs) == len(set(prevs)), f"{sid}: two events claim one predecessor"
            assert [link.position for link in chain] == sorted(link.position for link in chain)
            station.stamper().flush()
            checkpoint = station.checkpoint()
            report = verify_station(station, now=datetime.now(UTC) + timedelta(days=1))
            assert report.verdict is Verdict.PASSED, (sid, report.issues()[:3])
            assert report.pending == 0 and checkpoint.size == report.events == len(chain)
            counts.append(f"{sid} {report.events} events / {len(acked)} donations")
    print(
        f"\nseveral stations on one PostgreSQL: {len(STATIONS)} stations x "
        f"{WRITERS_PER_STATION} writer processes x {SAVES_PER_WRITER} saves in {seconds:.0f} s; "
        f"no fork, no lost save; {'; '.join(counts)}"
    )


def test_a_second_station_is_refused_on_a_store_that_holds_another_stations_ledger(
    backend_db: str, tmp_path: Path
) -> None:
    """One chain per store: `ledger init` of another station on a store that already holds a
    ledger is refused before anything is written (before, it wrote its staff certificates into
    the first station's chain, whose verification then FAILED on the foreign CA)."""
    from ledger.events import WorkflowError

    with Station.initialise(_station_settings(tmp_path / "a", backend_db, "NORD-01")) as a:
        register(a)
        events = verify_station(a).events
    with pytest.raises(WorkflowError, match="own database or schema"):
        Station.initialise(_station_settings(tmp_path / "b", backend_db, "SUED-02"))
    assert not (tmp_path / "b" / "pki").exists()
    with Station.open(_station_settings(tmp_path / "a", backend_db, "NORD-01")) as a:
        report = verify_station(a)
        assert report.verdict is not Verdict.FAILED and report.events == events
