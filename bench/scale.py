"""Ten million events on PostgreSQL: several stations, a streaming-replication standby.

    python -m bench.scale [--events N] [--marks 1000000] [--stations 3] [--lookups K]
                          [--since-events K] [--dir DIR] [--port P] [--keep]

What runs (issue 12, part 4):

1. **Two clusters of our own.** ``initdb`` a primary in ``--dir`` (port ``--port``, fsync on,
   ``synchronous_commit`` on, ``wal_level=replica``), then a standby made from it with
   ``pg_basebackup -R`` (port ``--port + 1``, hot standby, streaming). The server binaries come
   from ``pg_config --bindir`` (``LEDGER_BENCH_PG_BIN`` overrides); run as root, the clusters
   belong to the ``postgres`` user. Nothing touches the test server.
2. **Stations.** ``--stations`` stations, each a schema of the primary's ``postgres`` database
   with its own PKI, chain, batches and checkpoints (``Station.initialise``), each running the
   demo day for ``--templates`` donations through the full application (built, canonically
   hashed, CMS-signed, saved one durable transaction an event).
3. **Bulk import.** Each station grows, in its own writer process (all at once), by copies of
   its template visits saved with the chained recorder's ``insert_events`` (the bulk path:
   ``--chunk`` events a transaction, chain rows included). A copy gets a fresh donation id,
   donor, donation number and certificate serial, and *is hash-consistent*: every copied event's
   canonical body is the template's with the identifiers substituted (they are fixed-width ASCII,
   so RFC 8785's key order and escaping do not change), its hash is recomputed, and the
   ``prev_hash`` and co-signed hashes that name earlier events of the visit are replaced by their
   new hashes. So hashes, both chains, batch roots and checkpoints verify; the actor signatures
   and rule outcomes are the template's (signatures over the template bodies) and a *full*
   ``ledger verify`` rejects the copies. ``verify --since`` does not check signatures before its
   checkpoint, which is what is measured here; the events after the checkpoint are real.
4. **At each mark** (``--marks`` and ``--events``, total events over all stations): every station
   is stamped (RFC 3161 batches from its local TSA over HTTP) and checkpointed; station 1 then
   records ``--since-events`` real demo events, stamped; its five read models catch up (time and
   rate); donor-record look-ups on the primary and on the standby (p50/p99); the standby's replay
   catch-up; ``verify --since`` the mark's checkpoint on the primary and on the standby (time,
   verdict, and whether the two reports agree); bytes on disk per event.
   During the bulk import the standby's replay lag is sampled every second.

Every figure is printed; the JSON lines give ours, an anchor where one exists and the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from pydantic import SecretStr
from rich.console import Console

from bench.common import metric_line
from bench.rebuild import Visit, _visits, percentile
from ledger.canonical import event_canonical_bytes
from ledger.checkpoints import SignedCheckpoint
from ledger.registry import credential_id_for, donor_id_for, number_index_id_for
from ledger.report import Verdict
from ledger.stores import persistence_env
from ledger.verify import VerificationReport
from projections import queries
from projections.runner import Projector, Views
from services.demo import DemoDay
from services.settings import Settings
from services.station import Station
from services.verification import verify_station

console = Console(highlight=False, width=120)
GOAL_P99_MS = 20.0
PASSPHRASE = "bench-only-scale"


# -- clusters -----------------------------------------------------------------------------------


def _pg_bin() -> Path:
    if os.environ.get("LEDGER_BENCH_PG_BIN"):
        return Path(os.environ["LEDGER_BENCH_PG_BIN"])
    for config in [
        shutil.which("pg_config"),
        *sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_config"), reverse=True),
    ]:
        if config:
            out = subprocess.run([str(config), "--bindir"], capture_output=True, text=True)
            if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
                return Path(out.stdout.strip())
    raise SystemExit("no PostgreSQL server binaries (initdb): set LEDGER_BENCH_PG_BIN")


@dataclass
class Cluster:
    """A PostgreSQL cluster of the bench's own, in *data*, on 127.0.0.1:*port*."""

    data: Path
    port: int
    bindir: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and the server refuse root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", f"{self.data}.log", "-w", "-t", "120",
            "-o", f"-p {self.port} -k {self.data.parent}", "start",
        )  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True)


def make_clusters(base: Path, port: int) -> tuple[Cluster, Cluster]:
    bindir = _pg_bin()
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary = Cluster(base / "primary", port, bindir)
    standby = Cluster(base / "standby", port + 1, bindir)
    primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    with (primary.data / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# bench.scale\nlisten_addresses = '127.0.0.1'\nwal_level = replica\n"
            "max_wal_senders = 4\nfsync = on\nsynchronous_commit = on\n"
            "shared_buffers = 2GB\nmax_wal_size = 8GB\nwal_keep_size = 2GB\n"
        )
    primary.start()
    standby.run(
        "pg_basebackup", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
        "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
    )  # fmt: skip
    standby.start()
    return primary, standby


# -- hash-consistent copies ----------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A template visit and the canonical body of each of its events."""

    visit: Visit
    bodies: tuple[bytes, ...]


def templates_of(station: Station, upto: int) -> list[Template]:
    """The template visits among the station's first *upto* events (its signed demo day)."""
    _, visits = _visits(station, upto)
    app = station.app
    out = []
    for visit in visits:
        bodies = []
        for stored, recorded in zip(visit.events, visit.hashes, strict=True):
            event = app.mapper.to_domain_event(stored)
            body = event_canonical_bytes(event)
            assert hashlib.sha256(body).hexdigest() == recorded, "template hash"
            bodies.append(body)
        out.append(Template(visit, tuple(bodies)))
    return out


@dataclass
class HashedCopier:
    """Copies of template visits with new identifiers and recomputed hashes (see the module's
    docstring): substitutions are applied to the stored state and to the canonical body alike."""

    numbers: Iterator[int]
    donor_ids: list[uuid.UUID] = field(default_factory=list)

    def copy(self, template: Template) -> tuple[list[StoredEvent], list[str]]:
        visit = template.visit
        ref = secrets.token_hex(len(visit.donor_ref) // 2)
        donation_id = uuid.uuid4()
        number = f"{next(self.numbers):0{len(visit.donation_no)}d}" if visit.donation_no else ""
        serial = secrets.token_hex(len(visit.serial) // 2) if visit.serial else ""
        assert len(number) == len(visit.donation_no), "fixed-width donation numbers"
        donor_id = donor_id_for(ref)
        self.donor_ids.append(donor_id)
        ids = {donor_id_for(visit.donor_ref): donor_id, visit.donation_id: donation_id}
        swaps = [(visit.donor_ref, ref)]
        if number:
            ids[number_index_id_for(visit.donation_no)] = number_index_id_for(number)
            swaps.append((visit.donation_no, number))
        if serial:
            ids[credential_id_for(visit.serial)] = credential_id_for(serial)
            swaps.append((visit.serial, serial))
        swaps.extend((str(old), str(new)) for old, new in ids.items())
        encoded = [(old.encode(), new.encode()) for old, new in swaps]
        events, hashes = [], []
        for stored, body, old_hash in zip(visit.events, template.bodies, visit.hashes, strict=True):
            state = stored.state
            for old_bytes, new_bytes in encoded:
                body = body.replace(old_bytes, new_bytes)
                state = state.replace(old_bytes, new_bytes)
            new_hash = hashlib.sha256(body).hexdigest()
            pair = (old_hash.encode(), new_hash.encode())
            state = state.replace(*pair)
            encoded.append(pair)  # later events of the visit name this one by its hash
            originator = uuid.UUID(str(stored.originator_id))
            events.append(
                StoredEvent(
                    originator_id=ids.get(originator, originator),
                    originator_version=stored.originator_version,
                    topic=stored.topic,
                    state=state,
                )
            )
            hashes.append(new_hash)
        return events, hashes


# -- stations and writers ------------------------------------------------------------------------


def station_settings(home: Path, dsn: str, index: int) -> Settings:
    return Settings(
        db=f"{dsn}?schema=station_{index}",
        home=home / f"station-{index}",
        passphrase=SecretStr(PASSPHRASE),
        station_id=f"BENCH-{index:02d}",
        tsa_urls="",
        checkpoint_interval_s=0,
        batch_max_events=4096,
    )


def _writer(
    home: str,
    dsn: str,
    index: int,
    target: int,
    chunk: int,
    in_flight: int,
    seed: int,
    template_events: int,
) -> dict[str, Any]:
    """In a writer process: grow station *index* to *target* events by hashed copies."""
    settings = station_settings(Path(home), dsn, index)
    with Station.open(settings) as station:
        templates = templates_of(station, template_events)
        recorder: Any = station.app.recorder
        have = int(recorder.max_notification_id() or 0)
        rng = random.Random(seed)
        # Donation numbers of the copies: a range of their own per station and mark.
        copier = HashedCopier(iter(range(10**12 + seed * 10**9, 10**13)))
        active: list[tuple[list[StoredEvent], list[str]]] = []
        pending: list[StoredEvent] = []
        hashes: list[str] = []
        started = time.perf_counter()
        written = 0
        while have < target or active:
            while have + len(pending) + sum(len(a[0]) for a in active) < target and (
                len(active) < in_flight
            ):
                active.append(copier.copy(rng.choice(templates)))
            if not active:
                break
            i = rng.randrange(len(active))
            events, event_hashes = active[i]
            pending.append(events.pop(0))
            hashes.append(event_hashes.pop(0))
            if not events:
                active.pop(i)
            if len(pending) == chunk:
                recorder.insert_events(pending, event_hashes=hashes)
                have += len(pending)
                written += len(pending)
                pending, hashes = [], []
        if pending:
            recorder.insert_events(pending, event_hashes=hashes)
            written += len(pending)
        seconds = time.perf_counter() - started
        sample = random.Random(seed).sample(copier.donor_ids, min(20_000, len(copier.donor_ids)))
        return {"events": written, "seconds": seconds, "donors": [str(d) for d in sample]}


class LagSampler(threading.Thread):
    """The standby's replay lag, read from the primary's ``pg_stat_replication`` every second."""

    def __init__(self, primary: Cluster) -> None:
        super().__init__(daemon=True)
        self.primary = primary
        self.stop_event = threading.Event()
        self.bytes: list[int] = []
        self.seconds: list[float] = []

    def run(self) -> None:
        with self.primary.connect() as conn:
            while not self.stop_event.wait(1.0):
                row = conn.execute(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), "
                    "COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) FROM pg_stat_replication"
                ).fetchone()
                if row is not None and row[0] is not None:
                    self.bytes.append(int(row[0]))
                    self.seconds.append(float(row[1]))


def wait_for_replay(primary: Cluster, standby: Cluster, timeout: float = 3600) -> float:
    """Seconds until the standby has replayed the primary's current WAL position."""
    started = time.perf_counter()
    with primary.connect() as p, standby.connect() as s:
        row = p.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        while time.perf_counter() - started < timeout:
            lag = s.execute(
                "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", (target,)
            ).fetchone()
            if lag is not None and lag[0] is not None and float(lag[0]) <= 0:
                return time.perf_counter() - started
            time.sleep(0.05)
    raise SystemExit("the standby did not catch up within the timeout")


# -- measuring ----------------------------------------------------------------------------------


def stamp_and_checkpoint(station: Station) -> tuple[float, SignedCheckpoint]:
    started = time.perf_counter()
    station.stamper().flush()
    checkpoint = station.checkpoint()
    return time.perf_counter() - started, checkpoint


def append_real(station: Station, events: int, seed: int) -> int:
    """Real demo donations (signed by their actors) until *events* more are in the chain."""
    start = station.store.count_chain()
    while station.store.count_chain() - start < events:
        DemoDay(station, seed=seed).run(10)  # booked, registered, ..., sealed
    station.stamper().flush()
    return station.store.count_chain() - start


def lookups(dsn: str, donors: Sequence[str], count: int) -> list[float]:
    rng = random.Random(5)
    picks = [rng.choice(donors) for _ in range(count)]
    with closing(Views.open(persistence_env(dsn))) as views:
        for donor in picks[:50]:
            queries.donor_record(views, donor)
        samples = []
        for donor in picks:
            started = time.perf_counter()
            record = queries.donor_record(views, donor)
            samples.append((time.perf_counter() - started) * 1000)
            assert record is not None and record["donor_id"] == donor
    return sorted(samples)


def schema_bytes(primary: Cluster, schema: str) -> int:
    with primary.connect() as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def table_sizes(primary: Cluster, schema: str) -> dict[str, int]:
    """Bytes of each table of *schema* (indexes and TOAST included), largest first."""
    with primary.connect() as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 2 DESC LIMIT 12",
            (schema,),
        ).fetchall()
    return {str(name): int(size) for name, size in rows}


def _same_report(a: VerificationReport, b: VerificationReport) -> bool:
    ca, cb = a.counts(), b.counts()
    for counts in (ca, cb):
        counts.pop("oldest_pending_seconds", None)
    return a.verdict == b.verdict and ca == cb and a.issues() == b.issues()


@dataclass
class Mark:
    total: int
    figures: dict[str, Any] = field(default_factory=dict)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000, help="events, all stations")
    parser.add_argument("--marks", default="1000000", help="earlier sizes to measure at")
    parser.add_argument("--stations", type=int, default=3)
    parser.add_argument("--templates", type=int, default=40)
    parser.add_argument("--chunk", type=int, default=2000, help="events per bulk transaction")
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--since-events", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="verification workers")
    parser.add_argument("--dir", type=Path, default=None, help="clusters and homes (temporary)")
    parser.add_argument("--port", type=int, default=55432)
    parser.add_argument("--keep", action="store_true", help="leave the clusters running")
    parser.add_argument(
        "--standby-until",
        type=int,
        default=10**12,
        help="stop and remove the standby after the mark at this size (disk space)",
    )
    args = parser.parse_args(argv)
    marks = sorted({int(m) for m in args.marks.split(",") if m.strip()} | {args.events})
    base = args.dir or Path(tempfile.mkdtemp(prefix="ledger-bench-scale-", dir="/var/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # the clusters' owner must reach them
    primary, standby = make_clusters(base / "pg", args.port)
    console.print(f"clusters: primary {primary.dsn}, standby {standby.dsn} (in {base})")
    try:
        run(args, marks, base, primary, standby)
    finally:
        if not args.keep:
            standby.stop()
            primary.stop()
            if args.dir is None:
                shutil.rmtree(base, ignore_errors=True)
    return 0


def run(
    args: argparse.Namespace, marks: list[int], base: Path, primary: Cluster, standby: Cluster
) -> None:
    home = base / "homes"
    stations = []
    started = time.perf_counter()
    for index in range(1, args.stations + 1):
        station = Station.initialise(station_settings(home, primary.dsn, index))
        DemoDay(station, seed=10 + index).run(args.templates)
        station.stamper().flush()
        stations.append(station)
    template_events = [s.store.count_chain() for s in stations]
    console.print(
        f"{args.stations} stations set up with {args.templates} signed demo donations each in "
        f"{time.perf_counter() - started:.0f} s"
    )
    donors: list[str] = []
    results: list[Mark] = []
    ctx = multiprocessing.get_context("spawn")
    try:
        for round_index, mark in enumerate(marks):
            counts = [s.store.count_chain() for s in stations]
            per_station = [max(c, mark // args.stations) for c in counts]
            sampler = LagSampler(primary)
            sampler.start()
            started = time.perf_counter()
            jobs = [
                (str(home), primary.dsn, i + 1, per_station[i], args.chunk, args.in_flight,
                 round_index * 100 + i + 1, template_events[i])
                for i in range(args.stations)
            ]  # fmt: skip
            with ProcessPoolExecutor(len(jobs), mp_context=ctx) as pool:
                written = [f.result() for f in [pool.submit(_writer, *job) for job in jobs]]
            grown = time.perf_counter() - started
            sampler.stop_event.set()
            sampler.join()
            donors.extend(written[0]["donors"])
            new = sum(w["events"] for w in written)
            mark_figures = measure(args, stations, primary, standby, donors)
            total = sum(s.store.count_chain() for s in stations)
            mark_figures.update(
                bulk_events=new,
                bulk_seconds=round(grown, 1),
                bulk_events_per_s=round(new / grown),
                lag_bytes_max=max(sampler.bytes, default=0),
                lag_bytes_median=sorted(sampler.bytes)[len(sampler.bytes) // 2]
                if sampler.bytes
                else 0,
                lag_s_max=round(max(sampler.seconds, default=0.0), 2),
                lag_s_median=round(sorted(sampler.seconds)[len(sampler.seconds) // 2], 3)
                if sampler.seconds
                else 0.0,
            )
            results.append(Mark(total, mark_figures))
            if total >= args.standby_until and (standby.data / "postmaster.pid").exists():
                standby.stop()  # two copies of ten million events do not fit this disk
                shutil.rmtree(standby.data, ignore_errors=True)
                console.print(f"standby stopped and removed after {total:,} events")
            console.print(f"[bold]{total:,} events[/bold] {json.dumps(mark_figures)}")
    finally:
        for station in stations:
            station.close()
    report(results)


def measure(
    args: argparse.Namespace,
    stations: list[Station],
    primary: Cluster,
    standby: Cluster,
    donors: list[str],
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    stamp_seconds = []
    checkpoints = []
    for station in stations:
        seconds, checkpoint = stamp_and_checkpoint(station)
        stamp_seconds.append(seconds)
        checkpoints.append(checkpoint)
    figures["stamp_and_checkpoint_s"] = [round(s, 1) for s in stamp_seconds]
    one = stations[0]
    figures["station1_events_at_checkpoint"] = checkpoints[0].size
    appended = append_real(one, args.since_events, seed=len(donors))
    figures["real_events_after_checkpoint"] = appended
    # Read models of station 1: caught up from where they were.
    with closing(Views.open(persistence_env(one.settings.db))) as views:
        projector = Projector(one.app.recorder, one.app.mapper, views, batch_size=5000)
        started = time.perf_counter()
        caught = projector.catch_up()
        seconds = time.perf_counter() - started
    figures["views_caught_up_events"] = caught
    figures["views_catch_up_s"] = round(seconds, 1)
    figures["views_events_per_s"] = round(caught / seconds) if seconds else None
    samples = lookups(one.settings.db, donors, args.lookups)
    figures["lookup_primary_p50_ms"] = round(percentile(samples, 50), 3)
    figures["lookup_primary_p99_ms"] = round(percentile(samples, 99), 3)
    if not (standby.data / "postmaster.pid").exists():
        figures["standby"] = "stopped (disk: see --standby-until)"
        return _finish(args, figures, stations, primary, one, checkpoints[0], None)
    figures["standby_catch_up_s"] = round(wait_for_replay(primary, standby), 2)
    standby_db = one.settings.db.replace(f":{primary.port}/", f":{standby.port}/")
    samples = lookups(standby_db, donors, args.lookups)
    figures["lookup_standby_p50_ms"] = round(percentile(samples, 50), 3)
    figures["lookup_standby_p99_ms"] = round(percentile(samples, 99), 3)
    return _finish(args, figures, stations, primary, one, checkpoints[0], standby_db)


def _finish(
    args: argparse.Namespace,
    figures: dict[str, Any],
    stations: list[Station],
    primary: Cluster,
    one: Station,
    checkpoint: SignedCheckpoint,
    standby_db: str | None,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    started = time.perf_counter()
    on_primary = verify_station(one, since=checkpoint, workers=args.workers, now=now)
    figures["verify_since_primary_s"] = round(time.perf_counter() - started, 1)
    figures["verify_since_verdict"] = str(on_primary.verdict)
    if on_primary.verdict != Verdict.PASSED:
        figures["verify_since_issues"] = [str(i) for i in on_primary.issues()[:3]]
    started = time.perf_counter()
    new_only = verify_station(one, since=checkpoint, workers=args.workers, now=now, new_only=True)
    figures["verify_new_only_s"] = round(time.perf_counter() - started, 2)
    figures["verify_new_only_verdict"] = str(new_only.verdict)
    figures["verify_new_only_from_chain"] = new_only.from_chain
    if standby_db is not None:
        replica_settings = one.settings.model_copy(update={"db": standby_db})
        with Station.open(replica_settings) as replica:
            started = time.perf_counter()
            on_standby = verify_station(replica, since=checkpoint, workers=args.workers, now=now)
            figures["verify_since_standby_s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            quick = verify_station(
                replica, since=checkpoint, workers=args.workers, now=now, new_only=True
            )
            figures["verify_new_only_standby_s"] = round(time.perf_counter() - started, 2)
            figures["verify_new_only_standby_agrees"] = _same_report(new_only, quick)
        figures["verify_standby_agrees"] = _same_report(on_primary, on_standby)
    events = [s.store.count_chain() for s in stations]
    figures["events_per_station"] = events
    # Stations 2.. keep no read models: their schemas are the ledger (events, chain, batches,
    # checkpoints; booking and user tables are a few kB).
    others = range(1, len(stations)) if len(stations) > 1 else range(1)
    ledger_bytes = sum(schema_bytes(primary, f"station_{i + 1}") for i in others)
    figures["ledger_bytes_per_event"] = round(ledger_bytes / sum(events[i] for i in others))
    figures["station1_tables"] = table_sizes(primary, "station_1")
    figures["station1_bytes_with_views_per_event"] = round(
        schema_bytes(primary, "station_1") / events[0]
    )
    with primary.connect() as conn:
        row = conn.execute("SELECT pg_database_size('postgres')").fetchone()
    figures["database_bytes"] = int(row[0]) if row else 0
    return figures


def report(results: list[Mark]) -> None:
    for mark in results:
        f = mark.figures
        print(
            metric_line(
                "scale_donor_lookup_p99_ms",
                f["lookup_primary_p99_ms"],
                GOAL_P99_MS,
                anchor_is="goal (no anchor measured)",
                events=mark.total,
                p50_ms=f["lookup_primary_p50_ms"],
                standby_p99_ms=f.get("lookup_standby_p99_ms"),
            ),
            flush=True,
        )
        print(
            metric_line(
                "scale_verify_since_s",
                f["verify_since_primary_s"],
                f.get("verify_since_standby_s", 0.0),
                anchor_is="the same verification on the streaming standby (0: not run)",
                events=mark.total,
                station1_events=f["events_per_station"][0],
                new_events=f["real_events_after_checkpoint"],
                verdict=f["verify_since_verdict"],
                standby_agrees=f.get("verify_standby_agrees"),
            ),
            flush=True,
        )
        print(
            metric_line(
                "scale_verify_new_only_s",
                f["verify_new_only_s"],
                f["verify_since_primary_s"],
                anchor_is="verify --since the same checkpoint, bodies before it re-hashed",
                events=mark.total,
                station1_events=f["events_per_station"][0],
                new_events=f["real_events_after_checkpoint"],
                verdict=f["verify_new_only_verdict"],
            ),
            flush=True,
        )
        print(
            json.dumps({"metric": "scale_figures", "events": mark.total, **f}, ensure_ascii=False),
            flush=True,
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = {
            key: round(last.figures[key] / first.figures[key], 2)
            for key in (
                "lookup_primary_p99_ms",
                "lookup_standby_p99_ms",
                "verify_since_primary_s",
                "verify_new_only_s",
                "ledger_bytes_per_event",
                "bulk_events_per_s",
                "views_events_per_s",
            )
            if isinstance(first.figures.get(key), int | float)
            and first.figures[key]
            and isinstance(last.figures.get(key), int | float)
        }
        console.print(
            f"growth from {first.total:,} to {last.total:,} events (last / first): {growth}"
        )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
