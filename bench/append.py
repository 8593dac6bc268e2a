"""Append throughput: our chained stores beside plain eventsourcing, same payload, same run.

    python -m bench.append [--seconds S] [--bulk-events N] [--backend sqlite|postgres|all]

Workloads, each measured for ours and for plain eventsourcing `--repeat` times (median reported):

* ``single save, append path``: one event per `save()` call, one durable transaction each. The
  events are built, hashed and CMS-signed before the timer starts (the canonical hash is made
  with the signature, when the event is built, not by the store), so the figure is what the store
  adds: `LedgerApp._record` collecting the hashes, the chain-head SELECT and the chain-row INSERT
  in the same commit as the event.
* ``single save e2e: hash+CMS sign+save``: the same, but the timer also covers building the event:
  canonical body (RFC 8785) and SHA-256, the actor's CAdES-BES signature, trigger_event. Plain
  eventsourcing builds its twin event (same field values, signature copied as a string) and saves
  it. Not covered on either side: loading the aggregate from the store and rule evaluation.
* ``bulk import``: `--bulk-events` pre-built, pre-signed events in one `save()` call (donations of
  10 events: the registration and 9 exam-sized steps).

Ours and plain run in alternating short slices within each run, so both meet the same fsync
latency. SQLite: two files in a temporary directory, WAL with synchronous=FULL (eventsourcing's
settings). PostgreSQL: `LEDGER_BENCH_PG_DSN` or `LEDGER_TEST_PG_DSN` (default
postgresql://postgres@127.0.0.1:5432/test), two fresh schemas dropped at the end; skipped with a
message when unreachable.

Performance goals live here, never in timed tests: >= 0.8x plain for single saves, >= 0.7x for bulk.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any
from uuid import uuid4

from rich.console import Console
from rich.table import Table

from bench.common import (
    Payload,
    PlainApp,
    PlainDonation,
    Signers,
    StoreEnvs,
    make_payload,
    make_signers,
    median,
    metric_line,
    per_call_us,
    pg_dsn,
    pg_server_info,
    pg_unreachable,
    postgres_envs,
    redacted,
    slug,
    sqlite_envs,
)
from ledger.application import LedgerApp
from ledger.canonical import event_canonical_bytes, sha256_hex
from ledger.donation import COMMON_FIELDS, Donation
from ledger.rules import load_rule_set
from signing.secrets import StationSecrets

SINGLE_GOAL = 0.8
BULK_GOAL = 0.7
EVENTS_PER_DONATION = 10
#: Events built (untimed) before each timed slice of single saves.
SINGLE_CHUNK = 100
#: Timed length of one end-to-end slice.
E2E_SLICE_SECONDS = 0.1
#: Fields every ledger event carries besides its step values and eventsourcing's own (identity,
#: version, topic, time); the plain twin copies them.
COMMON = sorted(
    COMMON_FIELDS - {"originator_id", "originator_version", "originator_topic", "timestamp"}
)


# -- the two sides -------------------------------------------------------------------------------


class _Side:
    """What both sides do with their `register` and `exam`: build events, save, measure."""

    app: Any
    donation: Any  # the aggregate of the single saves

    def register(self) -> Any:
        raise NotImplementedError

    def exam(self, donation: Any) -> None:
        raise NotImplementedError

    def build_single(self, count: int) -> list[Any]:
        for _ in range(count):
            self.exam(self.donation)
        return list(self.donation.collect_events())

    def step(self) -> None:
        self.exam(self.donation)
        self.app.save(self.donation)

    def build_bulk(self, count: int) -> list[Any]:
        events: list[Any] = []
        while len(events) < count:
            donation = self.register()
            for _ in range(min(EVENTS_PER_DONATION, count - len(events)) - 1):
                self.exam(donation)
            events.extend(donation.collect_events())
        return events

    def save(self, *items: Any) -> None:
        self.app.save(*items)

    def state_bytes(self, event: Any) -> int:
        return len(self.app.mapper.to_stored_event(event).state)

    def close(self) -> None:
        self.app.close()


class Ours(_Side):
    """`LedgerApp` on the chained recorder, saving signed `Donation` events."""

    label = "ours"

    def __init__(self, env: dict[str, str], payload: Payload, signers: Signers) -> None:
        self.payload = payload
        self.signers = signers
        self.app = LedgerApp(
            env, rule_set=load_rule_set(), secrets=StationSecrets.generate(), station_id="BENCH"
        )
        self.donation = self.register()
        self.app.save(self.donation)

    def register(self) -> Donation:
        return Donation.register(
            self.signers.clerk,
            uuid4(),
            rule_set="",
            rule_outcomes=(),
            **self.payload.registration,
        )

    def exam(self, donation: Donation) -> None:
        """Build, hash and sign the next general-exam event (no workflow checks: a bench)."""
        donation._record(
            Donation.GeneralExamRecorded,
            self.signers.physician,
            rule_set=self.payload.rule_set_ref,
            rule_outcomes=self.payload.exam_outcomes,
            **self.payload.exam,
        )


class Plain(_Side):
    """eventsourcing's `Application` on its stock recorder, saving the unsigned twin events."""

    label = "plain"

    def __init__(self, env: dict[str, str], payload: Payload, template: Sequence[Any]) -> None:
        # template: a DonorRegistered and a GeneralExamRecorded of ours, to copy the common fields.
        self.payload = payload
        self.registered_common = {name: getattr(template[0], name) for name in COMMON}
        self.exam_common = {name: getattr(template[1], name) for name in COMMON}
        self.app = PlainApp(env)
        self.donation = self.register()
        self.app.save(self.donation)

    def register(self) -> PlainDonation:
        return PlainDonation._create(
            PlainDonation.Registered,
            id=uuid4(),
            **self.registered_common,
            **self.payload.registration,
        )

    def exam(self, donation: PlainDonation) -> None:
        donation.trigger_event(PlainDonation.ExamRecorded, **self.exam_common, **self.payload.exam)


Side = Ours | Plain


# -- measurements ----------------------------------------------------------------------------------
#
# A run alternates short slices of ours and plain (ours first in odd rounds, plain first in even
# ones) until each side has been timed for long enough, so both see the same disk and CPU weather
# (fsync latency on a virtual disk drifts by 2x within seconds). A slice returns (count, seconds).

Slice = Callable[[Side], tuple[int, float]]


def single_append_slice(side: Side) -> tuple[int, float]:
    """Pre-built, pre-signed events (built untimed), saved one per `save()` call."""
    events = side.build_single(SINGLE_CHUNK)
    start = perf_counter()
    for event in events:
        side.save(event)
    return len(events), perf_counter() - start


def single_e2e_slice(side: Side) -> tuple[int, float]:
    """Each save also builds its event (ours: canonical hash and CMS signature too)."""
    saved = 0
    start = now = perf_counter()
    while now - start < E2E_SLICE_SECONDS:
        side.step()
        saved += 1
        now = perf_counter()
    return saved, now - start


def bulk_slice(events_per_save: int) -> Slice:
    def run(side: Side) -> tuple[int, float]:
        events = side.build_bulk(events_per_save)
        start = perf_counter()
        side.save(*events)
        return len(events), perf_counter() - start

    return run


@dataclass(frozen=True)
class Plan:
    """How long one run of a workload lasts: timed seconds per side, and rounds."""

    seconds: float
    min_rounds: int
    max_rounds: int


def one_run(ours: Side, plain: Side, slice_: Slice, plan: Plan) -> tuple[float, float]:
    """(ours rate, plain rate) of one interleaved run."""
    count = {"ours": 0, "plain": 0}
    elapsed = {"ours": 0.0, "plain": 0.0}
    rounds = 0
    while rounds < plan.min_rounds or (
        rounds < plan.max_rounds and min(elapsed.values()) < plan.seconds
    ):
        for side in (ours, plain) if rounds % 2 == 0 else (plain, ours):
            n, t = slice_(side)
            count[side.label] += n
            elapsed[side.label] += t
        rounds += 1
    return count["ours"] / elapsed["ours"], count["plain"] / elapsed["plain"]


@dataclass
class Row:
    backend: str
    workload: str
    unit: str
    goal: float
    ours_runs: list[float]
    plain_runs: list[float]

    @property
    def ours(self) -> float:
        return median(self.ours_runs)

    @property
    def plain(self) -> float:
        return median(self.plain_runs)

    @property
    def ratio(self) -> float:
        return self.ours / self.plain

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal


def compare(
    backend: str,
    workload: str,
    unit: str,
    goal: float,
    sides: tuple[Side, Side],
    slice_: Slice,
    plan: Plan,
    repeat: int,
) -> Row:
    ours, plain = sides
    # Warm-up: tables created, statements prepared, pages cached, code paths hot.
    one_run(ours, plain, slice_, Plan(plan.seconds / 5, 1, plan.max_rounds))
    row = Row(backend, workload, unit, goal, [], [])
    for _ in range(repeat):
        gc.collect()
        ours_rate, plain_rate = one_run(ours, plain, slice_, plan)
        row.ours_runs.append(ours_rate)
        row.plain_runs.append(plain_rate)
    return row


def run_backend(
    envs: StoreEnvs, args: argparse.Namespace, payload: Payload, signers: Signers
) -> list[Row]:
    ours = Ours(envs.ours, payload, signers)
    template = ours.register()
    ours.exam(template)
    plain = Plain(envs.plain, payload, template.collect_events())
    sides: tuple[Side, Side] = (ours, plain)
    seconds, repeat = args.seconds, args.repeat
    try:
        return [
            compare(
                envs.backend,
                "single save, append path",
                "saves/s",
                SINGLE_GOAL,
                sides,
                single_append_slice,
                Plan(seconds, 2, 10_000),
                repeat,
            ),
            compare(
                envs.backend,
                "single save e2e: hash+CMS sign+save",
                "saves/s",
                SINGLE_GOAL,
                sides,
                single_e2e_slice,
                Plan(seconds, 2, 10_000),
                repeat,
            ),
            compare(
                envs.backend,
                f"bulk import, {args.bulk_events:,} events/save",
                "events/s",
                BULK_GOAL,
                sides,
                bulk_slice(args.bulk_events),
                Plan(seconds / 4, 3, 20),
                repeat,
            ),
        ]
    finally:
        ours.close()
        plain.close()


# -- per-event CPU costs, to explain the e2e ratio ----------------------------------------------


def cpu_costs(payload: Payload, signers: Signers, console: Console) -> None:
    """What building one exam event costs on each side, in memory (nothing is written)."""
    memory = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    ours = Ours(memory, payload, signers)
    donation = ours.register()
    ours.exam(donation)
    events = donation.collect_events()
    plain = Plain(memory, payload, events)
    plain_donation = plain.register()
    exam_event = events[1]
    body = event_canonical_bytes(exam_event)

    def build_ours() -> None:
        ours.exam(donation)
        donation.collect_events()

    def build_plain() -> None:
        plain.exam(plain_donation)
        plain_donation.collect_events()

    costs = [
        (
            "canonical body (RFC 8785) + SHA-256",
            per_call_us(lambda: sha256_hex(event_canonical_bytes(exam_event))),
        ),
        (
            "CMS sign (CAdES-BES, EC P-256)",
            per_call_us(lambda: signers.physician.sign(body, exam_event.timestamp)),
        ),
        ("build ours: hash + sign + trigger_event", per_call_us(build_ours)),
        ("build plain twin: trigger_event", per_call_us(build_plain)),
    ]
    ours_bytes = ours.state_bytes(exam_event)
    plain_bytes = plain.state_bytes(plain.build_single(1)[0])
    ours.close()
    plain.close()

    table = Table(title="Per-event CPU cost, in memory (median of 300 calls)")
    table.add_column("what")
    table.add_column("µs/event", justify="right")
    for name, micros in costs:
        table.add_row(name, f"{micros:,.0f}")
    table.add_row("stored state of an exam event: ours / plain", f"{ours_bytes} / {plain_bytes} B")
    console.print(table)


# -- output ------------------------------------------------------------------------------------


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model}); Python {platform.python_version()}; "
        f"SQLite {sqlite3.sqlite_version}; {platform.system()} {platform.release()}"
    )


def report(rows: Sequence[Row], console: Console) -> None:
    if not rows:
        console.print("nothing measured")
        return
    runs = len(rows[0].ours_runs)
    table = Table(title=f"Append throughput: ours vs plain eventsourcing (median of {runs} runs)")
    for name, justify in (
        ("backend", "left"),
        ("workload", "left"),
        ("ours", "right"),
        ("plain eventsourcing", "right"),
        ("ratio", "right"),
        ("goal", "right"),
        ("met?", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row.backend,
            row.workload,
            f"{row.ours:,.0f} {row.unit}",
            f"{row.plain:,.0f} {row.unit}",
            f"{row.ratio:.2f}x",
            f">= {row.goal:.1f}x",
            "yes" if row.met else "[bold red]NO[/]",
        )
    console.print(table)
    for row in rows:
        if not row.met:
            console.print(
                f"[bold red]MISSED[/] {row.backend} / {row.workload}: {row.ratio:.2f}x "
                f"< {row.goal:.1f}x"
                + (
                    " (ours signs every event with CMS and hashes its canonical body; plain "
                    "eventsourcing does neither: see the CPU costs above)"
                    if "e2e" in row.workload
                    else ""
                )
            )
    for row in rows:
        print(
            metric_line(
                f"append_{slug(row.backend)}_{slug(row.workload)}",
                row.ours,
                row.plain,
                anchor_is="plain eventsourcing, same workload, same run",
                unit=row.unit,
                goal=row.goal,
            ),
            flush=True,
        )
    console.print("runs (ours | plain -> ratio):", style="dim")
    for r in rows:
        pairs = ", ".join(
            f"{o:,.0f} | {p:,.0f} -> {o / p:.2f}"
            for o, p in zip(r.ours_runs, r.plain_runs, strict=True)
        )
        console.print(f"  {r.backend} / {r.workload}: {pairs}", style="dim")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.append", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="timed seconds per side per single-save run"
    )
    parser.add_argument("--bulk-events", type=int, default=1000, help="events per bulk save")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.bulk_events < 1 or args.repeat < 1:
        parser.error("--seconds, --bulk-events and --repeat must be positive")

    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(f"machine: {machine()}")
    started = perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-pki-") as tmp:
        signers = make_signers(Path(tmp))
        payload = make_payload()
        cpu_costs(payload, signers, console)
        if args.backend in ("sqlite", "all"):
            with sqlite_envs() as envs:
                rows += run_backend(envs, args, payload, signers)
        if args.backend in ("postgres", "all"):
            dsn = pg_dsn()
            reason = pg_unreachable(dsn)
            if reason is not None:
                console.print(
                    f"[yellow]PostgreSQL skipped[/]: {redacted(dsn)} unreachable ({reason})"
                )
            else:
                console.print(f"PostgreSQL: {pg_server_info(dsn)}")
                with postgres_envs(dsn) as envs:
                    rows += run_backend(envs, args, payload, signers)
    report(rows, console)
    console.print(f"total {perf_counter() - started:.0f} s", style="dim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
