"""Verification use cases: the ledger, the ledger since a checkpoint or against a witness, one
signed PDF. The `ledger verify` and `ledger verify-pdf` commands call these, and so will the
HTTP API; each returns a `ledger.report.Report` (verdict, coded findings, counts).

Bad input raises `InputError` (exit 2) before anything is opened or written: a store that does
not exist is not an empty ledger that verifies, and a checkpoint, witness or trust file that
cannot be read is named.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from cryptography import x509

from documents.pdf_verify import PdfVerificationReport, verify_pdf
from ledger.checkpoints import CheckpointError, SignedCheckpoint
from ledger.stores import CHAIN_TABLE, persistence_env, postgres_admin_connection
from ledger.verify import (
    PARALLEL_MIN_EVENTS,
    WORKER_START_METHOD,
    LedgerVerifier,
    VerificationReport,
)
from ledger.verify_time import WitnessedCheckpoint
from services.checkpoints import read_witness
from services.settings import Settings
from services.station import Station, _make_app
from signing.errors import InputError, PdfUnreadable
from signing.pdf_validation import PdfValidationPolicy
from signing.pki import StationPKI
from signing.secrets import StationSecrets

__all__ = [
    "VerificationReport",
    "ledger_verifier",
    "read_checkpoint",
    "require_store",
    "verify_ledger",
    "verify_pdf_file",
    "verify_station",
]


def require_store(settings: Settings) -> None:
    """The ledger named by ``LEDGER_DB`` must exist: verifying creates nothing."""
    env = persistence_env(settings.db)
    if "SQLITE_DBNAME" in env:
        path = Path(env["SQLITE_DBNAME"])
        if not path.is_file():
            raise InputError(
                f"no ledger at {path} (LEDGER_DB={settings.db}): nothing to verify "
                "(`ledger init` creates one)"
            )
        return
    schema = env.get("POSTGRES_SCHEMA", "public")
    try:
        with postgres_admin_connection(env) as conn:
            row = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".{CHAIN_TABLE}',)).fetchone()
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"cannot reach the ledger at LEDGER_DB: {reason}") from exc
    if row is None or row[0] is None:
        raise InputError(
            f"no ledger in schema {schema} of the PostgreSQL database at LEDGER_DB: "
            "nothing to verify (`ledger init` creates one)"
        )


def read_checkpoint(path: Path) -> SignedCheckpoint:
    """A checkpoint file; `InputError` naming the file when it cannot be used."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return SignedCheckpoint.from_json(document)
    except OSError as exc:
        raise InputError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"checkpoint {path} is not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"checkpoint {path} is not JSON: {exc}") from exc
    except CheckpointError as exc:
        raise InputError(f"checkpoint {path}: {exc}") from exc


def pending_grace(settings: Settings) -> timedelta:
    """The batch policy's delay plus the grace (ledger.verify_time.DEFAULT_PENDING_GRACE)."""
    return timedelta(milliseconds=settings.batch_max_delay_ms, seconds=settings.pending_grace_s)


def default_workers() -> int:
    """All the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ledger_verifier(
    station: Station,
    *,
    since: SignedCheckpoint | None = None,
    witnessed: Sequence[WitnessedCheckpoint] = (),
    now: datetime | None = None,
    workers: int | None = 1,
    new_only: bool = False,
) -> LedgerVerifier:
    """The station's verifier; with *workers* > 1 (None: all cores, for a ledger big enough to
    gain from them), ranges of the log are verified in that many worker processes, each opening
    the station itself."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}")
    if new_only and since is None:
        raise InputError("--new-only needs --since CHECKPOINT_FILE")
    recorder: Any = station.app.recorder

    def select(start: int, limit: int) -> Any:
        return recorder.select_notifications(start, limit)

    count = default_workers() if workers is None else workers
    return LedgerVerifier(
        station.store,
        select,
        station.app.mapper,
        station.validator(),
        since=since,
        witnessed=witnessed,
        pending_grace=pending_grace(station.settings),
        now=now,
        workers=count,
        worker_verifier=(
            partial(
                _worker_verifier,
                station.settings,
                since,
                (station.pki, station.secrets) if WORKER_START_METHOD == "fork" else None,
            )
            if count > 1
            else None
        ),
        parallel_min_events=PARALLEL_MIN_EVENTS if workers is None else 0,
        new_only=new_only,
    )


#: The station a worker process opened: kept open (and referenced) for the process's life.
_WORKER_STATIONS: list[Station] = []


def _worker_verifier(
    settings: Settings,
    since: SignedCheckpoint | None,
    keys: tuple[StationPKI, StationSecrets] | None = None,
) -> LedgerVerifier:
    """In a worker process: the station on its own connections. A forked worker has the
    parent's keys already (*keys*): opening them again costs a scrypt derivation (0.25 s)."""
    if keys is None:
        station = Station.open(settings)
    else:
        station = Station(settings, keys[0], keys[1], _make_app(settings, keys[1]))
    _WORKER_STATIONS.append(station)
    return ledger_verifier(station, since=since)


def verify_ledger(
    settings: Settings,
    *,
    since: Path | None = None,
    witness: str | None = None,
    now: datetime | None = None,
    workers: int | None = None,
    new_only: bool = False,
) -> VerificationReport:
    """Verify the whole ledger; with *since*, consistency with a kept checkpoint and only what
    came after it in full (with *new_only*, the events before it are taken from the chain's
    stored hashes, their bodies not read: the cost is the new events'); with *witness* (else
    ``LEDGER_WITNESS``), against every checkpoint the witness holds; across *workers* processes
    (None: all cores)."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}")
    if new_only and since is None:
        raise InputError("--new-only needs --since CHECKPOINT_FILE")
    checkpoint = read_checkpoint(since) if since is not None else None
    target = settings.witness if witness is None else witness
    witnessed = read_witness(target) if target else []
    require_store(settings)
    with Station.open(settings) as station:
        return verify_station(
            station,
            since=checkpoint,
            witnessed=witnessed,
            now=now,
            workers=workers,
            new_only=new_only,
        )


def verify_station(
    station: Station,
    *,
    since: SignedCheckpoint | None = None,
    witnessed: Sequence[WitnessedCheckpoint] = (),
    now: datetime | None = None,
    workers: int | None = 1,
    new_only: bool = False,
) -> VerificationReport:
    verifier = ledger_verifier(
        station, since=since, witnessed=witnessed, now=now, workers=workers, new_only=new_only
    )
    return verifier.verify()


def verify_pdf_file(
    settings: Settings,
    path: Path,
    trust: Path | None = None,
    *,
    require_revocation: bool = True,
) -> PdfVerificationReport:
    """Check one signed form offline; `PdfUnreadable` (an `InputError`-like exit 2) when the
    file or the trust roots cannot be used."""
    # pyHanko logs every rejected revision with a traceback; the report carries the reasons.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    roots = trust_roots(settings, trust)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PdfUnreadable(f"cannot read {path}: {exc.strerror or exc}") from exc
    policy = PdfValidationPolicy(require_revocation_data=require_revocation)
    return verify_pdf(data, roots, name=str(path), policy=policy)


def trust_roots(settings: Settings, trust: Path | None) -> list[x509.Certificate]:
    paths = [trust] if trust is not None else [settings.pki_dir / "root.cert.pem"]
    if trust is None and settings.tsa_trust is not None:
        paths.append(settings.tsa_trust)
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            roots.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except FileNotFoundError as exc:
            hint = "" if trust is not None else ": pass --trust CA.pem"
            raise PdfUnreadable(f"no trust root: {path} does not exist{hint}") from exc
        except (OSError, ValueError) as exc:
            raise PdfUnreadable(f"cannot read trust roots from {path}: {exc}") from exc
    return roots
