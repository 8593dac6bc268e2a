"""Samples shared by the PDF tests, built once per session (PKI, evidence, forms, signatures)."""

from __future__ import annotations

import logging

import pytest

from tests.pdf_samples import (
    Attachment,
    SampleStation,
    evidence_attachments,
    genuine_form,
    make_station,
    sign_pdf,
    unsigned_form,
)

logging.getLogger("pyhanko").setLevel(logging.CRITICAL)  # rejected revisions log tracebacks


@pytest.fixture(scope="session")
def station(tmp_path_factory: pytest.TempPathFactory) -> SampleStation:
    return make_station(tmp_path_factory.mktemp("pdf-station") / "pki")


@pytest.fixture(scope="session")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> SampleStation:
    """Another PKI with the same names as the station's: only the keys differ."""
    return make_station(tmp_path_factory.mktemp("pdf-attacker") / "pki")


@pytest.fixture(scope="session")
def evidence(station: SampleStation) -> list[Attachment]:
    return evidence_attachments(station)


@pytest.fixture(scope="session")
def unsigned(evidence: list[Attachment]) -> bytes:
    return unsigned_form(attachments=evidence)


@pytest.fixture(scope="session")
def genuine(station: SampleStation, unsigned: bytes) -> bytes:
    """Certified by the nurse (P2), approved by the physician, B-LTA."""
    return genuine_form(station, unsigned)


@pytest.fixture(scope="session")
def single(station: SampleStation, unsigned: bytes) -> bytes:
    """One B-T signature with its DSS (a later, unsigned LTA revision)."""
    return sign_pdf(unsigned, station, "Nurse")
