"""verify-pdf on the real forms: a simulated day on a SQLite station, then `produce_forms` for a
sealed donation; each form holds under the station root, standard tools agree, and an attack on
a real form is rejected. Skipped while `services.forms` is not importable."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from documents.pdf_verify import verify_pdf
from services.demo import DemoDay
from services.station import Station
from tests import pdf_attacks
from tests.conftest import make_settings
from tests.pdf_tools import (
    SIGNATURE_TYPES,
    nss_database,
    pdffonts,
    pdfsig,
    preflight_classpath,
    preflight_errors,
    qpdf_check,
    tool,
    unexpected_preflight_errors,
)

logging.getLogger("pyhanko").setLevel(logging.CRITICAL)


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Station, list[Path]]]:
    produce: Any = getattr(pytest.importorskip("services.forms"), "produce_forms", None)
    if produce is None:
        pytest.skip("services.forms has no produce_forms yet")
    home = tmp_path_factory.mktemp("forms")
    settings = make_settings(home / "home", f"sqlite:///{home / 'l.sqlite'}")
    with Station.initialise(settings) as station:
        DemoDay(station, 5).run(4)
        station.stamper().flush()
        sealed = _sealed(station)
        # A deferred donor's record is sealed too, without a donation number (nothing was
        # collected): these tests want a collected donation, whose forms name its number.
        numbered = [d for d in sealed if station.app.donation(d).donation_no]
        if not numbered:
            pytest.skip("the simulated day sealed no collected donation")
        paths: list[Path] = produce(station, numbered[0], home / "out", None)
        yield station, paths


def _sealed(station: Station) -> list[UUID]:
    found = []
    for note in station.app.recorder.select_notifications(1, 10**6):
        event = station.app.mapper.to_domain_event(note)
        if type(event).__name__ == "DonationRecordSealed":
            found.append(event.originator_id)
    return found


def test_every_real_form_holds(forms: tuple[Station, list[Path]]) -> None:
    station, paths = forms
    assert paths
    for path in paths:
        report = verify_pdf(path.read_bytes(), station.trust_roots(), name=str(path))
        assert report.bottom_line, (path.name, report.failures())
        assert report.signatures.signatures[-1].kind == "document timestamp"
        assert report.pdfa.ok and report.evidence.content_checked
        assert report.evidence.events and report.evidence.donation_numbers


def test_a_deferred_donors_forms_hold_without_a_number(
    forms: tuple[Station, list[Path]], tmp_path: Path
) -> None:
    """A sealed record without a donation number (the donor was deferred) still yields forms
    that verify; their evidence claims no number, and the file is named by the visit."""
    station, _ = forms
    deferred = [d for d in _sealed(station) if not station.app.donation(d).donation_no]
    if not deferred:
        pytest.skip("the simulated day deferred no donor")
    produce: Any = pytest.importorskip("services.forms").produce_forms
    paths: list[Path] = produce(station, deferred[0], tmp_path, None)
    assert paths
    for path in paths:
        assert path.name.startswith("V"), path.name
        report = verify_pdf(path.read_bytes(), station.trust_roots(), name=str(path))
        assert report.bottom_line, (path.name, report.failures())
        assert report.evidence.events and not report.evidence.donation_numbers


def test_an_attack_on_a_real_form_is_rejected(forms: tuple[Station, list[Path]]) -> None:
    station, paths = forms
    attacked = pdf_attacks.isa_content_appended(paths[0].read_bytes())
    report = verify_pdf(attacked, station.trust_roots())
    assert not report.bottom_line
    assert any("changed after signing" in failure for failure in report.failures())


@pytest.mark.skipif(
    tool("pdfsig") is None or tool("certutil") is None, reason="poppler-utils / nss tools missing"
)
def test_pdfsig_trusts_the_real_forms(forms: tuple[Station, list[Path]], tmp_path: Path) -> None:
    station, paths = forms
    database = nss_database(tmp_path / "nss", _pem(station))
    for path in paths:
        blocks = [b for b in pdfsig(path, database) if b.signature_type in SIGNATURE_TYPES]
        assert blocks, path
        for block in blocks:
            assert block.validation == "Signature is Valid.", (path.name, block)
            assert block.certificate == "Certificate is Trusted.", (path.name, block)


@pytest.mark.skipif(tool("qpdf") is None or tool("pdffonts") is None, reason="qpdf / poppler")
def test_qpdf_and_pdffonts_on_the_real_forms(forms: tuple[Station, list[Path]]) -> None:
    _, paths = forms
    for path in paths:
        assert qpdf_check(path).returncode == 0, path
        fonts = pdffonts(path)
        assert fonts and all(embedded == "yes" for _, embedded in fonts), (path.name, fonts)


@pytest.mark.skipif(preflight_classpath() is None, reason="PDFBox Preflight is not installed")
def test_preflight_on_the_real_forms(forms: tuple[Station, list[Path]]) -> None:
    _, paths = forms
    classpath = preflight_classpath()
    assert classpath is not None
    for path in paths:
        errors = preflight_errors(path, classpath)
        assert not unexpected_preflight_errors(errors), (path.name, errors)


def _pem(station: Station) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return station.pki.root_certificate.public_bytes(serialization.Encoding.PEM)
