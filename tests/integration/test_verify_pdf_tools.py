"""Standard tools agree with verify-pdf on genuine signed PDF/A-3b samples (issue 5, item 6).

- poppler's pdfsig, with an NSS database made here that trusts only the sample station's root:
  each signature "Signature is Valid." and "Certificate is Trusted." (poppler 22 cannot validate
  document timestamps: their blocks are not judged);
- `qpdf --check` finds no syntax or stream error;
- pdffonts lists every font as embedded;
- PDFBox Preflight (PDF/A-1b only, optional: skipped without libpdfbox2-java) reports no error
  beyond the PDF/A-1-only rules that PDF/A-3b relaxes (`tests.pdf_tools.PREFLIGHT_A1_ONLY`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from documents.pdf_verify import verify_pdf
from tests import pdf_attacks
from tests.pdf_samples import (
    SampleStation,
    evidence_attachments,
    genuine_form,
    make_station,
    sign_pdf,
    unsigned_form,
)
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
def station(tmp_path_factory: pytest.TempPathFactory) -> SampleStation:
    return make_station(tmp_path_factory.mktemp("tools") / "pki")


@pytest.fixture(scope="module")
def samples(station: SampleStation, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The genuine shapes: certified + approved + B-LTA, and a single B-T signature."""
    directory = tmp_path_factory.mktemp("samples")
    unsigned = unsigned_form(attachments=evidence_attachments(station))
    out = {}
    for name, data in (
        ("genuine", genuine_form(station, unsigned)),
        ("single", sign_pdf(unsigned, station, "Nurse")),
    ):
        path = directory / f"{name}.pdf"
        path.write_bytes(data)
        assert verify_pdf(data, [station.root]).bottom_line
        out[name] = path
    return out


@pytest.fixture(scope="module")
def database(station: SampleStation, tmp_path_factory: pytest.TempPathFactory) -> str:
    if tool("certutil") is None:
        pytest.skip("certutil (libnss3-tools) is not installed")
    return nss_database(tmp_path_factory.mktemp("nss"), station.root_pem())


@pytest.mark.skipif(tool("pdfsig") is None, reason="pdfsig (poppler-utils) is not installed")
@pytest.mark.parametrize("name", ["genuine", "single"])
def test_pdfsig_trusts_every_signature(
    name: str, samples: dict[str, Path], database: str, station: SampleStation
) -> None:
    blocks = pdfsig(samples[name], database)
    signatures = [b for b in blocks if b.signature_type in SIGNATURE_TYPES]
    expected = [
        s.field_name
        for s in verify_pdf(samples[name].read_bytes(), [station.root]).signatures.signatures
        if s.kind == "signature"
    ]
    assert [b.field for b in signatures] == expected
    for block in signatures:
        assert block.validation == "Signature is Valid.", block
        assert block.certificate == "Certificate is Trusted.", block


@pytest.mark.skipif(tool("pdfsig") is None, reason="pdfsig (poppler-utils) is not installed")
def test_pdfsig_without_the_root_does_not_trust(
    samples: dict[str, Path], tmp_path: Path, attacker_root: bytes
) -> None:
    if tool("certutil") is None:
        pytest.skip("certutil (libnss3-tools) is not installed")
    database = nss_database(tmp_path / "nss", attacker_root)
    blocks = [
        b for b in pdfsig(samples["genuine"], database) if b.signature_type in SIGNATURE_TYPES
    ]
    assert blocks and all(b.certificate != "Certificate is Trusted." for b in blocks)


@pytest.fixture(scope="module")
def attacker_root(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_station(tmp_path_factory.mktemp("other") / "pki").root_pem()


@pytest.mark.skipif(tool("pdfsig") is None, reason="pdfsig (poppler-utils) is not installed")
def test_pdfsig_alone_misses_an_incremental_update(
    samples: dict[str, Path], database: str, tmp_path: Path, station: SampleStation
) -> None:
    """pdfsig still says "Signature is Valid." for each signed revision (it only notes that the
    document is not totally signed): the modification analysis is what rejects the attack."""
    attacked = pdf_attacks.isa_content_appended(samples["genuine"].read_bytes())
    path = tmp_path / "attacked.pdf"
    path.write_bytes(attacked)
    blocks = [b for b in pdfsig(path, database) if b.signature_type in SIGNATURE_TYPES]
    assert blocks and all(b.validation == "Signature is Valid." for b in blocks)
    assert not verify_pdf(attacked, [station.root]).bottom_line


@pytest.mark.skipif(tool("qpdf") is None, reason="qpdf is not installed")
@pytest.mark.parametrize("name", ["genuine", "single"])
def test_qpdf_check_is_clean(name: str, samples: dict[str, Path]) -> None:
    result = qpdf_check(samples[name])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout


@pytest.mark.skipif(tool("pdffonts") is None, reason="pdffonts (poppler-utils) is not installed")
@pytest.mark.parametrize("name", ["genuine", "single"])
def test_pdffonts_every_font_embedded(name: str, samples: dict[str, Path]) -> None:
    fonts = pdffonts(samples[name])
    assert fonts, "no font found"
    assert all(embedded == "yes" for _, embedded in fonts), fonts


@pytest.mark.skipif(preflight_classpath() is None, reason="PDFBox Preflight is not installed")
def test_preflight_finds_only_pdfa1_only_rules(samples: dict[str, Path]) -> None:
    classpath = preflight_classpath()
    assert classpath is not None
    errors = preflight_errors(samples["genuine"], classpath)
    assert not unexpected_preflight_errors(errors), errors
