"""Verification of trusted time: batch tokens, inclusion, checkpoints and consistency.

Runs after ``ledger.verify`` has recomputed every event's canonical hash, on those recomputed
hashes (never on the hashes the store claims):

1. batches tile the log from its first event without gap or overlap, each on the events the
   store says (positions), and each batch's Merkle root recomputes from the events' hashes;
2. each batch token is a valid RFC 3161 token over that root, from a TSA that chains to a trust
   root with a critical timeStamping EKU, and its time is not before any signing time in the batch;
3. each stored checkpoint is signed by the station, timestamped, matches the log prefix it names,
   and no batch token is later than the first checkpoint that covers it;
4. with ``--since``, the given checkpoint is genuine and today's log is consistent with it
   (RFC 9162 consistency proof): truncation, rollback and forks fail.

Events after the last batch are pending: counted and aged, not failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ledger.checkpoints import (
    SignedCheckpoint,
    checkpoint_problems,
    consistency_problems,
)
from ledger.merkle import root_from_leaves
from ledger.stores import Batch, EvidenceStore
from signing.errors import CertificateInvalid, SignatureInvalid
from signing.tsp_validation import verify_timestamp_token
from signing.validation import CertificateValidator

#: Signing times are whole seconds (CMS UTCTime) and TSA accuracy is one second.
TOLERANCE = timedelta(seconds=1)


@dataclass
class TimeReport:
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # position, kind, reason
    batches: int = 0
    stamped: int = 0
    pending: int = 0
    oldest_pending_s: float = 0.0
    checkpoints: int = 0
    since_size: int | None = None
    event_tokens: int = 0


def verify_trusted_time(
    store: EvidenceStore,
    leaves: Sequence[bytes],
    positions: Sequence[int],
    times: Sequence[datetime],
    validator: CertificateValidator,
    now: datetime,
    since: SignedCheckpoint | None = None,
    *,
    event_tokens: Mapping[int, tuple[bytes, str]] | None = None,
    signature_values: Mapping[int, tuple[bytes, datetime]] | None = None,
) -> TimeReport:
    report = TimeReport()
    for position, (token, _gen_time) in sorted((event_tokens or {}).items()):
        report.event_tokens += 1
        reason = _event_token_problem(token, (signature_values or {}).get(position), validator)
        if reason:
            report.failures.append((position, "SignatureTimestamp", reason))
    start = since.size if since is not None else 0
    batches = list(store.select_batches())
    gen_times: list[tuple[Batch, datetime]] = []
    covered = 0
    for batch in batches:
        end = batch.first_seq + batch.size
        reason = _batch_problem(
            batch, covered, leaves, positions, times, validator, gen_times, check=end > start
        )
        if reason:
            report.failures.append((batch.first_position, "TimestampBatch", reason))
        covered = max(covered, end)
        report.batches += 1
    report.stamped = min(covered, len(leaves))
    report.pending = max(0, len(leaves) - covered)
    if report.pending:
        report.oldest_pending_s = max(0.0, (now - times[covered]).total_seconds())
    for stored in store.select_checkpoints():
        report.checkpoints += 1
        checkpoint = SignedCheckpoint.from_stored(stored)
        problems = checkpoint_problems(checkpoint, validator)
        problems += consistency_problems(checkpoint, leaves)
        issued = datetime.fromisoformat(checkpoint.issued_at)
        for batch, gen_time in gen_times:
            if batch.first_seq + batch.size <= checkpoint.size and gen_time > issued + TOLERANCE:
                problems.append(
                    f"batch at position {batch.first_position} was stamped {gen_time.isoformat()},"
                    f" after the checkpoint of {checkpoint.issued_at} that covers it"
                )
        for problem in problems[:1]:
            report.failures.append((checkpoint.head_position, "Checkpoint", problem))
    if since is not None:
        report.since_size = since.size
        problems = checkpoint_problems(since, validator) + consistency_problems(since, leaves)
        for problem in problems[:1]:
            report.failures.append((since.head_position, "Checkpoint(--since)", problem))
    return report


def _event_token_problem(
    token: bytes, signed: tuple[bytes, datetime] | None, validator: CertificateValidator
) -> str:
    """A per-event (CAdES-T) token: over SHA-256 of the event's signature value, not earlier."""
    if signed is None:
        return "signature timestamp for an event whose signature did not verify or is missing"
    value, signing_time = signed
    try:
        stamp = verify_timestamp_token(token, hashlib.sha256(value).digest(), validator)
    except (SignatureInvalid, CertificateInvalid) as exc:
        return f"signature timestamp does not verify: {exc}"
    if stamp.gen_time + TOLERANCE < signing_time:
        return f"signature timestamp {stamp.gen_time.isoformat()} is earlier than the signature"
    return ""


def _batch_problem(
    batch: Batch,
    covered: int,
    leaves: Sequence[bytes],
    positions: Sequence[int],
    times: Sequence[datetime],
    validator: CertificateValidator,
    gen_times: list[tuple[Batch, datetime]],
    *,
    check: bool,
) -> str:
    end = batch.first_seq + batch.size
    if batch.first_seq != covered:
        return (
            f"batch starts at log index {batch.first_seq}, expected {covered}: batches overlap "
            "or leave a gap"
        )
    if end > len(leaves):
        return f"batch covers {end} events but the ledger has {len(leaves)}: events removed"
    if (positions[batch.first_seq], positions[end - 1]) != (
        batch.first_position,
        batch.last_position,
    ):
        return (
            f"batch names positions {batch.first_position}-{batch.last_position} but its events "
            f"are at {positions[batch.first_seq]}-{positions[end - 1]}"
        )
    if not check:
        return ""
    root = root_from_leaves(leaves[batch.first_seq : end])
    if root.hex() != batch.root:
        return "batch Merkle root does not recompute from its events (an event was altered)"
    try:
        stamp = verify_timestamp_token(batch.token, root, validator)
    except (SignatureInvalid, CertificateInvalid) as exc:
        return f"batch timestamp token does not verify: {exc}"
    gen_times.append((batch, stamp.gen_time))
    latest = max(times[batch.first_seq : end])
    if stamp.gen_time + TOLERANCE < latest:
        return (
            f"timestamp {stamp.gen_time.isoformat()} is earlier than a signature in its batch "
            f"({latest.isoformat()})"
        )
    return ""
