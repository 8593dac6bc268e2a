"""Key files at rest: re-wrap station keys written with a weaker KDF (``ledger keys rewrap``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.settings import Settings
from signing.errors import KeyStoreError
from signing.pki import rewrap_weak_keys


@dataclass(frozen=True)
class RewrapKeys:
    """Re-encrypt every private key file of the station PKI whose KDF is below today's."""


@dataclass(frozen=True)
class RewrappedKeys:
    rewritten: tuple[Path, ...]


def rewrap_keys(settings: Settings, command: RewrapKeys) -> RewrappedKeys:
    """Open each weakly wrapped key with the passphrase and write it back with PBKDF2 x 600,000.

    Keys wrapped with 2048 iterations (before this version) keep loading without it; this only
    raises the cost of guessing the passphrase from a stolen file."""
    directory = settings.pki_dir
    if not directory.is_dir():
        raise KeyStoreError(f"no station PKI at {directory}: run `ledger init`")
    return RewrappedKeys(tuple(rewrap_weak_keys(directory, settings.passphrase_bytes())))
