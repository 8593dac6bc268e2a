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

Events after the last batch are pending: counted and aged; pending longer than the policy
allows (``DEFAULT_PENDING_GRACE``) makes the verdict INDETERMINATE.

Every finding carries a code of ``ledger.report.Code``.
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
from ledger.report import Code, Severity
from ledger.stores import Batch, EvidenceStore
from signing.errors import CertificateInvalid, SignatureInvalid
from signing.tsp_validation import verify_timestamp_token
from signing.validation import CertificateValidator

#: Signing times are whole seconds (CMS UTCTime) and TSA accuracy is one second.
TOLERANCE = timedelta(seconds=1)

#: How long an event may stay outside every timestamp batch before the verdict is at best
#: INDETERMINATE, beyond the batch policy's own delay. A running stamper cuts a batch within
#: ``LEDGER_BATCH_MAX_DELAY_MS`` and issues a checkpoint every ``LEDGER_CHECKPOINT_INTERVAL_S``
#: (one hour by default), backing off while the TSA is down: one hour covers a TSA outage the
#: stamper rides out and a command run without a stamper until the next `ledger stamp`. Older
#: pending events mean no stamper ran, the TSA was down for over an hour, or the batches were
#: deleted; the ledger alone cannot tell which, so their time is unproven, not proven wrong.
DEFAULT_PENDING_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class TimeInputs:
    """What the event pass recomputed: one Merkle leaf, position and time per log entry, and
    the positions that already have a finding of their own."""

    leaves: Sequence[bytes]
    positions: Sequence[int]
    times: Sequence[datetime]
    bad_positions: frozenset[int] = frozenset()


@dataclass(frozen=True)
class WitnessedCheckpoint:
    """A checkpoint read from a witness; ``source`` names where (file and line, or URL)."""

    source: str
    checkpoint: SignedCheckpoint


@dataclass(frozen=True)
class TimeFinding:
    position: int
    code: Code
    message: str
    what: str  # TimestampBatch, Checkpoint, ...
    severity: Severity = Severity.ERROR
    order: int = 1


@dataclass
class TimeReport:
    findings: list[TimeFinding] = field(default_factory=list)
    batches: int = 0
    stamped: int = 0
    pending: int = 0
    oldest_pending_s: float = 0.0
    checkpoints: int = 0
    since_size: int | None = None
    witnessed: int = 0
    event_tokens: int = 0


def verify_trusted_time(
    store: EvidenceStore,
    inputs: TimeInputs,
    validator: CertificateValidator,
    now: datetime,
    since: SignedCheckpoint | None = None,
    *,
    event_tokens: Mapping[int, tuple[bytes, str]] | None = None,
    signature_values: Mapping[int, tuple[bytes, datetime]] | None = None,
    pending_grace: timedelta = DEFAULT_PENDING_GRACE,
    witnessed: Sequence[WitnessedCheckpoint] = (),
) -> TimeReport:
    report = TimeReport()
    leaves, times = inputs.leaves, inputs.times
    # With ``since``, the events the checkpoint covers are vouched for by its consistency proof:
    # their signatures are not checked again, so neither are their per-event tokens (which are
    # over those signatures' values); the tokens of the new events are.
    covered_by_since = (
        frozenset(inputs.positions[: since.size]) if since is not None else frozenset()
    )
    for position, (token, _gen_time) in sorted((event_tokens or {}).items()):
        if position in covered_by_since:
            continue
        report.event_tokens += 1
        reason = _event_token_problem(token, (signature_values or {}).get(position), validator)
        if reason:
            report.findings.append(
                TimeFinding(
                    position,
                    Code.SIGNATURE_TIMESTAMP_INVALID,
                    reason,
                    "SignatureTimestamp",
                    order=1,
                )
            )
    if event_tokens:
        # The stamper stamps every event from where it first saw per-event mode, resuming after
        # its last token: no event between the first and the last token is ever left out.
        first, last = min(event_tokens), max(event_tokens)
        for position in inputs.positions:
            if first < position < last and position not in event_tokens:
                report.findings.append(
                    TimeFinding(
                        position,
                        Code.SIGNATURE_TIMESTAMP_MISSING,
                        f"no per-event signature timestamp, though the events around it (from "
                        f"position {first} to {last}) have one: its token was deleted",
                        "SignatureTimestamp",
                    )
                )
    start = since.size if since is not None else 0
    gen_times: list[tuple[Batch, datetime]] = []
    covered = 0
    for batch in store.select_batches():
        end = batch.first_seq + batch.size
        found = _batch_problem(batch, covered, inputs, validator, gen_times, check=end > start)
        if found is not None:
            report.findings.append(found)
        covered = max(covered, end)
        report.batches += 1
    report.stamped = min(covered, len(leaves))
    report.pending = max(0, len(leaves) - covered)
    if report.pending:
        age = now - times[covered]
        report.oldest_pending_s = max(0.0, age.total_seconds())
        if age > pending_grace:
            report.findings.append(
                TimeFinding(
                    inputs.positions[covered],
                    Code.EVENTS_PENDING_TOO_LONG,
                    f"{report.pending} events from this one on are in no timestamp batch; the "
                    f"oldest has waited {_duration(age)}, longer than the "
                    f"{_duration(pending_grace)} the batch policy allows: their time is unproven "
                    "(no stamper ran, the TSA was unreachable, or batches were deleted)",
                    "TimestampBatch",
                    Severity.INDETERMINATE,
                )
            )
    stored_checkpoints = [SignedCheckpoint.from_stored(s) for s in store.select_checkpoints()]
    for checkpoint in stored_checkpoints:
        report.checkpoints += 1
        report.findings.extend(_checkpoint_findings(checkpoint, leaves, validator, "Checkpoint"))
        issued = datetime.fromisoformat(checkpoint.issued_at)
        for batch, gen_time in gen_times:
            if batch.first_seq + batch.size <= checkpoint.size and gen_time > issued + TOLERANCE:
                report.findings.append(
                    TimeFinding(
                        batch.first_position,
                        Code.BATCH_STAMPED_AFTER_CHECKPOINT,
                        f"batch at position {batch.first_position} was stamped "
                        f"{gen_time.isoformat()}, after the checkpoint of "
                        f"{checkpoint.issued_at} that covers it",
                        "Checkpoint",
                        order=2,
                    )
                )
                break
    if since is not None:
        report.since_size = since.size
        report.findings.extend(
            _checkpoint_findings(since, leaves, validator, "Checkpoint(--since)")
        )
    for entry in witnessed:
        report.witnessed += 1
        report.findings.extend(
            _checkpoint_findings(entry.checkpoint, leaves, validator, f"Witness {entry.source}")
        )
    if witnessed:
        seen = {(w.checkpoint.size, w.checkpoint.root) for w in witnessed}
        for checkpoint in stored_checkpoints:
            if (checkpoint.size, checkpoint.root) not in seen:
                report.findings.append(
                    TimeFinding(
                        checkpoint.head_position,
                        Code.CHECKPOINT_NOT_WITNESSED,
                        f"the stored checkpoint of {checkpoint.size} events "
                        f"({checkpoint.issued_at}) is not in the witness",
                        "Checkpoint",
                        Severity.WARNING,
                        order=2,
                    )
                )
    return report


def _checkpoint_findings(
    checkpoint: SignedCheckpoint,
    leaves: Sequence[bytes],
    validator: CertificateValidator,
    what: str,
) -> list[TimeFinding]:
    problems = [(Code.CHECKPOINT_INVALID, p) for p in checkpoint_problems(checkpoint, validator)]
    problems += [
        (Code.CHECKPOINT_INCONSISTENT, p) for p in consistency_problems(checkpoint, leaves)
    ]
    return [
        TimeFinding(checkpoint.head_position, code, message, what, order=2)
        for code, message in problems[:1]
    ]


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds // 60} min"
    return f"{seconds} s"


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
    inputs: TimeInputs,
    validator: CertificateValidator,
    gen_times: list[tuple[Batch, datetime]],
    *,
    check: bool,
) -> TimeFinding | None:
    """The batch's finding, filed at the exact bad event where one can be named."""
    leaves, positions, times = inputs.leaves, inputs.positions, inputs.times
    end = batch.first_seq + batch.size
    # A batch's token names its root, not its events: when an event in its range already has a
    # finding of its own (edited, deleted, moved), that event is where the batch fails too.
    bad = sorted(
        p for p in inputs.bad_positions if batch.first_position <= p <= batch.last_position
    )
    culprit = bad[0] if bad else batch.first_position

    def at(position: int, code: Code, message: str) -> TimeFinding:
        return TimeFinding(position, code, message, "TimestampBatch")

    if batch.first_seq != covered:
        return at(
            culprit,
            Code.BATCH_LAYOUT_INVALID,
            f"batch starts at log index {batch.first_seq}, expected {covered}: batches overlap "
            "or leave a gap",
        )
    if end > len(leaves):
        return at(
            culprit,
            Code.BATCH_LAYOUT_INVALID,
            f"batch covers {end} events but the ledger has {len(leaves)}: events removed",
        )
    if (positions[batch.first_seq], positions[end - 1]) != (
        batch.first_position,
        batch.last_position,
    ):
        return at(
            culprit,
            Code.BATCH_LAYOUT_INVALID,
            f"batch names positions {batch.first_position}-{batch.last_position} but its events "
            f"are at {positions[batch.first_seq]}-{positions[end - 1]}",
        )
    if not check:
        return None
    root = root_from_leaves(leaves[batch.first_seq : end])
    if root.hex() != batch.root:
        return at(
            culprit,
            Code.BATCH_ROOT_MISMATCH,
            f"the Merkle root of the batch at positions {batch.first_position}-"
            f"{batch.last_position} does not recompute from its events (an event was altered)",
        )
    try:
        stamp = verify_timestamp_token(batch.token, root, validator)
    except (SignatureInvalid, CertificateInvalid) as exc:
        code = (
            Code.TIMESTAMP_IMPRINT_MISMATCH
            if "imprint does not match" in str(exc)
            else Code.TIMESTAMP_INVALID
        )
        return at(batch.first_position, code, f"batch timestamp token does not verify: {exc}")
    gen_times.append((batch, stamp.gen_time))
    try:
        stored_time: datetime | None = datetime.fromisoformat(batch.gen_time)
    except ValueError:
        stored_time = None
    if stored_time != stamp.gen_time:
        return at(
            batch.first_position,
            Code.BATCH_TIME_MISMATCH,
            f"the stored batch time {batch.gen_time!r} is not the token's genTime "
            f"{stamp.gen_time.isoformat()}: the time shown for these events was edited",
        )
    latest_index = max(range(batch.first_seq, end), key=lambda i: times[i])
    if stamp.gen_time + TOLERANCE < times[latest_index]:
        return at(
            positions[latest_index],
            Code.TIMESTAMP_BEFORE_SIGNATURE,
            f"timestamp {stamp.gen_time.isoformat()} is earlier than a signature in its batch "
            f"({times[latest_index].isoformat()})",
        )
    return None
