"""Ledger verification: recompute every canonical hash, chain link and signature.

Steps, for each stored event in global order (docs/design.md):

1. decode the stored event and rebuild its canonical body (RFC 8785);
2. the body's SHA-256 equals the hash the event and the chain recorded (no edited payload);
3. the chain row's ``prev_hash`` is the hash of the previous event (nothing deleted, inserted or
   moved); its aggregate's version follows the previous one and the signed ``prev_hash``
   links to it;
4. the detached CMS signature verifies over the canonical bytes, its signing time is the event's
   time, and the signer certificate's subject is the event's actor (and role);
5. the signer certificate chains to the station's trust root and was valid and unrevoked at
   signing time (a donor certificate lives 24 h);
6. the recorded rule outcomes are those the named rule set version gives for the recorded values.

The checking half only: nothing here can sign.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from cryptography import x509
from cryptography.x509.oid import NameOID
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import get_topic

from ledger.canonical import GENESIS_HASH, event_canonical_bytes, sha256_hex
from ledger.checkpoints import SignedCheckpoint
from ledger.events import LedgerAggregate
from ledger.merkle import leaf_hash
from ledger.rules import RuleSet, load_rule_set_ref
from ledger.stores import ChainLink, EvidenceStore
from ledger.verify_time import verify_trusted_time
from signing.errors import CertificateInvalid, SignatureInvalid
from signing.validation import CertificateValidator, verify_detached

#: Which workflow step's rules an event type answers to.
EVENT_STEPS: Mapping[str, str] = {
    "GeneralExamRecorded": "general_exam",
    "PreDonationTestRecorded": "pre_donation_test",
    "EligibilityAssessed": "eligibility",
    "ApheresisCollected": "collection",
}

MAX_FAILURES = 100


@dataclass(frozen=True)
class Failure:
    """One event that does not verify, and why."""

    position: int
    aggregate_id: str
    event_type: str
    reason: str
    donation_no: str = ""

    def describe(self) -> str:
        where = (
            f"donation {self.donation_no}" if self.donation_no else f"aggregate {self.aggregate_id}"
        )
        return f"position {self.position}, {where}, {self.event_type}: {self.reason}"


@dataclass(frozen=True)
class VerificationReport:
    events: int
    aggregates: int
    signatures: int
    signers: int
    event_types: Mapping[str, int]
    failures: tuple[Failure, ...]
    head_hash: str
    last_position: int
    batches: int = 0
    stamped: int = 0
    pending: int = 0
    oldest_pending_s: float = 0.0
    checkpoints: int = 0
    since_size: int | None = None
    signature_timestamps: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None


@dataclass
class _State:
    prev_hash: str = GENESIS_HASH
    prev_position: int = 0
    aggregates: dict[str, tuple[int, str]] = field(default_factory=dict)
    donation_numbers: dict[str, str] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)
    signers: set[str] = field(default_factory=set)
    events: int = 0
    signatures: int = 0
    leaves: list[bytes] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    event_tokens: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    signature_values: dict[int, tuple[bytes, datetime]] = field(default_factory=dict)


class LedgerVerifier:
    """Verifies a ledger read through its recorder, with the station's trust anchors."""

    def __init__(
        self,
        recorder: EvidenceStore,
        select_notifications: Callable[[int, int], Sequence[Notification]],
        mapper: Mapper[UUID],
        validator: CertificateValidator,
        *,
        batch_size: int = 2000,
        rule_sets: Callable[[str], RuleSet] = load_rule_set_ref,
        since: SignedCheckpoint | None = None,
    ) -> None:
        self.since = since
        self.recorder = recorder
        self.select_notifications = select_notifications
        self.mapper = mapper
        self.validator = validator
        self.batch_size = batch_size
        self._rule_sets = rule_sets
        self._rule_set_cache: dict[str, RuleSet] = {}
        self._roles: dict[int, tuple[x509.Certificate, str | None]] = {}

    def verify(self, progress: Callable[[int], None] | None = None) -> VerificationReport:
        state = _State(event_tokens=dict(self.recorder.select_event_timestamps()))
        for position, notification, link in self._merged():
            if len(state.failures) >= MAX_FAILURES:
                break
            self._verify_one(state, position, notification, link)
            if progress is not None:
                progress(position)
        timing = verify_trusted_time(
            self.recorder,
            state.leaves,
            state.positions,
            state.times,
            self.validator,
            datetime.now(UTC),
            self.since,
            event_tokens=state.event_tokens,
            signature_values=state.signature_values,
        )
        for position, kind, reason in timing.failures:
            state.failures.append(Failure(position, "", kind, reason))
        state.failures.sort(key=lambda f: f.position)
        failures = tuple(
            Failure(
                f.position,
                f.aggregate_id,
                f.event_type,
                f.reason,
                state.donation_numbers.get(f.aggregate_id, ""),
            )
            for f in state.failures
        )
        return VerificationReport(
            events=state.events,
            aggregates=len(state.aggregates),
            signatures=state.signatures,
            signers=len(state.signers),
            event_types=dict(state.types),
            failures=failures,
            head_hash=state.prev_hash,
            last_position=state.prev_position,
            batches=timing.batches,
            stamped=timing.stamped,
            pending=timing.pending,
            oldest_pending_s=timing.oldest_pending_s,
            checkpoints=timing.checkpoints,
            since_size=timing.since_size,
            signature_timestamps=timing.event_tokens,
        )

    # -- reading ------------------------------------------------------------------------------

    def _merged(self) -> Iterator[tuple[int, Notification | None, ChainLink | None]]:
        """Stored events and chain rows side by side, by position (either may be missing)."""
        cursor = 0
        while True:
            notes = list(self.select_notifications(cursor + 1, self.batch_size))
            stop = notes[-1].id if notes else None
            links = [
                link
                for link in self.recorder.select_chain(cursor, self.batch_size * 2)
                if stop is None or link.position <= stop
            ]
            if not notes and not links:
                return
            by_note = {n.id: n for n in notes}
            by_link = {link.position: link for link in links}
            positions = sorted(set(by_note) | set(by_link))
            for position in positions:
                yield position, by_note.get(position), by_link.get(position)
            cursor = positions[-1]

    # -- checking -----------------------------------------------------------------------------

    def _verify_one(
        self,
        state: _State,
        position: int,
        notification: Notification | None,
        link: ChainLink | None,
    ) -> None:
        def fail(aggregate_id: str, event_type: str, reason: str) -> None:
            state.failures.append(Failure(position, aggregate_id, event_type, reason))

        if notification is None:
            assert link is not None
            fail(link.originator_id, "?", "chain entry without a stored event (event deleted)")
            state.prev_hash, state.prev_position = link.event_hash, position
            state.leaves.append(leaf_hash(bytes.fromhex(link.event_hash)))
            state.positions.append(position)
            state.times.append(state.times[-1] if state.times else datetime.now(UTC))
            return
        aggregate_id = str(notification.originator_id)
        event_type = notification.topic.rsplit(".", 1)[-1]
        try:
            event = self.mapper.to_domain_event(notification)
        except Exception as exc:  # any decoding failure of stored bytes is a finding
            fail(aggregate_id, event_type, f"stored event cannot be decoded: {exc}")
            return
        state.events += 1
        state.types[event_type] += 1
        if not isinstance(event, LedgerAggregate.Event):
            fail(aggregate_id, event_type, f"{get_topic(type(event))} is not a ledger event")
            return
        body = event_canonical_bytes(event)
        digest = sha256_hex(body)
        full = self.since is None or len(state.leaves) >= self.since.size
        state.leaves.append(leaf_hash(bytes.fromhex(digest)))
        state.positions.append(position)
        state.times.append(event.timestamp)
        reasons = self._chain_reasons(state, position, event, digest, link)
        reasons.extend(self._aggregate_reasons(state, aggregate_id, event, digest))
        if not reasons and full:
            reasons.extend(self._signature_reasons(state, position, event, body))
        if not reasons and full:
            reasons.extend(self._rule_reasons(event_type, event))
        for reason in reasons[:1]:
            fail(aggregate_id, event_type, reason)
        if event_type == "DonationNumberAssigned":
            state.donation_numbers[aggregate_id] = str(event.donation_no)  # type: ignore[attr-defined]
        state.prev_hash = link.event_hash if link is not None else digest
        state.prev_position = position

    def _chain_reasons(
        self,
        state: _State,
        position: int,
        event: LedgerAggregate.Event,
        digest: str,
        link: ChainLink | None,
    ) -> list[str]:
        if link is None:
            return ["stored event has no chain entry (inserted outside the ledger)"]
        reasons = []
        if digest != event.event_hash:
            reasons.append(
                "canonical hash does not match the event's recorded hash (payload edited): "
                f"computed {digest[:16]}..., recorded {event.event_hash[:16]}..."
            )
        if not _same_id(link.originator_id, event.originator_id) or (
            link.originator_version != event.originator_version
        ):
            reasons.append(
                "chain entry names another event "
                f"({link.originator_id} v{link.originator_version}): events were moved"
            )
        elif link.event_hash != digest and digest == event.event_hash:
            reasons.append(
                f"chain records hash {link.event_hash[:16]}... but the event hashes to "
                f"{digest[:16]}... (event replaced)"
            )
        if link.prev_hash != state.prev_hash:
            after = f"position {state.prev_position}" if state.prev_position else "genesis"
            reasons.append(
                f"chain link broken: prev_hash {link.prev_hash[:16]}... is not the hash of the "
                f"event before it ({after}): an event was deleted, inserted or reordered"
            )
        return reasons

    @staticmethod
    def _aggregate_reasons(
        state: _State, aggregate_id: str, event: LedgerAggregate.Event, digest: str
    ) -> list[str]:
        version, head = state.aggregates.get(aggregate_id, (0, GENESIS_HASH))
        state.aggregates[aggregate_id] = (event.originator_version, digest)
        reasons = []
        if event.originator_version != version + 1:
            reasons.append(
                f"aggregate version {event.originator_version} follows version {version}: "
                "an event of this record is missing or out of order"
            )
        elif event.prev_hash != head:
            reasons.append(
                "signed prev_hash does not link to the previous event of this record "
                "(an event of this record was removed or replaced)"
            )
        return reasons

    def _signature_reasons(
        self, state: _State, position: int, event: LedgerAggregate.Event, body: bytes
    ) -> list[str]:
        try:
            signature = _b64decode(event.signature)
        except (binascii.Error, ValueError):
            return ["signature is not base64"]
        if not signature:
            return ["event has no signature"]
        try:
            verified = verify_detached(signature, body)
        except SignatureInvalid as exc:
            return [f"signature does not verify: {exc.reason}"]
        state.signatures += 1
        if verified.subject_id != event.actor:
            return [
                f"signed by {verified.subject_id}, but the event's actor is {event.actor} "
                "(a certificate that is not the actor's)"
            ]
        kind = event.actor.split(":", 1)[0]
        if {"DONOR": "donor", "SYSTEM": "system"}.get(kind, event.actor_role) != event.actor_role:
            return [f"actor {event.actor} cannot act in the role {event.actor_role}"]
        role = self._certificate_role(verified.signer_certificate)
        if role is not None and role != event.actor_role:
            return [f"signer certificate role {role} is not the event's role {event.actor_role}"]
        if int(verified.signing_time.timestamp()) != int(event.timestamp.timestamp()):
            return [
                f"CMS signing time {verified.signing_time.isoformat()} is not the event time "
                f"{event.timestamp.isoformat()}"
            ]
        intermediates = [c for c in verified.certificates if c != verified.signer_certificate]
        try:
            self.validator.validate(verified.signer_certificate, intermediates, event.timestamp)
        except CertificateInvalid as exc:
            return [f"signer certificate not valid at signing time: {exc.reason}"]
        state.signers.add(verified.subject_id)
        if position in state.event_tokens:
            state.signature_values[position] = (verified.signature_value, event.timestamp)
        return []

    def _rule_reasons(self, event_type: str, event: LedgerAggregate.Event) -> list[str]:
        if not event.rule_set:
            if event.rule_outcomes:
                return ["rule outcomes recorded without a rule set version"]
            return []
        try:
            rule_set = self._rule_set(event.rule_set)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            return [f"unknown rule set {event.rule_set}: {exc}"]
        return check_outcomes(rule_set, event, EVENT_STEPS.get(event_type))

    def _certificate_role(self, certificate: x509.Certificate) -> str | None:
        # By identity (the entry keeps the object alive): hashing a Certificate costs µs.
        known = self._roles.get(id(certificate))
        if known is None or known[0] is not certificate:
            known = (certificate, _certificate_role(certificate))
            self._roles[id(certificate)] = known
        return known[1]

    def _rule_set(self, ref: str) -> RuleSet:
        if ref not in self._rule_set_cache:
            self._rule_set_cache[ref] = self._rule_sets(ref)
        return self._rule_set_cache[ref]


_CONSISTENT = {
    True: ("pass",),
    False: ("fail", "overridden", "alert", "acknowledged"),
}


def check_outcomes(rule_set: RuleSet, event: LedgerAggregate.Event, step: str | None) -> list[str]:
    """Each recorded outcome must be the rule set's verdict on the recorded value, and an
    amendment's signer a role its amendment policy allows (``ledger.controls.recheck_event``)."""
    from ledger.controls import recheck_event

    return recheck_event(rule_set, event, step)[:1]


def _b64decode(text: str) -> bytes:
    """``base64.b64decode(text, validate=True)``, by binascii's strict mode where that accepts
    (the canonical encodings we write; it accepts a subset of what ``validate=True`` accepts,
    with the same bytes, and skips its regular expression), else by ``b64decode`` itself."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return base64.b64decode(text, validate=True)


def _same_id(stored: str, originator_id: UUID) -> bool:
    """``UUID(stored) == originator_id``, without parsing the common spellings (SQLite keeps
    the hex form, PostgreSQL gives the hyphenated one)."""
    if stored == originator_id.hex or stored == str(originator_id):
        return True
    return UUID(stored) == originator_id


def _certificate_role(certificate: x509.Certificate) -> str | None:
    titles = certificate.subject.get_attributes_for_oid(NameOID.TITLE)
    return str(titles[0].value) if titles else None
