"""Signed checkpoints: the ledger as one append-only Merkle log (RFC 9162).

A checkpoint states the log's size and root at a moment; it is signed by the station (CMS over
its RFC 8785 body) and carries an RFC 3161 token over SHA-256 of that body. A regulator who keeps
one can later ask for a consistency proof: truncation, rollback to a backup and a forked history
all fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.events import Signer
from ledger.merkle import (
    MerkleVerificationError,
    RootMismatchError,
    consistency_proof,
    root_from_leaves,
    verify_consistency,
)
from ledger.stores import ChainLink, EvidenceStore, StoredCheckpoint
from ledger.timestamping import leaves_of
from signing.errors import CertificateInvalid, LedgerError, SignatureInvalid
from signing.timestamps import TimeStamper
from signing.tsp_validation import verify_timestamp_token
from signing.validation import CertificateValidator, verify_detached

FORMAT = "donation-ledger-checkpoint/1"


class CheckpointError(LedgerError, ValueError):
    """A checkpoint file that cannot be read or does not verify."""


@dataclass(frozen=True)
class SignedCheckpoint:
    station_id: str
    size: int
    root: str
    head_position: int
    issued_at: str
    signature: str
    token: bytes

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "station_id": self.station_id,
            "size": self.size,
            "root": self.root,
            "head_position": self.head_position,
            "issued_at": self.issued_at,
        }

    def canonical(self) -> bytes:
        return canonical_bytes(self.body())

    def to_json(self) -> dict[str, Any]:
        return {
            **self.body(),
            "signature": self.signature,
            "timestamp_token": base64.b64encode(self.token).decode("ascii"),
        }

    @classmethod
    def from_json(cls, document: Any) -> SignedCheckpoint:
        try:
            if document["format"] != FORMAT:
                raise CheckpointError(f"not a ledger checkpoint (format {document['format']!r})")
            return cls(
                station_id=str(document["station_id"]),
                size=int(document["size"]),
                root=str(document["root"]),
                head_position=int(document["head_position"]),
                issued_at=str(document["issued_at"]),
                signature=str(document["signature"]),
                token=base64.b64decode(document["timestamp_token"], validate=True),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"malformed checkpoint: {exc!r}") from exc

    @classmethod
    def from_stored(cls, stored: StoredCheckpoint) -> SignedCheckpoint:
        document = json.loads(stored.body)
        return cls.from_json(
            {
                **document,
                "signature": stored.signature,
                "timestamp_token": base64.b64encode(stored.token).decode("ascii"),
            }
        )


def all_links(store: EvidenceStore, page: int = 10_000) -> list[ChainLink]:
    links: list[ChainLink] = []
    while True:
        more = store.select_chain(links[-1].position if links else 0, page)
        if not more:
            return links
        links.extend(more)


def issue_checkpoint(
    store: EvidenceStore, signer: Signer, timestamper: TimeStamper, station_id: str
) -> SignedCheckpoint:
    """Sign and timestamp the size and root of the ledger's stamped prefix, and keep it.

    Only events already in a timestamped batch are covered, so no batch token can be later than
    a checkpoint that covers it, even while other writers keep appending (flush first to cover
    everything).
    """
    last = store.last_batch()
    stamped_to = last.last_position if last else 0
    links = [link for link in all_links(store) if link.position <= stamped_to]
    issued = datetime.now(UTC)
    unsigned = SignedCheckpoint(
        station_id=station_id,
        size=len(links),
        root=root_from_leaves(leaves_of(links)).hex(),
        head_position=links[-1].position if links else 0,
        issued_at=issued.isoformat(timespec="microseconds"),
        signature="",
        token=b"",
    )
    body = unsigned.canonical()
    token = timestamper.timestamp(hashlib.sha256(body).digest())
    signed = SignedCheckpoint(
        **{**unsigned.__dict__, "signature": signer.sign(body, issued), "token": token.der}
    )
    store.insert_checkpoint(
        StoredCheckpoint(signed.size, signed.root, body.decode(), signed.signature, signed.token)
    )
    return signed


def checkpoint_problems(checkpoint: SignedCheckpoint, validator: CertificateValidator) -> list[str]:
    """Is the checkpoint itself genuine: station signature, and a token over its body?"""
    body = checkpoint.canonical()
    issued = datetime.fromisoformat(checkpoint.issued_at)
    try:
        verified = verify_detached(base64.b64decode(checkpoint.signature), body)
    except (SignatureInvalid, ValueError) as exc:
        return [f"checkpoint signature does not verify: {exc}"]
    if verified.subject_id != "STAFF:SYSTEM":
        return [f"checkpoint signed by {verified.subject_id}, not the station system"]
    intermediates = [c for c in verified.certificates if c != verified.signer_certificate]
    try:
        validator.validate(verified.signer_certificate, intermediates, issued)
        stamp = verify_timestamp_token(checkpoint.token, hashlib.sha256(body).digest(), validator)
    except (SignatureInvalid, CertificateInvalid) as exc:
        return [f"checkpoint evidence does not verify: {exc}"]
    if (stamp.gen_time - issued).total_seconds() < -1:
        return ["checkpoint timestamp is earlier than its issue time"]
    return []


def consistency_problems(checkpoint: SignedCheckpoint, leaves: Sequence[bytes]) -> list[str]:
    """Does today's log extend the one the checkpoint saw (RFC 9162 consistency proof)?"""
    if len(leaves) < checkpoint.size:
        return [
            f"the ledger holds {len(leaves)} events, fewer than the {checkpoint.size} of the "
            f"checkpoint of {checkpoint.issued_at}: truncated or rolled back"
        ]
    if checkpoint.size == 0:
        return []
    current_root = root_from_leaves(leaves)
    try:
        if checkpoint.size == len(leaves):
            if current_root.hex() != checkpoint.root:
                raise RootMismatchError(bytes.fromhex(checkpoint.root), current_root)
        else:
            proof = consistency_proof(leaves, checkpoint.size)
            verify_consistency(
                checkpoint.size,
                len(leaves),
                bytes.fromhex(checkpoint.root),
                current_root,
                proof,
            )
    except MerkleVerificationError:
        return [
            f"the first {checkpoint.size} events no longer hash to the root of the checkpoint of "
            f"{checkpoint.issued_at}: history was rewritten, rolled back or forked"
        ]
    return []
