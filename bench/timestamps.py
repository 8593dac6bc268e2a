"""Trusted time: appends beside a running stamper, TSA requests, and full verification speed.

    python -m bench.timestamps [--seconds S] [--repeat R] [--requests-events N]
                               [--verify-events N] [--part appends|requests|verify|all]

Three figures, each printed beside its anchor measured in the same run (medians of `--repeat`):

* ``single-event appends, batched timestamps``: `LedgerApp` saving pre-built, pre-signed exam
  events one per `save()` (as `bench.append`'s append path) while a `Stamper` with the default
  `BatchPolicy` runs in a background thread against the station's own RFC 3161 TSA over HTTP
  (`signing.tsa.TsaServer` on 127.0.0.1 and `signing.timestamps.HttpTimeStamper`, as
  `services.station` wires them, in this process). Anchor: the same appends to a second ledger with
  no stamper. The two alternate in slices (as in `bench.append`), each on its own SQLite file in
  one temporary directory; the stamper thread runs only during its side's slices and is joined
  before the slice's clock stops, so every batch it cuts, stamps and commits is charged to it.
  Goal: >= 0.9x.
* ``TSA requests per 10,000 events``: a fresh ledger, the stamper running throughout, N events
  appended one per save, then the stamper stopped and flushed; `Stamper.requests` counted.
  Anchor: one request per event (what per-event stamping costs); the policy's floor
  (ceil(N / max_events)) is printed beside it.
* ``full verification``: a ledger of about `--verify-events` events made by the demo day
  (`services.demo.DemoDay`, seed 1: donor certificates issued at signing time, co-signatures,
  deferrals, amendments) on SQLite with the stamper running, then flushed and checkpointed.
  Timed: `LedgerVerifier.verify()` (canonical hashes, global and aggregate chains, CMS
  signatures, certificate paths and CRL, rule outcomes, batch tokens, checkpoint), events/s, a
  fresh verifier each run, on one core (`os.sched_setaffinity(0, {0})`). Anchor: raw ECDSA P-256
  verification (`cryptography`, `public_key.verify(sig, data, ECDSA(SHA256()))` over 500-byte
  messages), per second, on the same core, alternating with the verifier runs. Goal: >= 0.75x.

Performance goals live here, never in timed tests.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from bench.append import Ours, machine
from bench.common import (
    Payload,
    Signers,
    make_payload,
    make_station_pki,
    median,
    metric_line,
    slug,
)
from ledger.stores import EvidenceStore, persistence_env
from ledger.timestamping import BatchPolicy, Stamper, StamperThread
from ledger.verify import VerificationReport
from services.demo import DemoDay
from services.settings import Settings
from services.station import Station
from signing.pki import StationPKI
from signing.timestamps import HttpTimeStamper
from signing.tsa import TimestampAuthority, TsaServer

APPEND_GOAL = 0.9
VERIFY_GOAL = 0.75
#: Events built (untimed) before each timed slice of appends: about 40 ms of saves. Short
#: slices cancel the fsync drift of the virtual disk (2x within seconds); the stamper thread is
#: started for each slice of its side (a poll at once, then every 50 ms, as in a steady run) and
#: cuts a full batch every few slices.
APPEND_CHUNK = 100
ECDSA_MESSAGES = 64
ECDSA_MESSAGE_BYTES = 500


@dataclass
class Figure:
    what: str
    unit: str
    ours_runs: list[float]
    anchor_label: str
    anchor_runs: list[float]
    goal: float | None  # ours / anchor must be at least this; None: no goal in the issue
    notes: list[str] = field(default_factory=list)

    @property
    def ours(self) -> float:
        return median(self.ours_runs)

    @property
    def anchor(self) -> float:
        return median(self.anchor_runs)

    @property
    def ratio(self) -> float:
        """The median of the per-run ratios: each run's two figures saw the same weather (the
        disk's fsync latency drifts 2x between runs, which a ratio of medians would mix in)."""
        return median([o / a for o, a in zip(self.ours_runs, self.anchor_runs, strict=True)])

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.ratio >= self.goal


# -- the local TSA, as services.station wires it ---------------------------------------------------


@contextmanager
def local_tsa(pki: StationPKI) -> Iterator[HttpTimeStamper]:
    pki.issue_tsa("Bench TSA", datetime.now(UTC))
    server = TsaServer(TimestampAuthority(pki.load_tsa()))
    server.start()
    try:
        yield HttpTimeStamper([server.url], [pki.root_certificate])
    finally:
        server.stop()


def sqlite_ours(directory: Path, name: str, payload: Payload, signers: Signers) -> Ours:
    return Ours(persistence_env(f"sqlite:///{directory / name}.sqlite"), payload, signers)


def store_of(side: Ours) -> EvidenceStore:
    recorder = side.app.recorder
    assert isinstance(recorder, EvidenceStore)
    return recorder


# -- 1. appends with and without a stamper ------------------------------------------------------


def appends_slice(side: Ours, stamper: Stamper | None) -> tuple[int, float]:
    """APPEND_CHUNK pre-signed events saved one per call; the stamper (if any) runs meanwhile."""
    events = side.build_single(APPEND_CHUNK)
    thread = StamperThread(stamper) if stamper is not None else None
    start = perf_counter()
    if thread is not None:
        thread.start()
    for event in events:
        side.save(event)
    if thread is not None:
        thread.stop(flush=False)  # joins: a batch in flight is finished inside the clock
    return len(events), perf_counter() - start


def measure_appends(
    directory: Path,
    payload: Payload,
    signers: Signers,
    timestamper: HttpTimeStamper,
    args: argparse.Namespace,
) -> Figure:
    stamped = sqlite_ours(directory, "stamped", payload, signers)
    plain = sqlite_ours(directory, "unstamped", payload, signers)
    stamper = Stamper(store_of(stamped), timestamper, BatchPolicy())
    figure = Figure(
        "single-event appends, batched timestamps (SQLite)",
        "saves/s",
        [],
        "same appends, no stamper",
        [],
        APPEND_GOAL,
    )
    try:

        def run(seconds: float, min_rounds: int) -> tuple[float, float]:
            count = {"stamped": 0, "plain": 0}
            elapsed = {"stamped": 0.0, "plain": 0.0}
            rounds = 0
            while rounds < min_rounds or min(elapsed.values()) < seconds:
                order = ("stamped", "plain") if rounds % 2 == 0 else ("plain", "stamped")
                for label in order:
                    n, t = (
                        appends_slice(stamped, stamper)
                        if label == "stamped"
                        else appends_slice(plain, None)
                    )
                    count[label] += n
                    elapsed[label] += t
                rounds += 1
            return (
                count["stamped"] / elapsed["stamped"],
                count["plain"] / elapsed["plain"],
            )

        run(args.seconds / 4, 2)  # warm-up: tables, page cache, TSA path cache, code paths
        requests_before = stamper.requests
        for _ in range(args.repeat):
            gc.collect()
            ours, anchor = run(args.seconds, 2)
            figure.ours_runs.append(ours)
            figure.anchor_runs.append(anchor)
        stamper.flush()
        batches = store_of(stamped).select_batches()
        stamped_events = sum(b.size for b in batches)
        figure.notes.append(
            f"stamped side: {stamped_events:,} events in {len(batches)} batches "
            f"({stamper.requests - requests_before} TSA requests in the timed runs), "
            f"{stamper.failures} TSA failures; all {store_of(stamped).count_chain():,} "
            "events stamped after the final flush"
            if stamped_events == store_of(stamped).count_chain()
            else f"[bold red]stamped {stamped_events} of {store_of(stamped).count_chain()}[/]"
        )
    finally:
        stamped.close()
        plain.close()
    return figure


# -- 2. TSA requests per N events --------------------------------------------------------------


def measure_requests(
    directory: Path,
    payload: Payload,
    signers: Signers,
    timestamper: HttpTimeStamper,
    args: argparse.Namespace,
) -> Figure:
    side = sqlite_ours(directory, "requests", payload, signers)
    policy = BatchPolicy()
    try:
        events = side.build_single(args.requests_events - store_of(side).count_chain())
        stamper = Stamper(store_of(side), timestamper, policy)
        thread = StamperThread(stamper).start()
        start = perf_counter()
        for event in events:
            side.save(event)
        appended = perf_counter() - start
        thread.stop(flush=True)
        store = store_of(side)
        total = store.count_chain()
        batches = store.select_batches()
        sizes = sorted(b.size for b in batches)
        assert sum(sizes) == total, f"{sum(sizes)} of {total} events stamped"
    finally:
        side.close()
    per_10k = stamper.requests * 10_000 / total
    floor = math.ceil(total / policy.max_events)
    return Figure(
        f"TSA requests per 10,000 events ({total:,} appended)",
        "requests",
        [per_10k],
        "one request per event",
        [10_000.0],
        None,
        [
            f"requests: {stamper.requests} for {total:,} events ({per_10k:.1f} per 10,000); "
            f"the policy's floor is ceil({total:,} / {policy.max_events}) = {floor}",
            f"batch sizes: min {sizes[0]}, median {median([float(s) for s in sizes]):.0f}, "
            f"max {sizes[-1]}; appends ran at {len(events) / appended:,.0f} saves/s "
            f"with the stamper (policy: {policy.max_events} events or {policy.max_delay_ms} ms)",
        ],
    )


# -- 3. full verification against raw ECDSA ------------------------------------------------------


def build_ledger(directory: Path, events: int) -> Station:
    """A station on SQLite under *directory* with about *events* demo-day events, stamped
    (batches as the stamper cuts them) and checkpointed, as `ledger demo` leaves it."""
    settings = Settings(
        db=f"sqlite:///{directory / 'ledger.sqlite'}",
        home=directory / "home",
        passphrase=SecretStr("bench-only-" + secrets.token_hex(8)),
        station_id="BENCH-01",
        tsa_urls="",
        checkpoint_interval_s=0,
    )
    station = Station.initialise(settings)
    day = DemoDay(station, seed=1)
    stamping = StamperThread(station.stamper()).start()
    try:
        while station.store.count_chain() < events:
            day.one()
    finally:
        stamping.stop(flush=True)
    station.checkpoint()
    return station


@dataclass
class EcdsaBench:
    key: ec.EllipticCurvePublicKey
    items: list[tuple[bytes, bytes]]

    @classmethod
    def make(cls) -> EcdsaBench:
        private = ec.generate_private_key(ec.SECP256R1())
        items = []
        for _ in range(ECDSA_MESSAGES):
            message = os.urandom(ECDSA_MESSAGE_BYTES)
            items.append((private.sign(message, ec.ECDSA(hashes.SHA256())), message))
        return cls(private.public_key(), items)

    def rate(self, seconds: float) -> float:
        key, items, algorithm = self.key, self.items, ec.ECDSA(hashes.SHA256())
        count = 0
        start = now = perf_counter()
        while now - start < seconds:
            for signature, message in items:
                key.verify(signature, message, algorithm)
            count += len(items)
            now = perf_counter()
        return count / (now - start)


def verify_rate(station: Station) -> tuple[float, VerificationReport]:
    verifier = station.verifier()
    gc.collect()
    start = perf_counter()
    report = verifier.verify()
    elapsed = perf_counter() - start
    if not report.ok:
        first = report.first_problem
        raise RuntimeError(f"the bench ledger does not verify: {first and first.describe()}")
    return report.events / elapsed, report


@contextmanager
def one_core() -> Iterator[int]:
    """Pin this thread to CPU 0 (restored on exit); yields the CPU."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        yield 0
    finally:
        os.sched_setaffinity(0, previous)


def measure_verify(directory: Path, args: argparse.Namespace, console: Console) -> Figure:
    started = perf_counter()
    station = build_ledger(directory, args.verify_events)
    console.print(
        f"verification ledger: {station.store.count_chain():,} events built in "
        f"{perf_counter() - started:.0f} s",
        style="dim",
    )
    figure = Figure(
        "full verification, 1 core (events/s)",
        "events/s",
        [],
        "raw ECDSA P-256 verify",
        [],
        VERIFY_GOAL,
    )
    ecdsa = EcdsaBench.make()
    with station, one_core() as cpu:
        first, report = verify_rate(station)  # cold: certificate parses not yet cached
        for round_ in range(args.repeat):
            if round_ % 2 == 0:
                figure.anchor_runs.append(ecdsa.rate(args.seconds))
                figure.ours_runs.append(verify_rate(station)[0])
            else:
                figure.ours_runs.append(verify_rate(station)[0])
                figure.anchor_runs.append(ecdsa.rate(args.seconds))
    figure.notes += [
        f"pinned to CPU {cpu}; first (cold) run {first:,.0f} events/s, not in the median",
        f"verified: {report.events:,} events, {report.signatures:,} signatures by "
        f"{report.signers} signers, {report.aggregates:,} records, {report.batches} batch "
        f"tokens, {report.checkpoints} checkpoint(s), {report.pending} pending",
        "per event at the median: "
        f"{1e6 / figure.ours:.0f} µs verified, {1e6 / figure.anchor:.0f} µs per raw verify",
    ]
    return figure


# -- output --------------------------------------------------------------------------------------


def report(figures: Sequence[Figure], repeat: int, console: Console) -> None:
    table = Table(
        title=f"Trusted time (medians of {repeat} runs; ratio: median of the per-run ratios)"
    )
    for name, justify in (
        ("figure", "left"),
        ("ours", "right"),
        ("anchor (same run)", "right"),
        ("ratio", "right"),
        ("goal", "right"),
        ("met?", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for f in figures:
        met = f.met
        table.add_row(
            f.what,
            f"{f.ours:,.0f} {f.unit}",
            f"{f.anchor:,.0f} {f.unit} ({f.anchor_label})",
            f"{f.ratio:.3f}x" if f.ratio < 0.1 else f"{f.ratio:.2f}x",
            "-" if f.goal is None else f">= {f.goal:.2f}x",
            "n/a" if met is None else ("yes" if met else "[bold red]NO[/]"),
        )
    console.print(table)
    for f in figures:
        print(
            metric_line(
                f"timestamps_{slug(f.what.split(' (')[0])}",
                f.ours,
                f.anchor,
                anchor_is=f"{f.anchor_label}, same run",
                unit=f.unit,
                goal=f.goal,
            ),
            flush=True,
        )
    for f in figures:
        if f.met is False:
            console.print(f"[bold red]MISSED[/] {f.what}: {f.ratio:.2f}x < {f.goal}x")
        for note in f.notes:
            console.print(f"  {f.what.split(' (')[0]}: {note}", style="dim")
        if len(f.ours_runs) > 1:
            pairs = ", ".join(
                f"{o:,.0f} | {a:,.0f} -> {o / a:.2f}"
                for o, a in zip(f.ours_runs, f.anchor_runs, strict=True)
            )
            console.print(f"  runs (ours | anchor -> ratio): {pairs}", style="dim")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timestamps", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="timed seconds per side per append run, and per raw-ECDSA run",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--requests-events", type=int, default=10_000, help="events appended to count requests"
    )
    parser.add_argument(
        "--verify-events", type=int, default=5_000, help="size of the verified ledger"
    )
    parser.add_argument("--part", choices=("appends", "requests", "verify", "all"), default="all")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.repeat < 1 or args.requests_events < 2 or args.verify_events < 1:
        parser.error("--seconds, --repeat, --requests-events and --verify-events must be positive")

    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(f"machine: {machine()}")
    started = perf_counter()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-time-") as tmp:
        directory = Path(tmp)
        if args.part in ("appends", "requests", "all"):
            pki, signers = make_station_pki(directory)
            payload = make_payload()
            with local_tsa(pki) as timestamper:
                console.print(f"TSA: {timestamper.urls[0]} (HTTP, this process)", style="dim")
                if args.part in ("appends", "all"):
                    figures.append(measure_appends(directory, payload, signers, timestamper, args))
                if args.part in ("requests", "all"):
                    figures.append(measure_requests(directory, payload, signers, timestamper, args))
        if args.part in ("verify", "all"):
            figures.append(measure_verify(directory / "verify", args, console))
    report(figures, args.repeat, console)
    console.print(f"total {perf_counter() - started:.0f} s", style="dim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
