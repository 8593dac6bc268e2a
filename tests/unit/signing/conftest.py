"""A station PKI made at test time in tmp_path, with a frozen clock: no committed keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from signing.pki import Credential, StationPKI

NOW = datetime(2025, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
PASSPHRASE = b"correct horse battery staple"


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def pki(tmp_path: Path) -> StationPKI:
    return StationPKI.create(tmp_path / "pki", "Station Nord", PASSPHRASE, NOW)


@pytest.fixture
def staff(pki: StationPKI) -> Credential:
    return pki.issue_staff("N001", "Alice Martin", "nurse", NOW)


@pytest.fixture
def other_staff(pki: StationPKI) -> Credential:
    return pki.issue_staff("N002", "Bob Leroy", "physician", NOW)


@pytest.fixture
def donor(pki: StationPKI) -> Credential:
    return pki.issue_donor("0123456789abcdef0123456789abcdef", "Chen Wei", NOW)


@pytest.fixture
def other_pki(tmp_path: Path) -> StationPKI:
    """Another station, with the same names: only the keys tell them apart."""
    return StationPKI.create(tmp_path / "other", "Station Nord", b"other passphrase", NOW)
