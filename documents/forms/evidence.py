"""The evidence a form carries as PDF/A-3 associated files, so the PDF alone holds its proof.

For every event of the donation: its canonical bytes (RFC 8785 JSON: what was hashed and signed,
AFRelationship ``Source``: the form is rendered from them) and its detached CMS signature
(``.p7s``, ``Supplement``). For every timestamp batch holding one of them: the RFC 3161 token
(``.tsr``; its imprint is the batch's Merkle root). ``inclusion.json`` holds each event's path to
its batch root (RFC 6962/9162), ``manifest.json`` ties it together, ``form.json`` lists what the
form shows (for matching the page against the events), ``chain.pem`` is the station CA chain.

Checking one event with OpenSSL after extracting the attachments (e.g. ``qpdf --show-attachment``
or ``pdfdetach -saveall``)::

    openssl cms -verify -binary -inform DER -in e0040.p7s -content e0040.json -CAfile chain.pem
    openssl ts -verify -digest <batch root hex> -in b000012.tsr -token_in -CAfile chain.pem
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SOURCE = "Source"
SUPPLEMENT = "Supplement"


@dataclass(frozen=True)
class BatchEvidence:
    first_seq: int
    size: int
    first_position: int
    root: str  # hex
    gen_time: str
    tsa_url: str
    token: bytes  # DER TimeStampToken


@dataclass(frozen=True)
class EventEvidence:
    """One event's proof: canonical bytes, signature, and (once stamped) its batch and path."""

    position: int
    version: int
    event_type: str
    actor: str
    event_hash: str
    canonical: bytes
    signature: bytes  # DER CMS SignedData (CAdES-BES, detached)
    batch: BatchEvidence | None
    leaf_index: int | None
    path: tuple[str, ...]  # hex sibling hashes, leaf to root


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    mime_type: str
    relationship: str
    description: str


def _event_name(event: EventEvidence) -> str:
    return f"e{event.position:06d}"


def _batch_name(batch: BatchEvidence) -> str:
    return f"b{batch.first_seq:09d}.tsr"


def attachments(
    events: Sequence[EventEvidence],
    *,
    donation: Mapping[str, Any],
    form_data: Mapping[str, Any],
    chain_pem: bytes,
) -> list[Attachment]:
    """The associated files of one form (the same event evidence for every form of a donation;
    ``form.json`` differs)."""
    out: list[Attachment] = []
    batches: dict[int, BatchEvidence] = {}
    manifest_events = []
    inclusion = []
    for event in sorted(events, key=lambda e: e.position):
        if hashlib.sha256(event.canonical).hexdigest() != event.event_hash:
            raise ValueError(f"event at {event.position}: canonical bytes do not match its hash")
        stem = _event_name(event)
        out.append(
            Attachment(
                f"{stem}.json",
                event.canonical,
                "application/json",
                SOURCE,
                f"{event.event_type} v{event.version}: canonical body (RFC 8785)",
            )
        )
        out.append(
            Attachment(
                f"{stem}.p7s",
                event.signature,
                "application/pkcs7-signature",
                SUPPLEMENT,
                f"{event.event_type} v{event.version}: detached CMS signature by {event.actor}",
            )
        )
        entry: dict[str, Any] = {
            "position": event.position,
            "version": event.version,
            "event_type": event.event_type,
            "actor": event.actor,
            "event_hash": event.event_hash,
            "canonical": f"{stem}.json",
            "signature": f"{stem}.p7s",
            "timestamp": None,
        }
        if event.batch is not None and event.leaf_index is not None:
            batches[event.batch.first_seq] = event.batch
            entry["timestamp"] = {
                "token": _batch_name(event.batch),
                "batch_root": event.batch.root,
                "gen_time": event.batch.gen_time,
            }
            inclusion.append(
                {
                    "position": event.position,
                    "event_hash": event.event_hash,
                    "batch_first_seq": event.batch.first_seq,
                    "batch_first_position": event.batch.first_position,
                    "batch_size": event.batch.size,
                    "batch_root": event.batch.root,
                    "leaf_index": event.leaf_index,
                    "inclusion_path": list(event.path),
                }
            )
        manifest_events.append(entry)
    for batch in batches.values():
        out.append(
            Attachment(
                _batch_name(batch),
                batch.token,
                "application/timestamp-reply",
                SUPPLEMENT,
                f"RFC 3161 token over the Merkle root {batch.root} "
                f"({batch.size} events from seq {batch.first_seq})",
            )
        )
    out.append(
        Attachment(
            "inclusion.json",
            _json(
                {
                    "scheme": "RFC 6962 / RFC 9162 Merkle tree: leaf = SHA-256(0x00 || event "
                    "hash), node = SHA-256(0x01 || left || right); the token's imprint is the "
                    "batch root",
                    "paths": inclusion,
                }
            ),
            "application/json",
            SUPPLEMENT,
            "inclusion path of each event in its timestamped batch",
        )
    )
    out.append(
        Attachment(
            "chain.pem",
            chain_pem,
            "application/x-pem-file",
            SUPPLEMENT,
            "station CA chain (issuing CA, root) for openssl",
        )
    )
    out.append(
        Attachment(
            "form.json",
            _json(form_data),
            "application/json",
            SUPPLEMENT,
            "the values and signers this form shows, by step and field",
        )
    )
    out.append(
        Attachment(
            "manifest.json",
            _json(
                {
                    "donation_id": donation.get("donation_id"),
                    "donation_no": donation.get("donation_no"),
                    "form": form_data.get("form"),
                    "events": manifest_events,
                    "pending": [e["position"] for e in manifest_events if e["timestamp"] is None],
                    "verify": {
                        "signature": "openssl cms -verify -binary -inform DER -in eNNNNNN.p7s "
                        "-content eNNNNNN.json -CAfile chain.pem -out /dev/null",
                        "hash": "sha256sum eNNNNNN.json  # = event_hash",
                        "token": "openssl ts -verify -digest BATCH_ROOT -in bNNNNNNNNN.tsr "
                        "-token_in -CAfile chain.pem",
                    },
                }
            ),
            "application/json",
            SUPPLEMENT,
            "index of the attached evidence",
        )
    )
    return out


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
