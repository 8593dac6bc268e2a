"""Re-verifying the ledger evidence a signed form carries, and matching it with the printed form.

A form's associated files carry the proof of what it shows, so that the PDF alone can be checked
years later. Attachments are recognised by their content, not their names (names only pair an
event with its proof when the proof names no event hash):

- a canonical event: a ``.json`` file holding one JSON object with ``topic``, ``aggregate_id``,
  ``version``, ``timestamp`` and ``actor``, byte for byte its RFC 8785 serialisation;
- a CMS signature: a ``.p7s`` file, the detached CAdES-BES signature of one event's bytes
  (paired with its event by the signed message digest);
- an inclusion proof: a ``.json`` object with ``event_hash``, ``batch_root``, ``leaf_index``,
  ``batch_size`` and ``inclusion_path`` (hex), at the top level or under ``trusted_time`` (the
  shape of ``ledger export-event``'s evidence.json), or a list of them under ``paths`` (the
  forms' ``inclusion.json``);
- a batch token: a ``.tsr`` file, an RFC 3161 TimeStampToken, or a TimeStampResp holding one,
  over a batch's Merkle root (paired with proofs by that root).

Steps:

1. each event's bytes are canonical (RFC 8785) and its SHA-256 is its event hash;
2. each event has a signature that verifies over those bytes (`signing.validation`), by the
   certificate whose subject serialNumber is the event's actor, with the event's time as
   signing time, on a path to a trust root valid and unrevoked at that time (CRLs from the PDF);
3. each inclusion proof recomputes, from the leaf SHA-256(0x00 || event hash), the batch root
   (RFC 9162 2.1.3.2, `ledger.merkle`);
4. each batch root has a token that verifies over it (`signing.tsp_validation`), from a TSA
   that chains to a trust root, not earlier than the signatures it covers;
5. events of one aggregate with consecutive versions link by ``prev_hash``;
6. the form shows what the events say: every donation number printed is one the events carry
   and each one they carry is printed; the donor's name and masked ID number (their current
   values, after amendments) are printed.

A signature, proof or token that belongs to nothing attached is a failure (it claims something
the file cannot back); an event without a proof is only noted (its batch was not stamped yet).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import rfc8785
from asn1crypto import cms, tsp
from cryptography import x509

from ledger.canonical import GENESIS_HASH
from ledger.merkle import MerkleVerificationError, leaf_hash, verify_inclusion
from ledger.personal import commit_with_key, mask_name
from signing.errors import CertificateInvalid, SignatureInvalid
from signing.paths import CertificateValidator
from signing.pdf_content import EmbeddedFile
from signing.tsp_validation import verify_timestamp_token
from signing.validation import verify_detached

__all__ = ["EventEvidence", "EvidenceReport", "verify_evidence"]

#: CMS signing times are whole seconds; a TSA's accuracy is about a second.
TOLERANCE = timedelta(seconds=1)
_EVENT_KEYS = frozenset({"topic", "aggregate_id", "version", "timestamp", "actor"})
_PROOF_KEYS = frozenset({"batch_root", "leaf_index", "batch_size", "inclusion_path"})
_DONATION_NO = re.compile(r"(?<![0-9A-Za-z])\d{13}(?![0-9A-Za-z])")
#: Values the form must print, as (event field, what it is): the current value after amendments.
KEY_FIELDS = (("name", "donor name"), ("id_number_masked", "masked ID number"))


@dataclass(frozen=True)
class EventEvidence:
    """One attached event and what its evidence showed."""

    attachment: str
    event_type: str
    aggregate_id: str
    version: int
    event_hash: str
    actor: str
    signed_at: datetime | None  # the verified CMS signing time
    stamped_at: datetime | None  # genTime of the verified token over its batch root
    problems: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "attachment": self.attachment,
            "event_type": self.event_type,
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "event_hash": self.event_hash,
            "actor": self.actor,
            "signed_at": self.signed_at.isoformat() if self.signed_at else None,
            "stamped_at": self.stamped_at.isoformat() if self.stamped_at else None,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class EvidenceReport:
    """The evidence of one form; `problems` empty means everything attached holds."""

    events: tuple[EventEvidence, ...]
    signatures: int
    proofs: int
    tokens: int
    other_files: tuple[str, ...]
    donation_numbers: tuple[str, ...]
    content_checked: bool
    problems: tuple[str, ...]  # every failure, events' included, naming the attachment
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": [e.to_json() for e in self.events],
            "signatures": self.signatures,
            "proofs": self.proofs,
            "tokens": self.tokens,
            "other_files": list(self.other_files),
            "donation_numbers": list(self.donation_numbers),
            "content_checked": self.content_checked,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


@dataclass
class _Event:
    name: str
    data: bytes
    body: dict[str, Any]
    digest: bytes
    problems: list[str] = field(default_factory=list)
    signed_at: datetime | None = None
    stamped_at: datetime | None = None


@dataclass
class _Proof:
    name: str
    event_hash: bytes | None
    root: bytes
    index: int
    size: int
    path: list[bytes]


@dataclass
class _Collected:
    events: list[_Event] = field(default_factory=list)
    signatures: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # name, DER, digest
    proofs: list[_Proof] = field(default_factory=list)
    tokens: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # name, DER, imprint
    other: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    name_keys: list[bytes] = field(default_factory=list)  # keys of name commitments (form.json)


def verify_evidence(
    files: Sequence[EmbeddedFile],
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList] = (),
    page_text: str | None = None,
) -> EvidenceReport:
    """Steps 1-6 over a form's embedded files and the text of its pages (None: not matched)."""
    validator = CertificateValidator(trust_roots, crls)
    found = _collect(files)
    problems = list(found.problems)
    notes: list[str] = []
    if not found.events:
        problems.append("no canonical event is attached: the form carries no evidence")
    by_digest = {event.digest: event for event in found.events}
    _check_signatures(found, by_digest, validator, problems)
    stamped = _check_proofs(found, by_digest, validator, problems)
    for event in found.events:
        if not event.problems and event.digest not in stamped:
            notes.append(f"{event.name}: no inclusion proof and batch token (not yet stamped)")
    _check_chains(found.events)
    numbers = sorted({str(e.body["donation_no"]) for e in found.events if "donation_no" in e.body})
    content_checked = page_text is not None
    if page_text is None:
        notes.append("the form's text was not read (pdftotext is not installed): not matched")
    elif found.events:
        problems.extend(_content_problems(found.events, numbers, page_text, found.name_keys))
    events = tuple(
        EventEvidence(
            attachment=e.name,
            event_type=str(e.body.get("topic", "")).rpartition(".")[2],
            aggregate_id=str(e.body.get("aggregate_id", "")),
            version=int(e.body.get("version", 0)),
            event_hash=e.digest.hex(),
            actor=str(e.body.get("actor", "")),
            signed_at=e.signed_at,
            stamped_at=e.stamped_at,
            problems=tuple(e.problems),
        )
        for e in sorted(
            found.events, key=lambda e: (str(e.body["aggregate_id"]), e.body["version"])
        )
    )
    for evidence in events:
        problems.extend(f"{evidence.attachment}: {problem}" for problem in evidence.problems)
    return EvidenceReport(
        events=events,
        signatures=len(found.signatures),
        proofs=len(found.proofs),
        tokens=len(found.tokens),
        other_files=tuple(found.other),
        donation_numbers=tuple(numbers),
        content_checked=content_checked,
        problems=tuple(problems),
        notes=tuple(notes),
    )


# -- classification -----------------------------------------------------------------------------


def _collect(files: Sequence[EmbeddedFile]) -> _Collected:
    found = _Collected()
    for item in files:
        suffix = item.name.rpartition(".")[2].lower() if "." in item.name else ""
        if suffix == "json":
            _collect_json(item, found)
        elif suffix == "p7s":
            digest = _message_digest(item.data)
            if digest is None:
                found.problems.append(f"{item.name}: not a detached CMS signature")
            else:
                found.signatures.append((item.name, item.data, digest))
        elif suffix == "tsr":
            token = _token(item.data)
            if token is None:
                found.problems.append(f"{item.name}: not an RFC 3161 timestamp token")
            else:
                found.tokens.append((item.name, *token))
        else:
            found.other.append(item.name)
    return found


def _collect_json(item: EmbeddedFile, found: _Collected) -> None:
    try:
        value = json.loads(item.data)
    except (ValueError, UnicodeDecodeError):
        found.problems.append(f"{item.name}: not JSON")
        return
    if isinstance(value, dict) and value.keys() >= _EVENT_KEYS:
        event = _Event(item.name, item.data, value, hashlib.sha256(item.data).digest())
        # Step 1: the bytes are the canonical form, so their hash is the event hash.
        try:
            canonical = rfc8785.dumps(value)
        except Exception as exc:  # rfc8785 raises its own errors on values JCS cannot encode
            canonical = b""
            event.problems.append(f"cannot be canonicalised: {exc}")
        if canonical and canonical != item.data:
            event.problems.append("not the RFC 8785 canonical bytes of its content")
        found.events.append(event)
        return
    proofs: list[tuple[str, dict[str, Any], Any]] = []  # name, proof, event hash
    if isinstance(value, dict) and isinstance(value.get("paths"), list):
        for index, entry in enumerate(value["paths"]):
            if isinstance(entry, dict):
                proofs.append((f"{item.name}[{index}]", entry, entry.get("event_hash")))
    elif isinstance(value, dict):
        proof = value.get("trusted_time", value)
        if isinstance(proof, dict):
            event_hash = value.get("event_hash") or proof.get("event_hash")
            proofs.append((item.name, proof, event_hash))
    proofs = [p for p in proofs if p[1].keys() >= _PROOF_KEYS]
    if not proofs:
        found.other.append(item.name)
        values = value.get("values") if isinstance(value, dict) else None
        identity = values.get("identity") if isinstance(values, dict) else None
        key = identity.get("name_commitment_key") if isinstance(identity, dict) else None
        if isinstance(key, str) and re.fullmatch(r"[0-9a-f]{64}", key):
            found.name_keys.append(bytes.fromhex(key))
    for name, proof, event_hash in proofs:
        try:
            found.proofs.append(
                _Proof(
                    name=name,
                    event_hash=bytes.fromhex(event_hash) if event_hash else None,
                    root=bytes.fromhex(proof["batch_root"]),
                    index=int(proof["leaf_index"]),
                    size=int(proof["batch_size"]),
                    path=[bytes.fromhex(h) for h in proof["inclusion_path"]],
                )
            )
        except (TypeError, ValueError) as exc:
            found.problems.append(f"{name}: malformed inclusion proof: {exc}")


def _message_digest(data: bytes) -> bytes | None:
    """The message-digest signed attribute of a CMS signature, unverified (to pair it)."""
    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            return None
        for attribute in info["content"]["signer_infos"][0]["signed_attrs"]:
            if attribute["type"].native == "message_digest":
                return bytes(attribute["values"][0].native)
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return None


def _token(data: bytes) -> tuple[bytes, bytes] | None:
    """(TimeStampToken DER, its imprint), from a token or a granted TimeStampResp."""
    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            raise ValueError("not SignedData")
        token = info
    except (ValueError, TypeError, KeyError):
        try:
            response = tsp.TimeStampResp.load(data)
            if response["status"]["status"].native not in ("granted", "granted_with_mods"):
                return None
            token = response["time_stamp_token"]
        except (ValueError, TypeError, KeyError):
            return None
    try:
        tst_info = token["content"]["encap_content_info"]["content"].parsed
        return token.dump(), bytes(tst_info["message_imprint"]["hashed_message"].native)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


# -- steps 2 to 5 -------------------------------------------------------------------------------


def _check_signatures(
    found: _Collected,
    by_digest: dict[bytes, _Event],
    validator: CertificateValidator,
    problems: list[str],
) -> None:
    signed: set[bytes] = set()
    for name, der, digest in found.signatures:
        event = by_digest.get(digest)
        if event is None:
            problems.append(f"{name}: signs no attached event (message digest {digest.hex()})")
            continue
        try:
            verified = verify_detached(der, event.data)
            validator.validate(
                verified.signer_certificate, verified.certificates, at=verified.signing_time
            )
        except (SignatureInvalid, CertificateInvalid) as exc:
            event.problems.append(f"signature {name} does not hold: {exc.reason}")
            continue
        actor = str(event.body.get("actor", ""))
        if verified.subject_id != actor:
            event.problems.append(f"signed by {verified.subject_id}, but its actor is {actor}")
        claimed = datetime.fromisoformat(str(event.body["timestamp"]))
        if abs(claimed - verified.signing_time) >= TOLERANCE:
            event.problems.append(
                f"signing time {verified.signing_time.isoformat()} is not the event's time "
                f"{claimed.isoformat()}"
            )
        event.signed_at = verified.signing_time
        signed.add(digest)
    for event in found.events:
        if event.digest not in signed and not any(
            p.startswith("signature ") for p in event.problems
        ):
            event.problems.append("no attached signature signs it")


def _check_proofs(
    found: _Collected,
    by_digest: dict[bytes, _Event],
    validator: CertificateValidator,
    problems: list[str],
) -> set[bytes]:
    """Steps 3 and 4; returns the hashes of the events whose batch token holds."""
    stamps: dict[bytes, datetime] = {}
    bad_roots: set[bytes] = set()
    for name, der, imprint in found.tokens:
        try:
            stamps[imprint] = verify_timestamp_token(der, imprint, validator).gen_time
        except (SignatureInvalid, CertificateInvalid) as exc:
            problems.append(f"{name}: batch token does not hold: {exc.reason}")
            bad_roots.add(imprint)
    used_roots: set[bytes] = set()
    stamped: set[bytes] = set()
    events_by_stem = {e.name.rpartition(".")[0]: e for e in found.events}
    for proof in found.proofs:
        event = by_digest.get(proof.event_hash) if proof.event_hash else None
        if event is None and proof.event_hash is None:
            event = events_by_stem.get(proof.name.split(".")[0])
        if event is None:
            problems.append(f"{proof.name}: proves the inclusion of no attached event")
            continue
        try:
            verify_inclusion(
                proof.index, proof.size, leaf_hash(event.digest), proof.path, proof.root
            )
        except MerkleVerificationError as exc:
            event.problems.append(f"inclusion proof {proof.name} does not hold: {exc}")
            continue
        used_roots.add(proof.root)
        gen_time = stamps.get(proof.root)
        if gen_time is None:
            event.problems.append(
                f"inclusion proof {proof.name}: "
                + (
                    "its batch token does not hold"
                    if proof.root in bad_roots
                    else f"no attached token over batch root {proof.root.hex()}"
                )
            )
            continue
        if event.signed_at is not None and gen_time + TOLERANCE < event.signed_at:
            event.problems.append(
                f"its batch was stamped at {gen_time.isoformat()}, before it was signed"
            )
        event.stamped_at = gen_time
        stamped.add(event.digest)
    for name, _der, imprint in found.tokens:
        if imprint not in used_roots:
            problems.append(f"{name}: is over {imprint.hex()}, the root of no attached proof")
    return stamped


def _check_chains(events: Sequence[_Event]) -> None:
    """Step 5: within an aggregate, version n+1 names version n's hash as prev_hash."""
    by_key = {(str(e.body["aggregate_id"]), e.body["version"]): e for e in events}
    for (aggregate, version), event in by_key.items():
        if version == 1 and event.body.get("prev_hash") != GENESIS_HASH:
            event.problems.append("the first event of its aggregate names a previous event")
        previous = by_key.get((aggregate, version - 1)) if isinstance(version, int) else None
        if previous is not None and event.body.get("prev_hash") != previous.digest.hex():
            event.problems.append(
                f"prev_hash {event.body.get('prev_hash')} is not the hash of version "
                f"{version - 1} ({previous.name})"
            )


# -- step 6 -------------------------------------------------------------------------------------


def _content_problems(
    events: Sequence[_Event], numbers: list[str], text: str, name_keys: Sequence[bytes] = ()
) -> list[str]:
    problems = []
    printed = set(_DONATION_NO.findall(text))
    for number in numbers:
        if number not in printed:
            problems.append(f"the form does not show donation number {number} of its events")
    if numbers:
        for number in sorted(printed - set(numbers)):
            problems.append(f"the form shows donation number {number}, which no event carries")
    compact = "".join(text.split())
    for key, label in KEY_FIELDS:
        value = _current_value(events, key)
        if value is not None and "".join(str(value).split()) not in compact:
            problems.append(f"the form does not show the {label} '{value}' of its events")
        elif value is None and key == "name":
            problems.extend(_committed_name_problems(events, text, name_keys))
    return problems


def _committed_name_problems(
    events: Sequence[_Event], text: str, name_keys: Sequence[bytes]
) -> list[str]:
    """A ``DonorRegistered`` v2 (and a name amendment, ``RecordAmended`` v3) signs the name as a
    masked form and a salted commitment (``ledger.personal``): the page must print a name of
    that mask whose commitment, under the key the form attaches, is the signed one."""
    signed = _committed_name(events)
    if signed is None:
        return []
    masked, commitment = signed
    if not masked or not name_keys:
        return ["the form attaches no key to match the printed donor name with the signed one"]
    width = len(masked)
    for start in (i for i, c in enumerate(text) if c == masked[0]):
        candidate = text[start : start + width]
        if mask_name(candidate) != masked:
            continue
        if any(commit_with_key(k, candidate) == commitment for k in name_keys):
            return []
    return [f"the form does not show the donor name ({masked}) its events sign a commitment to"]


def _current_value(events: Sequence[_Event], key: str) -> Any:
    """The value of `key` as last set: the original event's, or the latest amendment's."""
    ordered = sorted(events, key=lambda e: (str(e.body["timestamp"]), e.body["version"]))
    value = None
    for event in ordered:
        body = event.body
        if key in body:
            value = body[key]
        elif body.get("field") == key and "new_value" in body:
            value = body["new_value"]
        elif body.get("field") == key and body.get("new_value_commitment"):
            value = None  # corrected to a value the amendment signs committed (RecordAmended v3)
    return value


def _committed_name(events: Sequence[_Event]) -> tuple[str, str] | None:
    """The masked form and commitment of the donor name as last set: a ``DonorRegistered`` v2's,
    or the latest name amendment's (``RecordAmended`` v3)."""
    ordered = sorted(events, key=lambda e: (str(e.body["timestamp"]), e.body["version"]))
    found = None
    for event in ordered:
        body = event.body
        if isinstance(body.get("name_commitment"), str) and body["name_commitment"]:
            found = (str(body.get("name_masked", "")), body["name_commitment"])
        elif (
            body.get("field") == "name"
            and isinstance(body.get("new_value_commitment"), str)
            and body["new_value_commitment"]
        ):
            found = (str(body.get("new_value_masked", "")), body["new_value_commitment"])
    return found
