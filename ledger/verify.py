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
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from cryptography import x509
from cryptography.x509.oid import NameOID
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import get_topic

from ledger.canonical import GENESIS_HASH, UPCAST_FIELDS, event_canonical_bytes, sha256_hex
from ledger.checkpoints import SignedCheckpoint
from ledger.events import LedgerAggregate
from ledger.merkle import leaf_hash
from ledger.personal import commit
from ledger.report import Code, Finding, Report, Severity
from ledger.rules import RuleSet, load_rule_set_ref
from ledger.stores import ChainLink, EvidenceStore
from ledger.verify_time import (
    DEFAULT_PENDING_GRACE,
    TimeInputs,
    WitnessedCheckpoint,
    verify_trusted_time,
)
from signing.errors import CertificateInvalid, SignatureInvalid
from signing.validation import CertificateValidator, verify_detached

#: Which workflow step's rules an event type answers to.
EVENT_STEPS: Mapping[str, str] = {
    "GeneralExamRecorded": "general_exam",
    "PreDonationTestRecorded": "pre_donation_test",
    "EligibilityAssessed": "eligibility",
    "ApheresisCollected": "collection",
}

MAX_FINDINGS = 100

#: Positions per range when verifying in worker processes: big enough that a range's start-up
#: (its first page, the per-process certificate caches) is small beside it, small enough that
#: what is in flight stays small whatever the ledger's size.
RANGE_EVENTS = 10_000
MIN_RANGE_EVENTS = 500

#: fork: a worker starts in milliseconds, with the parent's certificate caches (and keys), and
#: needs no importable main module; it opens the store itself (never the parent's
#: connections). Where there is no fork, spawn.
WORKER_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"

#: With ``workers`` left to the default, a ledger smaller than this is verified in one process:
#: starting a worker (spawn: imports, opening the store and the station PKI) costs about as
#: much as verifying a few thousand events.
PARALLEL_MIN_EVENTS = 20_000

#: A finding at one position: its code and one-line message.
Reason = tuple[Code, str]


@dataclass(frozen=True, kw_only=True)
class VerificationReport(Report):
    """What `ledger verify` found: the findings (first bad event first) and the counts."""

    kind: str = "ledger"
    events: int
    aggregates: int
    signatures: int
    signers: int
    event_types: Mapping[str, int]
    head_hash: str
    last_position: int
    batches: int = 0
    stamped: int = 0
    pending: int = 0
    oldest_pending_s: float = 0.0
    checkpoints: int = 0
    since_size: int | None = None
    witnessed: int = 0
    signature_timestamps: int = 0
    #: ``--since --new-only``: events before the checkpoint taken from the chain's stored hashes
    #: (their bodies not read).
    from_chain: int = 0

    def counts(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "aggregates": self.aggregates,
            "signatures": self.signatures,
            "signers": self.signers,
            "event_types": dict(self.event_types),
            "head_hash": self.head_hash,
            "last_position": self.last_position,
            "batches": self.batches,
            "stamped": self.stamped,
            "pending": self.pending,
            "oldest_pending_seconds": round(self.oldest_pending_s, 1),
            "checkpoints": self.checkpoints,
            "since_size": self.since_size,
            "witnessed_checkpoints": self.witnessed,
            "signature_timestamps": self.signature_timestamps,
            "events_from_chain": self.from_chain,
        }


@dataclass(frozen=True)
class _Raw:
    """A finding before the donation numbers are known (they come from later events)."""

    position: int
    code: Code
    message: str
    aggregate_id: str = ""
    event_type: str = ""
    severity: Severity = Severity.ERROR
    order: int = 0  # 0: the event's own finding; 1: its batch's; 2: checkpoints'


def _finding(raw: _Raw, donation_numbers: Mapping[str, str]) -> Finding:
    context = {}
    if raw.aggregate_id:
        context["aggregate_id"] = raw.aggregate_id
    number = donation_numbers.get(raw.aggregate_id, "")
    if number:
        context["donation_no"] = number
    if raw.event_type:
        context["event_type"] = raw.event_type
    where = (
        f"donation {number}"
        if number
        else (f"aggregate {raw.aggregate_id}" if raw.aggregate_id else "")
    )
    subject = ", ".join(
        part for part in (f"position {raw.position}", where, raw.event_type) if part
    )
    return Finding(raw.code, subject, raw.message, raw.severity, raw.position, context)


@dataclass
class _State:
    prev_hash: str = GENESIS_HASH
    prev_position: int = 0
    aggregates: dict[str, tuple[int, str]] = field(default_factory=dict)
    donation_numbers: dict[str, str] = field(default_factory=dict)
    findings: list[_Raw] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)
    signers: set[str] = field(default_factory=set)
    events: int = 0
    signatures: int = 0
    leaves: list[bytes] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    bad_positions: set[int] = field(default_factory=set)
    event_tokens: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    signature_values: dict[int, tuple[bytes, datetime]] = field(default_factory=dict)
    #: The ``--since`` checkpoint's size: leaves before it get hashes and links checked only.
    since_size: int | None = None
    #: Leaves before the first one of this state (a range that does not start the log).
    leaf_offset: int = 0
    #: A range verified in a worker does not know what came before it: it assumes the chain
    #: and each record's predecessor link up (``_Assumed``), and the merge checks that they do.
    assumed: _Assumed | None = None
    #: Leaves at the start of a range whose time is that of the leaf before the range.
    untimed_head: int = 0
    #: Leaves before the ``--since`` checkpoint taken from the chain rows (``new_only``).
    from_chain: int = 0

    def add_leaf(self, position: int, event_hash: str, time: datetime | None) -> None:
        self.leaves.append(leaf_hash(bytes.fromhex(event_hash)))
        self.positions.append(position)
        if time is None and not self.times and self.assumed is not None:
            self.untimed_head += 1
            time = _NO_TIME
        self.times.append(time or (self.times[-1] if self.times else datetime.now(UTC)))

    def full(self) -> bool:
        """Is the next leaf after the ``--since`` checkpoint (checked in full)?"""
        return self.since_size is None or self.leaf_offset + len(self.leaves) >= self.since_size


_NO_TIME = datetime.min.replace(tzinfo=UTC)


@dataclass
class _Assumed:
    """What a range verified on its own assumed about the log before it."""

    prev_hash: str | None = None  # the hash the range's first chain link points back to
    aggregates: dict[str, tuple[int, str]] = field(default_factory=dict)  # first sight of each


@dataclass
class _RangeResult:
    """One range's verification, to merge into the whole log's in position order."""

    lo: int
    hi: int
    state: _State
    truncated: bool
    last_position: int | None  # the last position the range holds, if any


class LedgerVerifier:
    """Verifies a ledger read through its recorder, with the station's trust anchors.

    ``pending_grace`` is how long an event may wait outside any timestamp batch before the
    verdict becomes INDETERMINATE (see ``ledger.verify_time``); ``witnessed`` are checkpoints
    read from a witness the database administrator does not control; ``now`` is the moment of
    verification (tests move it).
    """

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
        witnessed: Sequence[WitnessedCheckpoint] = (),
        pending_grace: timedelta = DEFAULT_PENDING_GRACE,
        now: datetime | None = None,
        workers: int = 1,
        worker_verifier: Callable[[], LedgerVerifier] | None = None,
        range_events: int | None = None,
        parallel_min_events: int = 0,
        new_only: bool = False,
    ) -> None:
        if new_only and since is None:
            raise ValueError("new_only needs a --since checkpoint")
        self.new_only = new_only
        self.workers = workers
        self.parallel_min_events = parallel_min_events
        self.worker_verifier = worker_verifier
        self.range_events = range_events
        self.since = since
        self.witnessed = tuple(witnessed)
        self.pending_grace = pending_grace
        self.now = now
        self.recorder = recorder
        self.select_notifications = select_notifications
        self.mapper = mapper
        self.validator = validator
        self.batch_size = batch_size
        self._rule_sets = rule_sets
        self._rule_set_cache: dict[str, RuleSet] = {}
        self._roles: dict[int, tuple[x509.Certificate, str | None]] = {}

    def verify(self, progress: Callable[[int], None] | None = None) -> VerificationReport:
        state = self._new_state()
        truncated = False
        start = 1
        if self.new_only:
            start = self._prefix_from_chain(state)
        if self.workers > 1 and self.worker_verifier is not None:
            truncated = self._verify_parallel(state, progress, start)
        else:
            truncated = self._verify_range(state, start, None, progress)
        return self._report(state, truncated)

    def _prefix_from_chain(self, state: _State) -> int:
        """``--since --new-only``: the events the checkpoint covers, from the chain rows alone.

        Each row's stored hash is its Merkle leaf and its record's latest hash; the links
        between rows are checked. The bodies are not read, so an event before the checkpoint
        edited in place is not seen here (a full verification sees it); what is proven is that
        the chain the checkpoint signed is still the log's prefix (the consistency proof on
        these leaves) and everything after it in full. Returns the first position to verify
        in full."""
        assert self.since is not None
        size = self.since.size
        cursor = 0
        while len(state.leaves) < size:
            links = self.recorder.select_chain(cursor, self.batch_size)
            if not links:
                break
            for link in links[: size - len(state.leaves)]:
                if link.prev_hash != state.prev_hash:
                    after = f"position {state.prev_position}" if state.prev_position else "genesis"
                    state.findings.append(
                        _Raw(
                            link.position,
                            Code.CHAIN_LINK_MISMATCH,
                            f"chain link broken: prev_hash {link.prev_hash[:16]}... is not the "
                            f"hash of the event before it ({after})",
                            str(link.originator_id),
                        )
                    )
                    state.bad_positions.add(link.position)
                state.add_leaf(link.position, link.event_hash, _NO_TIME)
                state.aggregates[str(UUID(str(link.originator_id)))] = (
                    link.originator_version,
                    link.event_hash,
                )
                state.prev_hash, state.prev_position = link.event_hash, link.position
            cursor = links[-1].position
        state.from_chain = len(state.leaves)
        return state.prev_position + 1

    def _new_state(self) -> _State:
        return _State(
            event_tokens=dict(self.recorder.select_event_timestamps()),
            since_size=self.since.size if self.since is not None else None,
        )

    def _verify_range(
        self,
        state: _State,
        lo: int,
        hi: int | None,
        progress: Callable[[int], None] | None = None,
    ) -> bool:
        """Verify positions ``lo`` to ``hi`` (None: to the end) into *state*; True when it
        stopped at ``MAX_FINDINGS``."""
        for position, notification, link in self._merged(lo, hi):
            if len(state.findings) >= MAX_FINDINGS:
                return True
            self._verify_one(state, position, notification, link)
            if progress is not None:
                progress(position)
        return False

    def verify_range(self, lo: int, hi: int | None) -> _RangeResult:
        """One range on its own, as a worker verifies it (``_verify_parallel`` merges)."""
        state = self._new_state()
        state.assumed = _Assumed()
        state.prev_hash, state.prev_position = "", 0
        state.leaf_offset = lo - 1  # positions are dense in a log nobody edited
        truncated = self._verify_range(state, lo, hi)
        last = state.prev_position or None
        return _RangeResult(lo, hi if hi is not None else 0, state, truncated, last)

    def _verify_parallel(
        self, state: _State, progress: Callable[[int], None] | None, start: int = 1
    ) -> bool:
        """Contiguous ranges verified by worker processes, merged in position order into
        *state*, so that the report is the serial one: where a range's assumptions about the
        log before it do not hold (an edited, deleted or moved event at its start, a record
        whose previous event is not what it links to), or the findings reach the cap, that
        range is verified again here, in order, from the merged state."""
        head = self.recorder.chain_head()
        last = head.position if head is not None else 0
        # Four ranges a worker at least (a slow range then holds no one up for long), at most
        # RANGE_EVENTS each (what is in flight stays small, whatever the ledger's size).
        step = self.range_events or max(
            MIN_RANGE_EVENTS, min(RANGE_EVENTS, -(-(last - start + 1) // (4 * self.workers)))
        )
        bounds: list[tuple[int, int | None]] = [
            (lo, lo + step - 1) for lo in range(start, max(last, start) + 1, step)
        ]
        bounds[-1] = (bounds[-1][0], None)  # the last range runs to the end of the log
        if len(bounds) == 1 or last - start + 1 < self.parallel_min_events:
            return self._verify_range(state, start, None, progress)
        context = multiprocessing.get_context(WORKER_START_METHOD)
        with context.Pool(
            min(self.workers, len(bounds)),
            initializer=_start_worker,
            initargs=(self.worker_verifier,),
        ) as pool:
            for result in pool.imap(_verify_in_worker, bounds):
                stopped = self._merge(state, result)
                if stopped is not None:
                    return stopped
                if progress is not None and result.last_position is not None:
                    progress(result.last_position)
        return False

    def _merge(self, state: _State, result: _RangeResult) -> bool | None:
        """Add a range's result to *state*, or verify the range again here when the range's
        assumptions do not hold. None: go on with the next range; a bool: the log was verified
        to its end here, or to the cap on findings (True)."""
        part = result.state
        assumed = part.assumed or _Assumed()
        if result.truncated or len(state.findings) + len(part.findings) >= MAX_FINDINGS:
            # The cap is reached in this range: the rest is verified here, in order.
            return self._verify_range(state, result.lo, None)
        holds = (
            (assumed.prev_hash is None or assumed.prev_hash == state.prev_hash)
            and all(
                state.aggregates.get(aggregate_id, (0, GENESIS_HASH)) == predecessor
                for aggregate_id, predecessor in assumed.aggregates.items()
            )
            and _same_full_checks(state, part)
        )
        if not holds:
            return True if self._verify_range(state, result.lo, result.hi or None) else None
        if part.untimed_head:
            before = state.times[-1] if state.times else datetime.now(UTC)
            part.times[: part.untimed_head] = [before] * part.untimed_head
        state.findings.extend(part.findings)
        state.bad_positions |= part.bad_positions
        state.types.update(part.types)
        state.signers |= part.signers
        state.events += part.events
        state.signatures += part.signatures
        state.leaves.extend(part.leaves)
        state.positions.extend(part.positions)
        state.times.extend(part.times)
        state.signature_values.update(part.signature_values)
        state.aggregates.update(part.aggregates)
        state.donation_numbers.update(part.donation_numbers)
        if result.last_position is not None:
            state.prev_hash, state.prev_position = part.prev_hash, part.prev_position
        return None

    def _report(self, state: _State, truncated: bool) -> VerificationReport:
        timing = verify_trusted_time(
            self.recorder,
            TimeInputs(state.leaves, state.positions, state.times, frozenset(state.bad_positions)),
            self.validator,
            self.now or datetime.now(UTC),
            self.since,
            event_tokens=state.event_tokens,
            signature_values=state.signature_values,
            pending_grace=self.pending_grace,
            witnessed=self.witnessed,
        )
        for found in timing.findings:
            state.findings.append(
                _Raw(
                    found.position,
                    found.code,
                    found.message,
                    event_type=found.what,
                    severity=found.severity,
                    order=found.order,
                )
            )
        if truncated:
            state.findings.append(
                _Raw(
                    state.prev_position,
                    Code.FINDINGS_TRUNCATED,
                    f"verification stopped after {MAX_FINDINGS} findings",
                    severity=Severity.INDETERMINATE,
                    order=3,
                )
            )
        # The first bad event first; at one position, the event's own finding before its batch's.
        state.findings.sort(key=lambda f: (f.position, f.order))
        return VerificationReport(
            findings=tuple(_finding(f, state.donation_numbers) for f in state.findings),
            events=state.events,
            aggregates=len(state.aggregates),
            signatures=state.signatures,
            signers=len(state.signers),
            event_types=dict(state.types),
            head_hash=state.prev_hash,
            last_position=state.prev_position,
            batches=timing.batches,
            stamped=timing.stamped,
            pending=timing.pending,
            oldest_pending_s=timing.oldest_pending_s,
            checkpoints=timing.checkpoints,
            since_size=timing.since_size,
            witnessed=timing.witnessed,
            signature_timestamps=timing.event_tokens,
            from_chain=state.from_chain,
        )

    # -- reading ------------------------------------------------------------------------------

    def _merged(
        self, lo: int = 1, hi: int | None = None
    ) -> Iterator[tuple[int, Notification | None, ChainLink | None]]:
        """Stored events and chain rows side by side, by position (either may be missing), from
        position *lo* to *hi* (None: the end of the log)."""
        cursor = lo - 1
        while hi is None or cursor < hi:
            page_notes = list(self.select_notifications(cursor + 1, self.batch_size))
            page_links = list(self.recorder.select_chain(cursor, self.batch_size))
            # Everything up to `stop` is in both pages: a full page may have stopped short.
            stop = hi
            if len(page_notes) == self.batch_size:
                stop = page_notes[-1].id if stop is None else min(stop, page_notes[-1].id)
            if len(page_links) == self.batch_size:
                end = page_links[-1].position
                stop = end if stop is None else min(stop, end)
            by_note = {n.id: n for n in page_notes if stop is None or n.id <= stop}
            by_link = {k.position: k for k in page_links if stop is None or k.position <= stop}
            for position in sorted(set(by_note) | set(by_link)):
                yield position, by_note.get(position), by_link.get(position)
            if stop is None or stop == hi:  # everything up to the end or to `hi` was read
                return
            cursor = stop

    # -- checking -----------------------------------------------------------------------------

    def _verify_one(
        self,
        state: _State,
        position: int,
        notification: Notification | None,
        link: ChainLink | None,
    ) -> None:
        def fail(aggregate_id: str, event_type: str, reason: Reason) -> None:
            state.findings.append(_Raw(position, reason[0], reason[1], aggregate_id, event_type))
            state.bad_positions.add(position)

        if notification is None:
            assert link is not None
            fail(
                link.originator_id,
                "?",
                (Code.EVENT_MISSING, "chain entry without a stored event (event deleted)"),
            )
            self._advance_by_link(state, position, link, None)
            return
        aggregate_id = str(notification.originator_id)
        event_type = notification.topic.rsplit(".", 1)[-1]
        state.events += 1
        state.types[event_type] += 1
        try:
            event = self.mapper.to_domain_event(notification)
            if not isinstance(event, LedgerAggregate.Event):
                raise _NotLedgerEvent(f"{get_topic(type(event))} is not a ledger event")
            # Inside the guard: a state that decoded to another event type may lack fields.
            body = event_canonical_bytes(event)
            _check_evidence_fields(event)
        except _NotLedgerEvent as exc:
            fail(aggregate_id, event_type, (Code.EVENT_NOT_LEDGER_EVENT, str(exc)))
            self._advance_by_link(state, position, link, notification)
            return
        except Exception as exc:  # any decoding failure of stored bytes is a finding
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            fail(
                aggregate_id,
                event_type,
                (Code.EVENT_UNDECODABLE, f"stored event cannot be decoded: {message}"),
            )
            self._advance_by_link(state, position, link, notification)
            return
        digest = sha256_hex(body)
        full = state.full()
        state.add_leaf(position, digest, event.timestamp)
        reasons = self._chain_reasons(state, position, event, digest, link)
        reasons.extend(self._aggregate_reasons(state, aggregate_id, event, digest))
        if not reasons:
            reasons.extend(_personal_reasons(event))
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

    @staticmethod
    def _advance_by_link(
        state: _State, position: int, link: ChainLink | None, notification: Notification | None
    ) -> None:
        """An event whose body cannot be read still holds its place: the chain row's hash is
        its Merkle leaf and the next event's expected link, and its aggregate's version moves on,
        so the events after it are judged on their own (no false "deleted" or "broken link")."""
        if link is None:
            return  # not in the chain either: it takes no place in the log
        state.add_leaf(position, link.event_hash, None)
        state.prev_hash, state.prev_position = link.event_hash, position
        if notification is not None:
            state.aggregates[str(notification.originator_id)] = (
                int(notification.originator_version),
                link.event_hash,
            )

    def _chain_reasons(
        self,
        state: _State,
        position: int,
        event: LedgerAggregate.Event,
        digest: str,
        link: ChainLink | None,
    ) -> list[Reason]:
        if link is None:
            return [
                (
                    Code.CHAIN_ENTRY_MISSING,
                    "stored event has no chain entry (inserted outside the ledger)",
                )
            ]
        reasons: list[Reason] = []
        if digest != event.event_hash:
            reasons.append(
                (
                    Code.EVENT_HASH_MISMATCH,
                    "canonical hash does not match the event's recorded hash (payload edited): "
                    f"computed {digest[:16]}..., recorded {event.event_hash[:16]}...",
                )
            )
        if not _same_id(link.originator_id, event.originator_id) or (
            link.originator_version != event.originator_version
        ):
            reasons.append(
                (
                    Code.CHAIN_ENTRY_MISMATCH,
                    "chain entry names another event "
                    f"({link.originator_id} v{link.originator_version}): events were moved",
                )
            )
        elif link.event_hash != digest and digest == event.event_hash:
            reasons.append(
                (
                    Code.CHAIN_ENTRY_MISMATCH,
                    f"chain records hash {link.event_hash[:16]}... but the event hashes to "
                    f"{digest[:16]}... (event replaced)",
                )
            )
        if state.assumed is not None and state.prev_position == 0:
            # The first link of a range verified on its own: the merge checks it.
            if state.assumed.prev_hash is None:
                state.assumed.prev_hash = link.prev_hash
            state.prev_hash = link.prev_hash
        if link.prev_hash != state.prev_hash:
            after = f"position {state.prev_position}" if state.prev_position else "genesis"
            reasons.append(
                (
                    Code.CHAIN_LINK_MISMATCH,
                    f"chain link broken: prev_hash {link.prev_hash[:16]}... is not the hash of "
                    f"the event before it ({after}): an event was deleted, inserted or reordered",
                )
            )
        return reasons

    @staticmethod
    def _aggregate_reasons(
        state: _State, aggregate_id: str, event: LedgerAggregate.Event, digest: str
    ) -> list[Reason]:
        known = state.aggregates.get(aggregate_id)
        if known is None and state.assumed is not None:
            # First sight in a range verified on its own: the merge checks the predecessor.
            known = (event.originator_version - 1, event.prev_hash)
            state.assumed.aggregates[aggregate_id] = known
        version, head = known if known is not None else (0, GENESIS_HASH)
        state.aggregates[aggregate_id] = (event.originator_version, digest)
        if event.originator_version != version + 1:
            return [
                (
                    Code.AGGREGATE_VERSION_GAP,
                    f"aggregate version {event.originator_version} follows version {version}: "
                    "an event of this record is missing or out of order",
                )
            ]
        if event.prev_hash != head:
            return [
                (
                    Code.AGGREGATE_LINK_MISMATCH,
                    "signed prev_hash does not link to the previous event of this record "
                    "(an event of this record was removed or replaced)",
                )
            ]
        return []

    def _signature_reasons(
        self, state: _State, position: int, event: LedgerAggregate.Event, body: bytes
    ) -> list[Reason]:
        try:
            signature = _b64decode(event.signature)
        except (binascii.Error, ValueError):
            return [(Code.SIGNATURE_INVALID, "signature is not base64")]
        if not signature:
            return [(Code.SIGNATURE_MISSING, "event has no signature")]
        try:
            verified = verify_detached(signature, body)
        except SignatureInvalid as exc:
            return [(Code.SIGNATURE_INVALID, f"signature does not verify: {exc.reason}")]
        state.signatures += 1
        if verified.subject_id != event.actor:
            return [
                (
                    Code.SIGNER_NOT_ACTOR,
                    f"signed by {verified.subject_id}, but the event's actor is {event.actor} "
                    "(a certificate that is not the actor's)",
                )
            ]
        kind = event.actor.split(":", 1)[0]
        if {"DONOR": "donor", "SYSTEM": "system"}.get(kind, event.actor_role) != event.actor_role:
            return [
                (
                    Code.ACTOR_ROLE_MISMATCH,
                    f"actor {event.actor} cannot act in the role {event.actor_role}",
                )
            ]
        role = self._certificate_role(verified.signer_certificate)
        if role is not None and role != event.actor_role:
            return [
                (
                    Code.ACTOR_ROLE_MISMATCH,
                    f"signer certificate role {role} is not the event's role {event.actor_role}",
                )
            ]
        if int(verified.signing_time.timestamp()) != int(event.timestamp.timestamp()):
            return [
                (
                    Code.SIGNING_TIME_MISMATCH,
                    f"CMS signing time {verified.signing_time.isoformat()} is not the event "
                    f"time {event.timestamp.isoformat()}",
                )
            ]
        # By identity, not `!=` (which costs about 5 µs a certificate): certificates come from
        # a cache keyed by their DER bytes, so within one signature equal certificates are the
        # same object (signing._cms_parse.certificate_facts).
        signer = verified.signer_certificate
        intermediates = [c for c in verified.certificates if c is not signer]
        try:
            self.validator.validate(verified.signer_certificate, intermediates, event.timestamp)
        except CertificateInvalid as exc:
            code = (
                Code.SIGNER_CERT_REVOKED
                if " revoked on " in exc.reason
                else (Code.SIGNER_CERT_INVALID)
            )
            return [(code, f"signer certificate not valid at signing time: {exc.reason}")]
        state.signers.add(verified.subject_id)
        if position in state.event_tokens:
            state.signature_values[position] = (verified.signature_value, event.timestamp)
        return []

    def _rule_reasons(self, event_type: str, event: LedgerAggregate.Event) -> list[Reason]:
        if not event.rule_set:
            if event.rule_outcomes:
                return [
                    (
                        Code.RULE_OUTCOME_MISMATCH,
                        "rule outcomes recorded without a rule set version",
                    )
                ]
            return []
        try:
            rule_set = self._rule_set(event.rule_set)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            return [(Code.RULE_SET_UNKNOWN, f"unknown rule set {event.rule_set}: {exc}")]
        return [
            (Code.RULE_OUTCOME_MISMATCH, problem)
            for problem in check_outcomes(rule_set, event, EVENT_STEPS.get(event_type))
        ]

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


def _same_full_checks(state: _State, part: _State) -> bool:
    """Did the range check in full (``--since``) exactly the leaves the serial pass would?"""
    if state.since_size is None:
        return True
    count = len(part.leaves)
    assumed = min(max(state.since_size - part.leaf_offset, 0), count)
    actual = min(max(state.since_size - len(state.leaves), 0), count)
    return assumed == actual


_WORKER: list[LedgerVerifier] = []


def _start_worker(make: Callable[[], LedgerVerifier]) -> None:
    """In a worker process: open the ledger once (its caches then serve every range)."""
    _WORKER.append(make())


def _verify_in_worker(bounds: tuple[int, int | None]) -> _RangeResult:
    result = _WORKER[0].verify_range(*bounds)
    result.state.event_tokens = {}  # the parent has them
    return result


class _NotLedgerEvent(Exception):
    pass


def _check_evidence_fields(event: LedgerAggregate.Event) -> None:
    """The fields every check reads must be text: an edited state may hold anything there."""
    for name in ("event_hash", "signature", "actor", "prev_hash"):
        value = event.__dict__.get(name)
        if not isinstance(value, str):
            raise ValueError(f"{name} is {type(value).__name__}, not text")


def _personal_reasons(event: LedgerAggregate.Event) -> list[Reason]:
    """The clear personal values stored beside the body match the commitments it signs."""
    personal: Mapping[str, str] = getattr(type(event), "PERSONAL_FIELDS", {})
    added = event.__dict__.get(UPCAST_FIELDS, ())
    for clear, commitment in personal.items():
        if commitment in added or not event.__dict__.get(commitment):
            continue  # recorded before commitments, or not committed: the clear value is signed
        try:
            expected = commit(
                str(event.__dict__["personal_salt"]), clear, str(getattr(event, clear))
            )
        except (KeyError, ValueError) as exc:
            return [
                (Code.PERSONAL_DATA_MISMATCH, f"cannot recompute the {clear} commitment: {exc}")
            ]
        if expected != getattr(event, commitment):
            return [
                (
                    Code.PERSONAL_DATA_MISMATCH,
                    f"the stored {clear} does not match the signed {commitment} (edited)",
                )
            ]
    return []


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
