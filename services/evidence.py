"""Evidence export: one ledger event as files that tools not ours check (``ledger export-event``).

`export_event` writes, into a directory (docs/evidence.md describes each file):

- ``event.json``: the event's canonical bytes (RFC 8785), what its actor signed and hashed;
- ``sig.p7s``: the detached CMS signature (CAdES-BES, DER) over those bytes;
- ``chain.pem``: the station CA chain (root and issuing CA);
- ``evidence.json``: what ties the files to the ledger (`EVIDENCE_FORMAT`, version
  `EVIDENCE_VERSION`): the position, event type, aggregate and version, actor, event hash, the
  global chain's ``prev_hash``, and ``trusted_time``: ``pending``, or the batch that stamped the
  event with the event's RFC 6962 inclusion path to the batch root;
- once stamped, ``token.tsr`` (the batch's RFC 3161 token, imprint = the batch root) and
  ``batch_root.hex``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.canonical import event_canonical_bytes
from ledger.events import LedgerAggregate
from ledger.stores import ChainReader
from ledger.timestamping import InclusionEvidence, inclusion_evidence
from services.settings import Settings
from services.station import Station
from signing.errors import InputError

__all__ = [
    "EVIDENCE_FORMAT",
    "EVIDENCE_VERSION",
    "ExportEvent",
    "ExportedEvent",
    "evidence_document",
    "export_event",
]

EVIDENCE_FORMAT = "donation-ledger/event-evidence"
#: Version of evidence.json's shape; a key removed or renamed bumps it.
EVIDENCE_VERSION = 1

VERIFY_SIGNATURE = (
    "openssl cms -verify -binary -inform DER -in sig.p7s -content event.json "
    "-CAfile chain.pem -out /dev/null && sha256sum event.json"
)
VERIFY_TOKEN = (
    "openssl ts -verify -digest $(cat batch_root.hex) -in token.tsr -token_in -CAfile chain.pem"
)


@dataclass(frozen=True)
class ExportEvent:
    """Command: write the evidence of the event at global `position` into `out_dir`."""

    position: int
    out_dir: Path


@dataclass(frozen=True)
class ExportedEvent:
    position: int
    event_type: str
    out_dir: Path
    files: tuple[str, ...]
    stamped: bool


def evidence_document(
    position: int,
    event: LedgerAggregate.Event,
    chain_prev_hash: str | None,
    inclusion: InclusionEvidence | None,
) -> dict[str, Any]:
    """evidence.json of one event (docs/evidence.md)."""
    timing: dict[str, Any] = {"status": "pending"}
    if inclusion is not None:
        timing = {
            "status": "stamped",
            "tsa_time": inclusion.batch.gen_time,
            "batch_root": inclusion.batch.root,
            "batch_first_position": inclusion.batch.first_position,
            "batch_size": inclusion.batch.size,
            "leaf_index": inclusion.index,
            "inclusion_path": [h.hex() for h in inclusion.path],
            "verify_token_with": VERIFY_TOKEN,
        }
    return {
        "format": EVIDENCE_FORMAT,
        "format_version": EVIDENCE_VERSION,
        "position": position,
        "event_type": type(event).__name__,
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "actor": event.actor,
        "event_hash": event.event_hash,
        "chain_prev_hash": chain_prev_hash,
        "verify_with": VERIFY_SIGNATURE,
        "trusted_time": timing,
    }


def export_event(settings: Settings, command: ExportEvent) -> ExportedEvent:
    """Write the files; `InputError` when no ledger event sits at the position."""
    position = command.position
    with Station.open(settings) as station:
        recorder: Any = station.app.recorder
        notes = recorder.select_notifications(position, 1) if position >= 1 else []
        if not notes or notes[0].id != position:
            raise InputError(f"no event at position {position}")
        event = station.app.mapper.to_domain_event(notes[0])
        if not isinstance(event, LedgerAggregate.Event):
            raise InputError(f"position {position} holds no ledger event")
        assert isinstance(recorder, ChainReader)
        links = recorder.select_chain(position - 1, 1)
        link = links[0] if links and links[0].position == position else None
        inclusion = inclusion_evidence(station.store, position)
        files: dict[str, bytes] = {
            "event.json": event_canonical_bytes(event),
            "sig.p7s": base64.b64decode(event.signature),
            "chain.pem": station.pki.chain_pem(),
        }
        document = evidence_document(position, event, link.prev_hash if link else None, inclusion)
        files["evidence.json"] = json.dumps(document, ensure_ascii=False, indent=2).encode()
        if inclusion is not None:
            files["token.tsr"] = inclusion.batch.token
            files["batch_root.hex"] = (inclusion.batch.root + "\n").encode()
    out = command.out_dir
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return ExportedEvent(position, type(event).__name__, out, tuple(files), inclusion is not None)
