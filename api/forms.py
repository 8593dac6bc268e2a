"""``ledger forms DONATION [--out DIR]``: parse, call `services.forms.write_forms`, print."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from services.forms import WriteForms, write_forms
from services.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``ledger forms NUMBER [--out DIR]`` to the CLI."""
    p = subparsers.add_parser("forms", help="write the signed PDF/A-3b forms of a donation")
    p.add_argument(
        "donation", help="donation number, visit reference (V + 12 hex) or UUID of the donation"
    )
    p.add_argument("--out", type=Path, default=None, help="directory (default: HOME/forms)")
    p.set_defaults(handler=cmd_forms)


def cmd_forms(settings: Settings, args: argparse.Namespace) -> int:
    written = write_forms(settings, WriteForms(args.donation, args.out))
    for path in written.paths:
        print(path)
    print(f"{len(written.paths)} signed PDF/A-3b forms in {written.seconds:.2f} s")
    return 0
