"""``ledger backup`` and ``ledger restore``: a consistent copy of the store, and back.

- SQLite: the online backup API (``sqlite3.Connection.backup``): a consistent snapshot while
  writers go on, page by page, into a temporary file renamed into place once complete.
- PostgreSQL: ``pg_dump --format=custom --schema=S`` of the ledger's schema, and ``pg_restore``
  into a database where that schema holds no ledger (``--exit-on-error``, one transaction).

Restore never writes over a ledger: the SQLite file must not exist, the PostgreSQL schema must
hold no ledger. After a restore the restored ledger is verified in full and its last stored
checkpoint is compared with it (the verifier recomputes the root of the prefix the checkpoint
names, and the checkpoint must not name more events than the ledger holds): `Restored` carries
the verdict and both figures. The station's keys (``LEDGER_HOME``) are not in the backup: they
are files, encrypted under the passphrase, copied with the file system.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ledger.report import Verdict
from ledger.stores import CHAIN_TABLE, CHECKPOINT_TABLE, persistence_env
from services.settings import Settings
from services.verification import require_store, verify_ledger
from signing.errors import InputError, LedgerError


class BackupError(LedgerError):
    """A backup or restore that could not be made (nothing half-written is left)."""


@dataclass(frozen=True)
class MakeBackup:
    out: Path


@dataclass(frozen=True)
class BackupMade:
    path: Path
    kind: str  # "sqlite" or "pg_dump"
    size_bytes: int
    events: int
    seconds: float


@dataclass(frozen=True)
class RestoreBackup:
    source: Path


@dataclass(frozen=True)
class Restored:
    kind: str
    events: int
    verdict: Verdict
    last_checkpoint_size: int | None  # None: the backup held no checkpoint
    checkpoints: int
    findings: tuple[str, ...]
    seconds: float

    @property
    def agrees(self) -> bool:
        """Verification passed and the last checkpoint lies within the restored ledger."""
        within = self.last_checkpoint_size is None or self.last_checkpoint_size <= self.events
        return self.verdict is Verdict.PASSED and within


def make_backup(settings: Settings, command: MakeBackup) -> BackupMade:
    require_store(settings)
    out = command.out
    if out.exists():
        raise InputError(f"{out} exists: a backup never replaces a file")
    if not out.parent.is_dir():
        raise InputError(f"no directory {out.parent} for the backup")
    env = persistence_env(settings.db)
    started = time.monotonic()
    tmp = out.with_name(f".{out.name}.partial")
    try:
        if "SQLITE_DBNAME" in env:
            kind = "sqlite"
            _sqlite_copy(Path(env["SQLITE_DBNAME"]), tmp)
            events = _sqlite_events(tmp)
        else:
            kind = "pg_dump"
            _run(["pg_dump", "--format=custom", f"--schema={_schema(env)}", f"--file={tmp}"], env)
            events = _pg_events(env)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return BackupMade(out, kind, out.stat().st_size, events, time.monotonic() - started)


def restore_backup(settings: Settings, command: RestoreBackup) -> Restored:
    source = command.source
    if not source.is_file():
        raise InputError(f"no backup file {source}")
    env = persistence_env(settings.db)
    started = time.monotonic()
    if "SQLITE_DBNAME" in env:
        kind = "sqlite"
        target = Path(env["SQLITE_DBNAME"])
        if target.exists():
            raise InputError(f"{target} exists: restore writes a ledger only where there is none")
        try:
            _sqlite_events(source)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{source} is not a SQLite ledger backup: {exc}") from exc
        tmp = target.with_name(f".{target.name}.restoring")
        try:
            _sqlite_copy(source, tmp)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        kind = "pg_dump"
        schema = _schema(env)
        listing = _run(["pg_restore", "--list", str(source)], env, what="read the backup")
        if f"SCHEMA - {schema} " not in listing and schema != "public":
            raise InputError(f"{source} is not a dump of schema {schema} (LEDGER_DB)")
        try:
            require_store(settings)
        except InputError:
            pass  # no ledger there: restore
        else:
            raise InputError(f"schema {schema} holds a ledger: restore writes only where none is")
        _run(
            [
                "pg_restore",
                "--exit-on-error",
                "--single-transaction",
                "--no-owner",
                f"--dbname={_conninfo(env)}",
                str(source),
            ],
            env,
        )
    report = verify_ledger(settings, witness="")
    last = _last_checkpoint_size(env)
    return Restored(
        kind=kind,
        events=report.events,
        verdict=report.verdict,
        last_checkpoint_size=last,
        checkpoints=report.checkpoints,
        findings=tuple(f"{f.code}: {f.subject}: {f.message}" for f in report.issues()[:5]),
        seconds=time.monotonic() - started,
    )


# -- SQLite --------------------------------------------------------------------------------------


def _sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=1024)
    finally:
        dst.close()
        src.close()


def _sqlite_events(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {CHAIN_TABLE}").fetchone()[0])
    finally:
        conn.close()


# -- PostgreSQL ----------------------------------------------------------------------------------


def _schema(env: dict[str, str]) -> str:
    return env.get("POSTGRES_SCHEMA", "public")


def _conninfo(env: dict[str, str]) -> str:
    return (
        f"host={env['POSTGRES_HOST']} port={env['POSTGRES_PORT']} "
        f"dbname={env['POSTGRES_DBNAME']} user={env['POSTGRES_USER']}"
    )


def _run(argv: list[str], env: dict[str, str], what: str = "") -> str:
    tool = argv[0]
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is not installed (Debian: apt-get install postgresql-client)")
    if tool == "pg_dump":
        argv = [*argv, f"--dbname={_conninfo(env)}"]
    process_env = dict(os.environ)
    if env.get("POSTGRES_PASSWORD"):
        process_env["PGPASSWORD"] = env["POSTGRES_PASSWORD"]
    done = subprocess.run(argv, capture_output=True, text=True, env=process_env, check=False)
    if done.returncode != 0:
        reason = " ".join(done.stderr.split())[:300]
        raise BackupError(f"{tool} could not {what or 'finish'}: {reason}")
    return done.stdout


def _pg_events(env: dict[str, str]) -> int:
    from psycopg.sql import SQL, Identifier

    from ledger.stores import postgres_admin_connection

    with postgres_admin_connection(env) as conn:
        row = conn.execute(
            SQL("SELECT count(*) FROM {}.{}").format(
                Identifier(_schema(env)), Identifier(CHAIN_TABLE)
            )
        ).fetchone()
    return int(row[0]) if row else 0


def _last_checkpoint_size(env: dict[str, str]) -> int | None:
    if "SQLITE_DBNAME" in env:
        conn = sqlite3.connect(f"file:{env['SQLITE_DBNAME']}?mode=ro", uri=True)
        try:
            row = conn.execute(f"SELECT max(size) FROM {CHECKPOINT_TABLE}").fetchone()
        finally:
            conn.close()
    else:
        from psycopg.sql import SQL, Identifier

        from ledger.stores import postgres_admin_connection

        with postgres_admin_connection(env) as pg:
            row = pg.execute(
                SQL("SELECT max(size) FROM {}.{}").format(
                    Identifier(_schema(env)), Identifier(CHECKPOINT_TABLE)
                )
            ).fetchone()
    return int(row[0]) if row and row[0] is not None else None
