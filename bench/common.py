"""Shared parts of the benchmarks: payloads, a run-time test PKI, a plain twin aggregate, stores.

"Ours" saves `ledger.donation.Donation` events through `LedgerApp` and the chained recorders.
"Plain" saves a plain eventsourcing `Aggregate` whose events carry the same field values (the
evidence fields included, as ordinary strings), through eventsourcing's stock persistence modules,
so that both sides store states of (almost) the same size.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import statistics
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from ledger.application import required_slots
from ledger.donation import Role, Step
from ledger.identity import age_on
from ledger.rules import RuleSet, load_rule_set, load_station_parameters
from ledger.signer import CredentialSigner
from ledger.stores import ensure_postgres_schema, persistence_env, postgres_admin_connection
from signing.pki import StationPKI

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_DSN_VARIABLES = ("LEDGER_BENCH_PG_DSN", "LEDGER_TEST_PG_DSN")


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def metric_line(metric: str, ours: float, anchor: float, **extra: Any) -> str:
    """The one JSON line a bench prints per metric (issue 12): ``{"metric", "ours", "anchor",
    "ratio"}`` plus whatever ``extra`` names (units, sizes). ``anchor`` is measured in the same run
    unless ``extra`` says otherwise (``"anchor_is": "goal"``)."""
    return json.dumps(
        {
            "metric": metric,
            "ours": round(ours, 3 if abs(ours) < 100 else 1),
            "anchor": round(anchor, 3 if abs(anchor) < 100 else 1),
            "ratio": round(ours / anchor, 3) if anchor else None,
            **extra,
        },
        ensure_ascii=False,
    )


def slug(text: str) -> str:
    """``"all five read models"`` -> ``all_five_read_models``: a metric name's part."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# -- payload ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """Field values of a registration and of a general-exam step, as the demo day records them."""

    rule_set_ref: str
    registration: Mapping[str, Any]
    exam: Mapping[str, Any]
    exam_outcomes: tuple[Mapping[str, Any], ...]


def make_payload(rule_set: RuleSet | None = None) -> Payload:
    rule_set = rule_set or load_rule_set()
    birth = date(1988, 5, 17)
    registration: dict[str, Any] = {
        "station_id": "BENCH",
        "channel": "desk",
        "donor_id": str(uuid4()),
        "donor_ref": secrets.token_hex(16),
        "id_type": "resident_id",
        "id_number_masked": "330102" + "*" * 12,
        "name": "王芳",
        "sex": "F",
        "birth_date": birth.isoformat(),
        "phone": "13812345678",
        "product_requested": "platelets_single",
        "appointment_id": "APT-482913",
        "required_slots": required_slots(
            {
                "required_signatures": {
                    step: list(roles)
                    for step, roles in load_station_parameters().required_signatures.items()
                }
            }
        ),
    }
    exam: dict[str, Any] = {
        "weight_kg": 61.5,
        "sbp_mmhg": 118,
        "dbp_mmhg": 76,
        "pulse_per_min": 72,
        "temperature_c": 36.6,
        "findings": "皮肤无黄染，穿刺部位无异常",
        "result": "pass",
        "defer_reason": "",
    }
    values = {
        "weight_kg": exam["weight_kg"],
        "sbp_mmhg": exam["sbp_mmhg"],
        "dbp_mmhg": exam["dbp_mmhg"],
        "pulse_per_min": exam["pulse_per_min"],
        "temperature_c": exam["temperature_c"],
        "pulse_pressure_mmhg": exam["sbp_mmhg"] - exam["dbp_mmhg"],
        "age_years": age_on(birth, datetime.now(UTC).date()),
    }
    context = {
        "sex": "F",
        "product": "platelets_single",
        "repeat_donor_no_reaction": False,
        "endurance_athlete": False,
    }
    outcomes = rule_set.evaluate(Step.EXAM, values, context).resolve({}, ()).outcomes
    return Payload(
        rule_set_ref=rule_set.ref,
        registration=registration,
        exam=exam,
        exam_outcomes=tuple(o.to_json() for o in outcomes),
    )


# -- test credentials made at run time -------------------------------------------------------------


@dataclass(frozen=True)
class Signers:
    clerk: CredentialSigner
    physician: CredentialSigner


def make_signers(directory: Path) -> Signers:
    """A fresh station PKI under *directory* and two staff credentials (EC P-256)."""
    return make_station_pki(directory)[1]


def make_station_pki(directory: Path) -> tuple[StationPKI, Signers]:
    """`make_signers`, also returning the PKI (to issue a TSA credential, say)."""
    now = datetime.now(UTC)
    pki = StationPKI.create(directory / "pki", "Bench Station", secrets.token_bytes(16), now)
    clerk = pki.issue_staff("C001", "Bench Clerk", Role.CLERK, now)
    physician = pki.issue_staff("P001", "Bench Physician", Role.EXAMINING_PHYSICIAN, now)
    return pki, Signers(
        clerk=CredentialSigner(clerk, Role.CLERK),
        physician=CredentialSigner(physician, Role.EXAMINING_PHYSICIAN),
    )


# -- the plain twin ------------------------------------------------------------------------------


class PlainDonation(Aggregate):
    """A plain eventsourcing aggregate whose events carry the ledger events' fields, unsigned.

    `signature`, `event_hash` and `prev_hash` are ordinary strings of the same length as ours, so
    the stored states have the same size; nothing is hashed or signed.
    """

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, Any]] = {}
        self.events_by_version: dict[int, str] = {}

    # A deliberate twin of `ledger.events.LedgerAggregate.Event`: the anchor runs no ledger code.
    class Event(Aggregate.Event):
        actor: str
        actor_role: str
        prev_hash: str
        rule_set: str
        rule_outcomes: list[dict[str, Any]]
        signature: str
        event_hash: str

        def apply(self, aggregate: Any) -> None:
            # What Donation's events do: remember the step and its values.
            aggregate.events_by_version[self.originator_version] = type(self).__name__
            aggregate.steps[type(self).__name__] = {
                "version": self.originator_version,
                "event_hash": self.event_hash,
                "values": {f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
            }

    # A deliberate twin of `Donation.DonorRegistered`: the anchor runs no ledger code.
    class Registered(Event, Aggregate.Created):
        station_id: str
        channel: str
        donor_id: str
        donor_ref: str
        id_type: str
        id_number_masked: str
        name: str
        sex: str
        birth_date: str
        phone: str
        product_requested: str
        appointment_id: str | None
        required_slots: list[dict[str, str]]

    # A deliberate twin of `Donation.GeneralExamRecorded`: the anchor runs no ledger code.
    class ExamRecorded(Event):
        weight_kg: float
        sbp_mmhg: int
        dbp_mmhg: int
        pulse_per_min: int
        temperature_c: float
        findings: str
        result: str
        defer_reason: str


class PlainApp(Application[UUID]):
    name = "BenchPlain"


# -- stores ----------------------------------------------------------------------------------------


@dataclass
class StoreEnvs:
    """Persistence environments of one backend: ours (chained) and plain eventsourcing."""

    backend: str
    ours: dict[str, str]
    plain: dict[str, str]


@contextmanager
def sqlite_envs() -> Iterator[StoreEnvs]:
    """Two file databases in a fresh temporary directory (WAL, as eventsourcing sets it)."""
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        ours = persistence_env(f"sqlite:///{tmp}/ours.sqlite")
        plain = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": f"{tmp}/plain.sqlite",
            "SQLITE_LOCK_TIMEOUT": ours["SQLITE_LOCK_TIMEOUT"],
        }
        yield StoreEnvs("sqlite", ours, plain)


def pg_dsn() -> str:
    for name in PG_DSN_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return DEFAULT_PG_DSN


def pg_unreachable(dsn: str) -> str | None:
    """None if a connection to *dsn* works, else why not (one line)."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means: skip PostgreSQL
        detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        return f"{type(exc).__name__}: {detail}"
    return None


def redacted(dsn: str) -> str:
    """*dsn* without its password, for printing."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def pg_server_info(dsn: str) -> str:
    """Server version and the settings that decide what a durable commit costs."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=3) as conn:
        values = []
        for name in ("server_version", "synchronous_commit", "fsync", "wal_sync_method"):
            row = conn.execute(f"SHOW {name}").fetchone()
            values.append(f"{name}={row[0] if row else '?'}")
    return ", ".join(values)


@contextmanager
def postgres_envs(dsn: str) -> Iterator[StoreEnvs]:
    """Two fresh schemas (ours, plain) in the database of *dsn*, dropped on exit."""
    suffix = secrets.token_hex(4)
    ours_schema, plain_schema = f"bench_{suffix}", f"bench_plain_{suffix}"
    separator = "&" if "?" in dsn else "?"
    ours = persistence_env(f"{dsn}{separator}schema={ours_schema}")
    plain = {
        **ours,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_SCHEMA": plain_schema,
    }
    schemas = (ours_schema, plain_schema)
    try:
        for schema in schemas:  # eventsourcing creates tables, not schemas
            ensure_postgres_schema({**ours, "POSTGRES_SCHEMA": schema})
        yield StoreEnvs("postgres", ours, plain)
    finally:
        drop_schemas(ours, schemas)


def drop_schemas(env: Mapping[str, str], schemas: Sequence[str]) -> None:
    """Drop the benchmark's schemas, and what is in them, from the database of *env*."""
    from psycopg.sql import SQL, Identifier

    with postgres_admin_connection(env) as conn:
        for schema in schemas:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))


# -- timing ----------------------------------------------------------------------------------------


def per_call_us(func: Callable[[], object], repeat: int = 300) -> float:
    """Median wall time of one call of *func*, in microseconds (after a short warm-up)."""
    from time import perf_counter

    for _ in range(20):
        func()
    samples = []
    for _ in range(repeat):
        start = perf_counter()
        func()
        samples.append(perf_counter() - start)
    return median(samples) * 1e6
