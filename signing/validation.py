"""Checking detached CMS signatures and certificate paths: the half a regulator runs.

This module imports nothing of the signature-creation code (`signing.cms`, `signing.pki`).

`verify_detached` checks one CAdES-BES signature against its data (RFC 5652 5.4 and 5.6, RFC 5035);
`CertificateValidator` checks that the signer certificate chains to a trusted root and was valid
and not revoked at a given time. Both fail with a typed error whose `reason` says what failed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from signing import _cms_parse as _cms
from signing import _der
from signing.errors import SignatureInvalid
from signing.paths import CertificateValidator

__all__ = ["CertificateValidator", "VerifiedSignature", "verify_detached"]


@dataclass(frozen=True)
class VerifiedSignature:
    """What a signature that verified says about itself."""

    signer_certificate: x509.Certificate  # the certificate named by the SignerInfo
    signing_time: datetime  # the signing-time attribute, UTC (whole seconds: UTCTime)
    subject_id: str  # the signer certificate's subject serialNumber, e.g. "STAFF:N001"
    certificates: tuple[x509.Certificate, ...]  # every certificate embedded, in encoded order
    signature_value: bytes = b""  # the SignerInfo signature octets (what CAdES-T timestamps)


# -- verify_detached -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    """A signature that verified, with the places of what changes from one signature of the same
    signer to the next: the message-digest and signing-time values and the signature value.

    A signature of the same length whose every other byte is the template's has the same DER
    structure, element by element: every tag and length octet lies outside those places, which
    are the contents of primitive elements (an OCTET STRING, a UTCTime, an OCTET STRING). So
    its parse is the template's with those three contents read from it, exactly; what depends on
    them (the digest compared with the data, the time read, the value verified with the key) is
    checked for every signature as before.
    """

    der: bytes
    parsed: _cms.SignedData
    digest: tuple[int, int]  # (offset, length) of the message-digest value's contents
    time: tuple[int, int]  # of the signing-time value's contents
    attributes: tuple[int, int]  # of the signed attributes' contents (they hold both)
    signature: tuple[int, int]  # of the signature value's contents
    digest_value: _der.Element
    time_value: _der.Element
    sid: tuple[int, int]  # (offset, length) of the signer identifier, as encoded

    def parse(self, der: bytes) -> _cms.SignedData | None:
        """The parse of *der* if it fits the template, else None."""
        template = self.der
        (d, dn), (t, tn), (s, sn) = self.digest, self.time, self.signature
        # The three places in order: digest and time inside the attributes, the value after.
        first, second = ((d, dn), (t, tn)) if d < t else ((t, tn), (d, dn))
        (a, an), (b, bn) = first, second
        if not (
            der[:a] == template[:a]
            and der[a + an : b] == template[a + an : b]
            and der[b + bn : s] == template[b + bn : s]
            and der[s + sn :] == template[s + sn :]
        ):
            return None
        at, atn = self.attributes
        signed_attributes = self.parsed.signed_attributes._replace(contents=der[at : at + atn])
        attributes = dict(self.parsed.attributes)
        attributes[_cms.MESSAGE_DIGEST] = [self.digest_value._replace(contents=der[d : d + dn])]
        attributes[_cms.SIGNING_TIME] = [self.time_value._replace(contents=der[t : t + tn])]
        return self.parsed._replace(
            attributes=attributes,
            signed_attributes=signed_attributes,
            signature=der[s : s + sn],
        )


#: Templates by the signature's length and its signer identifier (the SignerInfo's sid, where
#: it lies in a signature of that length): one per signer and length, about three lengths a
#: signer (ECDSA values are 70 to 72 octets).
_TEMPLATES: dict[tuple[int, bytes], _Template] = {}
_SID_PLACES: dict[int, list[tuple[int, int]]] = {}  # length -> (offset, length) of sids seen
_TEMPLATES_MAX = 1024
_SID_PLACES_MAX = 8


def _fitting_template(der: bytes) -> _cms.SignedData | None:
    """The parse of *der* by the template of an earlier signature of its signer, if one fits."""
    size = len(der)
    for at, length in _SID_PLACES.get(size, ()):
        template = _TEMPLATES.get((size, der[at : at + length]))
        if template is not None:
            parsed = template.parse(der)
            if parsed is not None:
                return parsed
    return None


def _children(der: bytes, start: int, end: int) -> list[tuple[_der.Element, int]]:
    """The elements between *start* and *end* of *der*, each with its offset in *der*."""
    found = []
    offset = start
    while offset < end:
        element, after = _der._read(der, offset, end)
        found.append((element, offset))
        offset = after
    return found


def _contents(element: _der.Element, offset: int) -> tuple[int, int]:
    return offset + len(element.header), len(element.contents)


def _template(der: bytes, parsed: _cms.SignedData) -> _Template | None:
    """The template of a signature that verified (None where its layout is not the usual)."""
    try:
        ((outer, at),) = _children(der, 0, len(der))
        info = _children(der, *_span(outer, at))
        inner, at = _children(der, *_span(*info[1]))[0]
        signer_infos, at = _children(der, *_span(inner, at))[-1]
        ((signer_info, at),) = _children(der, *_span(signer_infos, at))
        fields = _children(der, *_span(signer_info, at))
        sid, sid_at = fields[1]
        attributes, attributes_at = fields[3]
        signature, signature_at = fields[5]
        places: dict[bytes, tuple[_der.Element, tuple[int, int]]] = {}
        for attribute, at in _children(der, *_span(attributes, attributes_at)):
            oid, values = _children(der, *_span(attribute, at))
            if oid[0].encoded in (_cms.MESSAGE_DIGEST, _cms.SIGNING_TIME):
                ((value, value_at),) = _children(der, *_span(*values))
                if value.constructed:
                    return None
                places[oid[0].encoded] = (value, _contents(value, value_at))
        digest_value, digest = places[_cms.MESSAGE_DIGEST]
        time_value, time = places[_cms.SIGNING_TIME]
    except (ValueError, KeyError, IndexError):
        return None
    if (
        signature.contents != parsed.signature
        or digest_value != _cms.single_value(parsed, _cms.MESSAGE_DIGEST)
        or time_value != _cms.single_value(parsed, _cms.SIGNING_TIME)
    ):
        return None  # not where the parse found them: no template
    return _Template(
        der=der,
        parsed=parsed,
        digest=digest,
        time=time,
        attributes=_contents(attributes, attributes_at),
        signature=_contents(signature, signature_at),
        digest_value=digest_value,
        time_value=time_value,
        sid=(sid_at, len(sid.encoded)),
    )


def _span(element: _der.Element, offset: int) -> tuple[int, int]:
    start = offset + len(element.header)
    return start, start + len(element.contents)


def _remember(der: bytes, parsed: _cms.SignedData) -> None:
    template = _template(der, parsed)
    if template is None:
        return
    if len(_TEMPLATES) >= _TEMPLATES_MAX:
        _TEMPLATES.clear()
        _SID_PLACES.clear()
    at, length = template.sid
    places = _SID_PLACES.setdefault(len(der), [])
    if template.sid not in places:
        if len(places) >= _SID_PLACES_MAX:
            places.pop(0)
        places.append(template.sid)
    _TEMPLATES[(len(der), der[at : at + length])] = template


def _parse(signature_der: bytes) -> _cms.SignedData:
    """Steps 1-3: parse, and check the envelope (detached SignedData, one SignerInfo).

    The envelope is walked element by element (`signing._cms_parse`, on `signing._der`) rather
    than loaded with `cms.ContentInfo`: the typed load of a signature with three certificates
    costs about 0.25 ms, four times the ECDSA verification itself. The values inside are then
    read with asn1crypto's typed classes, cached by their bytes where they repeat from event to
    event (signer identifier, algorithms, ESS attribute, certificates).
    """
    try:
        return _cms.read_signed_data(signature_der, "CMS", _detached)
    except SignatureInvalid:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, ...
        raise _cms.unparseable("CMS", exc) from exc


def _detached(encapsulated: list[_der.Element]) -> bytes:
    """RFC 5652 5.2: id-data, without eContent (the data travels beside the signature)."""
    if not encapsulated or encapsulated[0].encoded != _cms.OID_DATA:
        raise SignatureInvalid("the encapsulated content type is not id-data")
    if len(encapsulated) != 1:
        raise SignatureInvalid("the signature is not detached: it carries eContent")
    return b""


def _single_value(parsed: _cms.SignedData, oid_der: bytes) -> _der.Element:
    value = _cms.single_value(parsed, oid_der)
    if value is None:
        raise SignatureInvalid(f"the signed attribute {_cms.attribute_name(oid_der)} is missing")
    return value


def _utc_time(contents: bytes) -> datetime | None:
    """A DER UTCTime ``YYMMDDhhmmssZ`` (RFC 5280 4.1.2.5.1), read without asn1crypto's typed
    load (about 8 µs); None for any other form, which asn1crypto then reads. Years 50-99 are
    19xx and 00-49 are 20xx, as asn1crypto has them."""
    if len(contents) != 13 or contents[12] != 0x5A or not contents[:12].isdigit():
        return None
    year = int(contents[0:2])
    return datetime(
        year + (2000 if year < 50 else 1900),
        int(contents[2:4]),
        int(contents[4:6]),
        int(contents[6:8]),
        int(contents[8:10]),
        int(contents[10:12]),
        tzinfo=UTC,
    )


def _signing_time(value: _der.Element) -> datetime:
    fast = _utc_time(value.contents) if value.is_(_der.UNIVERSAL, 23, constructed=False) else None
    if fast is not None:
        return fast
    if value.is_(_der.UNIVERSAL, 23):
        moment = core.UTCTime.load(value.encoded, strict=True).native
    elif value.is_(_der.UNIVERSAL, 24):
        moment = core.GeneralizedTime.load(value.encoded, strict=True).native
    else:
        raise SignatureInvalid("the signing-time attribute is not a UTCTime or GeneralizedTime")
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise SignatureInvalid("the signing-time attribute is not a UTC time")
    return moment.astimezone(UTC)


#: What a station signs with (RFC 5754: SHA-256 only); rsaEncryption as the signature algorithm
#: takes the digest algorithm, SHA-256.
_SIGNATURE_ALGORITHMS = frozenset({"sha256_ecdsa", "sha256_rsa", "rsassa_pkcs1v15"})


def _check_signature_value(
    parsed: _cms.SignedData, algorithm: str, signer: _cms.CertificateFacts
) -> None:
    try:
        fits = algorithm in _SIGNATURE_ALGORITHMS and _cms.verify_signature(
            parsed, algorithm, "sha256", signer.public_key
        )
    except InvalidSignature as exc:
        raise SignatureInvalid("signature value does not verify") from exc
    if not fits:
        raise SignatureInvalid(
            f"signature algorithm {algorithm} does not fit the signer's "
            f"{type(signer.public_key).__name__}"
        )


def verify_detached(signature_der: bytes, data: bytes) -> VerifiedSignature:
    """Verify a detached CAdES-BES signature over `data`; raise `SignatureInvalid` if it fails.

    This checks the signature itself, not whether the signer certificate is trusted: pass
    `signer_certificate` and `certificates` to `CertificateValidator.validate` for that.
    """
    # 1-3. Parse: a detached SignedData of id-data with exactly one SignerInfo that has signed
    # attributes, each attribute type at most once (RFC 5652 5.1, 5.3). A signature laid out as
    # one of the same signer that verified before is read by its template (`_Template`).
    fitted = _fitting_template(signature_der)
    parsed = fitted if fitted is not None else _parse(signature_der)
    try:
        # 4. SHA-256 digest (RFC 5754), content-type = id-data (RFC 5652 11.1).
        if _cms.digest_algorithm_name(parsed.digest_algorithm_der) != "sha256":
            raise SignatureInvalid("unsupported digest algorithm: SHA-256 is required")
        signature_algorithm = _cms.signature_algorithm_name(parsed.signature_algorithm_der)
        if _single_value(parsed, _cms.CONTENT_TYPE).encoded != _cms.OID_DATA:
            raise SignatureInvalid("the content-type attribute is not id-data")
        # 5. message-digest = SHA-256(data) (RFC 5652 11.2).
        digest = _single_value(parsed, _cms.MESSAGE_DIGEST)
        if not digest.is_(_der.UNIVERSAL, _der.OCTET_STRING, constructed=False):
            raise SignatureInvalid("the message-digest attribute is not an OCTET STRING")
        if digest.contents != hashlib.sha256(data).digest():
            raise SignatureInvalid("message digest mismatch")
        # 6. The signer certificate, named by the SignerInfo, among the embedded ones (every
        # one read, its subject too: one that does not parse makes the signature unparseable).
        certificates = [_cms.certificate_facts(der) for der in parsed.certificate_ders]
        for facts in certificates:
            facts.subject_id  # noqa: B018 - read for the ValueError a malformed subject raises
        signer = _cms.find_signer(
            parsed.sid_der,
            certificates,
            "the signer certificate named by the SignerInfo is not embedded",
        )
        # 7. ESS signing-certificate-v2 binds that certificate to the signature (RFC 5035).
        _cms.check_signing_certificate(
            _single_value(parsed, _cms.SIGNING_CERTIFICATE_V2), 2, signer, "the signer certificate"
        )
        # 8. signing-time (RFC 5652 11.3).
        signing_time = _signing_time(_single_value(parsed, _cms.SIGNING_TIME))
    except SignatureInvalid:
        raise
    except Exception as exc:  # a malformed value, found while reading it
        raise _cms.unparseable("CMS", exc) from exc
    # 9. The signature value, with the signer's public key (RFC 5652 5.6).
    _check_signature_value(parsed, signature_algorithm, signer)
    if signer.subject_id is None:
        raise SignatureInvalid("the signer certificate has no single subject serialNumber")
    if fitted is None:
        _remember(signature_der, parsed)
    return VerifiedSignature(
        signer_certificate=signer.certificate,
        signing_time=signing_time,
        subject_id=signer.subject_id,
        certificates=tuple(facts.certificate for facts in certificates),
        signature_value=parsed.signature,
    )


def signature_value(signature_der: bytes) -> bytes:
    """The SignerInfo signature octets of a CMS signature, unverified (ETSI EN 319 122-1
    signature-time-stamp: the token's imprint is over these bytes)."""
    return _parse(signature_der).signature
