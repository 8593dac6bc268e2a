"""``ledger backup --out FILE``, ``ledger restore FILE``: parse, call `services.backup`, print."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from services.backup import MakeBackup, RestoreBackup, make_backup, restore_backup
from services.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``ledger backup`` and ``ledger restore`` to the CLI."""
    p = subparsers.add_parser(
        "backup", help="a consistent copy of the store (SQLite online backup, or pg_dump)"
    )
    p.add_argument("--out", type=Path, required=True, help="the backup file (must not exist)")
    p.set_defaults(handler=cmd_backup)
    p = subparsers.add_parser(
        "restore", help="restore a backup where no ledger is, then verify it against its checkpoint"
    )
    p.add_argument("source", type=Path, help="a file written by `ledger backup`")
    p.set_defaults(handler=cmd_restore)


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    made = make_backup(settings, MakeBackup(args.out))
    print(
        f"backup ({made.kind}) of {made.events} events: {made.path} "
        f"({made.size_bytes} bytes, {made.seconds:.2f} s)"
    )
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    restored = restore_backup(settings, RestoreBackup(args.source))
    last = (
        "no checkpoint in the backup"
        if restored.last_checkpoint_size is None
        else f"last checkpoint of {restored.last_checkpoint_size} events"
    )
    print(
        f"restored ({restored.kind}) {restored.events} events; verify: "
        f"{restored.verdict.value}; {last} ({restored.seconds:.2f} s)"
    )
    for finding in restored.findings:
        print(f"  {finding}")
    return 0 if restored.agrees else 1
