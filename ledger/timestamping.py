"""Trusted time for the ledger: Merkle batches of appended events, each root RFC 3161-stamped.

Appending never waits for a TSA. A stamper picks up the chain rows after the last stamped batch,
groups them (by count, or once the oldest has waited long enough), builds an RFC 6962 Merkle tree
over their event hashes, asks a TSA for a token over the root (the message imprint *is* the
32-byte root), and records the batch. When no TSA answers, the events stay pending and durable;
the stamper backs off and stamps them on recovery.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.merkle import inclusion_proof, leaf_hash, root_from_leaves
from ledger.stores import Batch, BatchConflict, ChainLink, EvidenceStore
from signing.errors import SigningError
from signing.timestamps import TimeStamper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchPolicy:
    """When a batch is cut: at ``max_events`` pending events or after ``max_delay_ms``."""

    max_events: int = 256
    max_delay_ms: int = 500
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_delay_ms < 0:
            raise ValueError("a batch needs at least one event and a non-negative delay")


def leaves_of(links: Sequence[ChainLink]) -> list[bytes]:
    """RFC 6962 leaf hashes of events: SHA-256(0x00 || event hash bytes)."""
    return [leaf_hash(bytes.fromhex(link.event_hash)) for link in links]


@dataclass(frozen=True)
class InclusionEvidence:
    """What proves one event's time: the batch token and the event's path to the batch root."""

    batch: Batch
    index: int
    path: tuple[bytes, ...]


class Stamper:
    def __init__(
        self,
        store: EvidenceStore,
        timestamper: TimeStamper,
        policy: BatchPolicy = BatchPolicy(),
        clock: Callable[[], float] = time.monotonic,
        *,
        per_event: Callable[[], bool] = lambda: False,
        signatures: Callable[[int, int], Sequence[tuple[int, bytes]]] | None = None,
        checkpoint: Callable[[], object] | None = None,
        checkpoint_interval_s: float = 3600.0,
    ) -> None:
        self.checkpoint = checkpoint
        self.checkpoint_interval_s = checkpoint_interval_s
        self._last_checkpoint = clock()
        self.per_event = per_event
        self.signatures = signatures
        self._per_event_after: int | None = None
        self.store = store
        self.timestamper = timestamper
        self.policy = policy
        self.clock = clock
        self._pending_since: tuple[int, float] | None = None
        self.requests = 0
        self.failures = 0

    def pending(self, limit: int | None = None) -> list[ChainLink]:
        last = self.store.last_batch()
        after = last.last_position if last else 0
        return list(self.store.select_chain(after, limit or self.policy.max_events))

    def stamp_once(self, *, force: bool = False) -> Batch | None:
        """Cut and stamp one batch if the policy says so (or *force*). Raises SigningError
        (TsaUnavailable, TimestampRejected) when no TSA gives a good token."""
        if self.signatures is not None and self.per_event():
            self.stamp_signatures()
        last = self.store.last_batch()
        first_seq = last.first_seq + last.size if last else 0
        after = last.last_position if last else 0
        # Cheap checks first: the oldest pending row and (only while its wait is not over) the
        # pending count; the rows themselves are read only when a batch is really cut.
        head = self.store.select_chain(after, 1)
        if not head:
            self._pending_since = None
            return None
        now = self.clock()
        if self._pending_since is None or self._pending_since[0] != head[0].position:
            self._pending_since = (head[0].position, now)
        waited_ms = (now - self._pending_since[1]) * 1000
        if (
            not force
            and waited_ms < self.policy.max_delay_ms
            and self.store.count_chain(after) < self.policy.max_events
        ):
            return None
        links = list(self.store.select_chain(after, self.policy.max_events))
        root = root_from_leaves(leaves_of(links))
        self.requests += 1
        token = self.timestamper.timestamp(root)
        batch = Batch(
            first_seq=first_seq,
            size=len(links),
            first_position=links[0].position,
            last_position=links[-1].position,
            root=root.hex(),
            token=token.der,
            gen_time=token.gen_time.isoformat(),
            tsa_url=token.tsa_url,
        )
        try:
            self.store.insert_batch(batch)
        except BatchConflict:
            log.info("another stamper recorded the batch at %s first", first_seq)
            return None
        self._pending_since = None
        return batch

    def stamp_signatures(self) -> int:
        """Per-event mode (CAdES-T): a token over SHA-256 of each new event's signature value.

        Covers events appended since the mode was first seen on (no back-stamping: earlier
        events carry their batch tokens). Returns how many tokens were made.
        """
        assert self.signatures is not None
        if self._per_event_after is None:
            existing = self.store.select_event_timestamps()
            head = self.store.chain_head()
            self._per_event_after = max(existing) if existing else (head.position if head else 0)
            if not existing:
                return 0
        made = 0
        for position, value in self.signatures(self._per_event_after, self.policy.max_events):
            self.requests += 1
            token = self.timestamper.timestamp(hashlib.sha256(value).digest())
            self.store.insert_event_timestamps([(position, token.der, token.gen_time.isoformat())])
            self._per_event_after = position
            made += 1
        return made

    def flush(self) -> int:
        """Stamp everything pending now; returns the number of batches made."""
        made = 0
        while self.stamp_once(force=True) is not None:
            made += 1
        return made

    def run(self, stop: threading.Event, poll_s: float = 0.05) -> None:
        """Stamp until *stop* is set, backing off exponentially while no TSA answers."""
        delay = self.policy.backoff_initial_s
        while not stop.is_set():
            try:
                batch = self.stamp_once()
            except SigningError as exc:
                self.failures += 1
                log.warning("timestamping failed, retrying in %.1f s: %s", delay, exc)
                stop.wait(delay)
                delay = min(delay * 2, self.policy.backoff_max_s)
                continue
            delay = self.policy.backoff_initial_s
            if batch is None:
                self._maybe_checkpoint()
                stop.wait(poll_s)

    def _maybe_checkpoint(self) -> None:
        """Periodic checkpoint when idle, if the ledger grew since the last one."""
        if self.checkpoint is None:
            return
        if self.clock() - self._last_checkpoint < self.checkpoint_interval_s:
            return
        self._last_checkpoint = self.clock()
        self.flush()
        stored = self.store.select_checkpoints()
        if stored and stored[-1].size == self.store.count_chain():
            return
        self.checkpoint()


class StamperThread:
    """Runs a Stamper in the background; ``stop()`` flushes what is still pending if it can."""

    def __init__(self, stamper: Stamper) -> None:
        self.stamper = stamper
        self._stop = threading.Event()
        self._thread = threading.Thread(target=stamper.run, args=(self._stop,), daemon=True)

    def start(self) -> StamperThread:
        self._thread.start()
        return self

    def stop(self, *, flush: bool = True) -> None:
        self._stop.set()
        self._thread.join()
        if flush:
            self.stamper.flush()


def inclusion_evidence(
    store: EvidenceStore, position: int, batches: Sequence[Batch] | None = None
) -> InclusionEvidence | None:
    """The batch holding the event at *position* and its inclusion path (None while pending).

    ``batches``: the store's batches read once by a caller that asks for many events (the forms
    of a donation); read from the store when not given."""
    for batch in store.select_batches() if batches is None else batches:
        if batch.first_position <= position <= batch.last_position:
            links = list(store.select_chain(batch.first_position - 1, batch.size))
            index = [link.position for link in links].index(position)
            leaves = leaves_of(links)
            return InclusionEvidence(batch, index, tuple(inclusion_proof(leaves, index)))
    return None
