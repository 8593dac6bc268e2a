"""signing.pdf_validation: each step of the signature checks, and each way it fails."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic as _generic
from pyhanko.pdf_utils.generic import pdf_name

from signing.errors import PdfUnreadable
from signing.pdf_validation import (
    DOCUMENT_TIMESTAMP,
    SIGNATURE,
    PdfValidationPolicy,
    validate_pdf_signatures,
)
from signing.tsa import TimestampAuthority
from tests.pdf_samples import SampleStation, incremental_update, sign_pdf

generic: Any = _generic  # pyHanko's PDF object classes are not annotated


def test_genuine_form_holds(genuine: bytes, station: SampleStation) -> None:
    report = validate_pdf_signatures(genuine, [station.root])
    assert report.bottom_line, report.to_json()
    kinds = [(s.field_name, s.kind) for s in report.signatures]
    assert kinds[:2] == [("Nurse", SIGNATURE), ("Physician", SIGNATURE)]
    assert kinds[2][1] == DOCUMENT_TIMESTAMP
    nurse, physician, stamp = report.signatures
    assert nurse.signer_id == "STAFF:N001" and physician.signer_id == "STAFF:P001"
    assert nurse.time_source == "signature timestamp"
    assert nurse.modification_level == "FORM_FILLING"
    assert nurse.changed_fields == ("Physician",)
    assert physician.modification_level == "LTA_UPDATES"
    assert stamp.coverage in ("ENTIRE_REVISION", "ENTIRE_FILE")
    assert nurse.revision < physician.revision < stamp.revision <= report.revisions
    assert nurse.byte_range[0] == 0 and len(nurse.byte_range) == 4
    assert report.dss_crls >= 1 and report.dss_certificates >= 3
    json.dumps(report.to_json())  # serialisable as is


def test_other_root_is_not_trusted(genuine: bytes, attacker: SampleStation) -> None:
    report = validate_pdf_signatures(genuine, [attacker.root])
    assert not report.bottom_line
    for check in report.signatures:
        assert not check.ok
    nurse = report.signatures[0]
    assert any("no trusted certificate path for Li Na (nurse)" in p for p in nurse.problems)


def test_revoked_signer_fails(station: SampleStation, unsigned: bytes) -> None:
    """The CRL in the DSS lists the signer as revoked before the signature was made."""
    credential = station.pki.issue_staff("R001", "Revoked Person", "nurse", station.now)
    signed = sign_pdf(unsigned, station, "Revoked", credential=credential, revocation_info=False)
    station.pki.revoke(credential.certificate.serial_number, station.now, datetime.now(UTC))
    out = io.BytesIO(signed)
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    DocumentSecurityStore.add_dss(
        out,
        _contents(signed),
        certs=[_asn1(station.pki.issuing_certificate)],
        crls=[asn1_crl.CertificateList.load(station.crl_der())],
    )
    report = validate_pdf_signatures(out.getvalue(), [station.root])
    check = report.signatures[0]
    assert any("revoked" in p for p in check.problems), check.problems


def test_revocation_data_is_required(station: SampleStation, unsigned: bytes) -> None:
    signed = sign_pdf(unsigned, station, "Nurse", revocation_info=False)
    check = validate_pdf_signatures(signed, [station.root]).signatures[0]
    assert any(p.startswith("no revocation data for Li Na (nurse)") for p in check.problems)
    assert any(p.startswith("no revocation data for Station Nord TSA") for p in check.problems)
    lenient = PdfValidationPolicy(require_revocation_data=False)
    assert validate_pdf_signatures(signed, [station.root], lenient).bottom_line


def test_signature_without_any_trusted_time(station: SampleStation, unsigned: bytes) -> None:
    signed = sign_pdf(unsigned, station, "Nurse", timestamp=False)
    check = validate_pdf_signatures(signed, [station.root]).signatures[0]
    assert "no trusted time: no signature timestamp and no later document timestamp" in (
        check.problems
    )
    assert check.time_source == "signer's claim (untrusted)"
    lenient = PdfValidationPolicy(require_trusted_time=False)
    assert validate_pdf_signatures(signed, [station.root], lenient).bottom_line


def test_a_later_document_timestamp_gives_the_time(station: SampleStation, unsigned: bytes) -> None:
    first = sign_pdf(unsigned, station, "Nurse", timestamp=False)
    both = sign_pdf(first, station, "Physician", credential=station.staff["P001"], lta=True)
    report = validate_pdf_signatures(both, [station.root])
    assert report.bottom_line, report.to_json()
    assert report.signatures[0].time_source.startswith("document timestamp ")


def test_timestamps_must_not_go_back(station: SampleStation, unsigned: bytes) -> None:
    first = sign_pdf(unsigned, station, "Nurse")
    backdated = TimestampAuthority(
        station.tsa_credential, clock=lambda: datetime.now(UTC) - timedelta(minutes=2)
    )
    second = sign_pdf(
        first, station, "Physician", credential=station.staff["P001"], lta=True, authority=backdated
    )
    report = validate_pdf_signatures(second, [station.root])
    assert not report.bottom_line
    problems = [p for s in report.signatures for p in s.problems]
    assert any("is earlier than that of 'Nurse' in an earlier revision" in p for p in problems)


def test_bytes_after_the_last_eof(genuine: bytes, station: SampleStation) -> None:
    attacked = genuine + b"%hidden payload\n"
    end = attacked.rfind(b"%%EOF") + 5
    report = validate_pdf_signatures(attacked, [station.root])
    assert not report.bottom_line
    assert all(s.ok for s in report.signatures)
    assert report.problems == (
        f"{len(attacked) - end} bytes follow the last %%EOF at offset {end}: no signature "
        "covers them",
    )


def test_a_signature_dictionary_outside_every_field(
    station: SampleStation, unsigned: bytes
) -> None:
    """Planted before signing, so the diff analysis has nothing to say: step 8 finds it."""

    def plant(writer: Any) -> None:
        writer.add_object(
            generic.DictionaryObject(
                {
                    pdf_name("/Type"): pdf_name("/Sig"),
                    pdf_name("/Filter"): pdf_name("/Adobe.PPKLite"),
                    pdf_name("/ByteRange"): generic.ArrayObject(
                        [generic.NumberObject(x) for x in (0, 10, 20, 30)]
                    ),
                    pdf_name("/Contents"): generic.ByteStringObject(b"\x30\x00"),
                }
            )
        )

    signed = sign_pdf(incremental_update(unsigned, plant), station, "Nurse")
    report = validate_pdf_signatures(signed, [station.root])
    assert all(s.ok for s in report.signatures)
    assert any("is not the value of any signature field" in p for p in report.problems)


def test_two_signature_fields_with_one_name(single: bytes, station: SampleStation) -> None:
    """Step 6 explains later changes by field name: a second field named like a signature could
    pass for it, so duplicate names fail the file."""

    def add_field(writer: Any) -> None:
        duplicate = generic.DictionaryObject(
            {
                pdf_name("/FT"): pdf_name("/Sig"),
                pdf_name("/T"): generic.TextStringObject("Nurse"),
            }
        )
        form = writer.root["/AcroForm"]
        form["/Fields"].append(writer.add_object(duplicate))
        writer.update_container(form["/Fields"])

    report = validate_pdf_signatures(incremental_update(single, add_field), [station.root])
    assert "2 signature fields are named 'Nurse'" in report.problems


def test_unsupported_subfilter(single: bytes, station: SampleStation) -> None:
    edited = single.replace(b"/SubFilter /ETSI.CAdES.detached", b"/SubFilter /adbe.x509.rsa_sha1 ")
    check = validate_pdf_signatures(edited, [station.root]).signatures[0]
    assert any(p.startswith("SubFilter /adbe.x509.rsa_sha1 is not one of") for p in check.problems)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, not a PDF", "not a PDF: no %PDF- header"),
        (b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n", "not a complete PDF: no %%EOF marker"),
        (b"%PDF-1.7\n%%EOF\n", "cannot read the PDF"),
    ],
)
def test_unusable_input(data: bytes, reason: str, station: SampleStation) -> None:
    with pytest.raises(PdfUnreadable) as caught:
        validate_pdf_signatures(data, [station.root])
    assert reason in caught.value.reason


def test_an_unsigned_pdf_is_unusable(unsigned: bytes, station: SampleStation) -> None:
    with pytest.raises(PdfUnreadable, match="holds no signature"):
        validate_pdf_signatures(unsigned, [station.root])


def test_a_trust_root_is_required(genuine: bytes) -> None:
    with pytest.raises(ValueError, match="trust root"):
        validate_pdf_signatures(genuine, [])


def _asn1(certificate: object) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(
        certificate.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined]
    )


def _contents(pdf: bytes) -> bytes:
    from pyhanko.pdf_utils.reader import PdfFileReader

    return bytes(PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].pkcs7_content)
