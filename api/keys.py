"""``ledger keys rewrap``: parse, call `services.keys.rewrap_keys`, print."""

from __future__ import annotations

import argparse
from typing import Any

from services.keys import RewrapKeys, rewrap_keys
from services.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``ledger keys rewrap`` to the CLI."""
    p = subparsers.add_parser("keys", help="private key files at rest")
    keys_sub = p.add_subparsers(required=True, metavar="ACTION")
    rewrap = keys_sub.add_parser(
        "rewrap", help="re-encrypt key files written with a weaker KDF (PBKDF2 x 600,000)"
    )
    rewrap.set_defaults(handler=cmd_keys_rewrap)


def cmd_keys_rewrap(settings: Settings, args: argparse.Namespace) -> int:
    result = rewrap_keys(settings, RewrapKeys())
    for path in result.rewritten:
        print(f"re-wrapped {path}")
    print(f"{len(result.rewritten)} key files re-wrapped (PBKDF2-HMAC-SHA256 x 600,000)")
    return 0
