"""`ledger backup` / `ledger restore` on SQLite (online backup API) and PostgreSQL (pg_dump,
pg_restore): the restored ledger verifies and agrees with its last checkpoint; restore never
writes over a ledger; a backup never replaces a file."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from api.cli import main
from ledger.report import Verdict
from ledger.stores import persistence_env
from services.backup import MakeBackup, RestoreBackup, make_backup, restore_backup
from services.station import Station
from signing.errors import InputError
from tests.conftest import make_settings, pg_dsn_or_skip
from tests.workflow import complete


def _lose_the_store(db: str) -> None:
    env = persistence_env(db)
    if "SQLITE_DBNAME" in env:
        for suffix in ("", "-wal", "-shm"):
            Path(env["SQLITE_DBNAME"] + suffix).unlink(missing_ok=True)
    else:
        with psycopg.connect(pg_dsn_or_skip(), autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA {} CASCADE").format(Identifier(env["POSTGRES_SCHEMA"])))


def test_backup_then_restore_verifies_and_agrees_with_the_last_checkpoint(
    backend_db: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", backend_db)
    with Station.initialise(settings) as station:
        complete(station)
        complete(station)
        checkpoint = station.checkpoint()
    made = make_backup(settings, MakeBackup(tmp_path / "ledger.backup"))
    assert made.events == checkpoint.size > 10 and made.size_bytes > 0
    if made.kind == "sqlite":  # the copy is a whole, consistent SQLite database
        conn = sqlite3.connect(made.path)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
    else:  # pg_restore (not our code) reads the archive and lists our tables
        listing = subprocess.run(
            ["pg_restore", "--list", str(made.path)], capture_output=True, text=True, check=True
        ).stdout
        assert "TABLE" in listing and "ledger_chain" in listing

    with Station.open(settings) as station:  # the ledger grows after the backup
        complete(station)
    _lose_the_store(backend_db)

    restored = restore_backup(settings, RestoreBackup(made.path))
    assert restored.verdict is Verdict.PASSED, restored.findings
    assert restored.events == made.events  # exactly what the backup held
    assert restored.last_checkpoint_size == checkpoint.size and restored.checkpoints == 1
    assert restored.agrees

    with pytest.raises(InputError, match="restore writes"):
        restore_backup(settings, RestoreBackup(made.path))
    with pytest.raises(InputError, match="never replaces"):
        make_backup(settings, MakeBackup(made.path))


def test_cli_backup_and_restore(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 0
    with Station.open(
        make_settings(cli_env / "home", f"sqlite:///{cli_env / 'ledger.sqlite'}")
    ) as st:
        complete(st)
        st.checkpoint()
    capsys.readouterr()
    out = cli_env / "b.sqlite"
    assert main(["backup", "--out", str(out)]) == 0
    assert "backup (sqlite) of" in capsys.readouterr().out
    assert main(["restore", str(out)]) == 2  # the ledger is still there
    assert "restore writes a ledger only where there is none" in capsys.readouterr().err
    _lose_the_store(f"sqlite:///{cli_env / 'ledger.sqlite'}")
    assert main(["restore", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verify: PASSED" in printed and "last checkpoint of" in printed
    assert main(["restore", str(cli_env / "missing.bak")]) == 2
    (cli_env / "junk.bak").write_bytes(b"not a database")
    _lose_the_store(f"sqlite:///{cli_env / 'ledger.sqlite'}")
    assert main(["restore", str(cli_env / "junk.bak")]) == 2
    assert not (cli_env / "ledger.sqlite").exists()  # nothing half-written
