"""Use cases refuse bad input themselves, before a station or store is opened or written
(whatever adapter calls them: the CLI today, the HTTP API next)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.demo import MAX_DONATIONS, RunDemo, run_demo
from services.reports import (
    AmendmentsQuery,
    QualityQuery,
    Rebuild,
    ReportError,
    amendments_report,
    quality,
    rebuild,
)
from services.settings import Settings
from signing.errors import InputError
from tests.conftest import make_settings


@pytest.fixture
def nowhere(tmp_path: Path) -> Settings:
    """Settings of a station that does not exist (opening it would fail otherwise)."""
    return make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.sqlite'}")


@pytest.mark.parametrize("donations", [0, MAX_DONATIONS + 1])
def test_a_demo_day_of_no_or_too_many_donations_is_refused(
    nowhere: Settings, tmp_path: Path, donations: int
) -> None:
    with pytest.raises(InputError, match="demo day holds"):
        run_demo(nowhere, RunDemo(donations, forms=False))
    assert not (tmp_path / "home").exists() and not (tmp_path / "ledger.sqlite").exists()


def test_a_reversed_quality_period_is_refused(nowhere: Settings) -> None:
    with pytest.raises(ReportError, match="before"):
        quality(nowhere, QualityQuery(date(2026, 2, 1), date(2026, 1, 1)))


def test_a_reversed_amendments_period_is_refused(nowhere: Settings) -> None:
    with pytest.raises(ReportError, match="before"):
        amendments_report(nowhere, AmendmentsQuery(date(2026, 2, 1), date(2026, 1, 1)))


def test_rebuilding_an_unknown_read_model_is_refused(nowhere: Settings) -> None:
    with pytest.raises(ReportError, match="no read model nonsense"):
        rebuild(nowhere, Rebuild(("audit_trail", "nonsense")))
