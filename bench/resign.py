"""Large ledgers that verify in full, fast: template visits copied and signed again.

``services.demo.DemoDay`` builds a ledger event by event through the application (about 10 ms an
event here: rules, the donor's certificate, one durable transaction each), so half a million
events take hours. This builder runs the demo day for a few template visits, then grows the
ledger by copies of them that are *real events*: each copy gets a fresh donor reference, donor,
donation id, donation number and a donor certificate of its own (issued by the station's CA,
24 hours from the template's issue time), and every copied event is decoded, given the new
identifiers and the new hashes of the events before it (``prev_hash``, co-signed hashes),
canonically hashed again and signed again by its actor: the same staff member's or the system's
credential, the copy's donor's for the donor's own signatures (CMS signing time = event time, as
the application signs). The field values, rule outcomes and times are the template's, so a
verifier does the same work on a copy as on a demo event: hashes, both chains, signatures,
certificate paths (one new donor certificate a visit), rule outcomes, batches and checkpoints.

Used by ``python -m bench.verify --builder copies``; checked by
``tests/integration/test_bench_resign.py`` (the grown ledger verifies PASSED).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import random
import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from eventsourcing.persistence import StoredEvent

from bench.rebuild import Visit, _visits
from ledger.canonical import event_canonical_bytes
from ledger.registry import credential_id_for, donor_id_for, number_index_id_for
from ledger.signer import CredentialSigner
from services.station import Station

CHUNK = 2000


@dataclasses.dataclass(frozen=True)
class _Template:
    visit: Visit
    events: tuple[Any, ...]  # decoded
    donor_cn: str
    issued: Any  # datetime of the donor certificate


class Resigner:
    """Signed copies of a station's template visits (its first *upto* events)."""

    def __init__(self, station: Station, upto: int, numbers: Iterator[int] | None = None) -> None:
        self.station = station
        self.mapper = station.app.mapper
        self.numbers = numbers or itertools.count(10**12)
        self.templates: list[_Template] = []
        for visit in _visits(station, upto)[1]:
            events: tuple[Any, ...] = tuple(self.mapper.to_domain_event(s) for s in visit.events)
            issued = [e for e in events if type(e).__name__ == "DonorCertificateIssued"]
            if len(issued) != 1 or not visit.donation_no:
                continue  # one donor certificate and a numbered donation: a plain visit
            certificate = x509.load_pem_x509_certificate(issued[0].certificate_pem.encode())
            names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            self.templates.append(
                _Template(visit, events, str(names[0].value), certificate.not_valid_before_utc)
            )
        if not self.templates:
            raise RuntimeError("no template visit with a donor certificate and a number")
        self._staff: dict[str, CredentialSigner] = {}

    def _signer(self, actor: str, donor: CredentialSigner) -> CredentialSigner:
        kind, _, who = actor.partition(":")
        if kind == "DONOR":
            return donor
        if who not in self._staff:
            self._staff[who] = self.station.signer(who)
        return self._staff[who]

    def copy(self, template: _Template) -> tuple[list[StoredEvent], list[str]]:
        visit = template.visit
        ref = secrets.token_hex(len(visit.donor_ref) // 2)
        credential = self.station.pki.issue_donor(ref, template.donor_cn, template.issued)
        donor = CredentialSigner(credential, "donor")
        serial = format(credential.certificate.serial_number, "x")
        pem = credential.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        number = f"{next(self.numbers):0{len(visit.donation_no)}d}"
        ids = {
            donor_id_for(visit.donor_ref): donor_id_for(ref),
            visit.donation_id: uuid.uuid4(),
            number_index_id_for(visit.donation_no): number_index_id_for(number),
            credential_id_for(visit.serial): credential_id_for(serial),
        }
        swaps = [(visit.donor_ref, ref), (visit.donation_no, number), (visit.serial, serial)]
        swaps.extend((str(old), str(new)) for old, new in ids.items())
        encoded = [(old.encode(), new.encode()) for old, new in swaps]
        out, hashes = [], []
        for stored, old_hash in zip(visit.events, visit.hashes, strict=True):
            state = stored.state
            for old_bytes, new_bytes in encoded:
                state = state.replace(old_bytes, new_bytes)
            originator = uuid.UUID(str(stored.originator_id))
            new_id = ids.get(originator, originator)
            event: Any = self.mapper.to_domain_event(
                StoredEvent(new_id, stored.originator_version, stored.topic, state)
            )
            if type(event).__name__ == "DonorCertificateIssued":
                event = dataclasses.replace(event, certificate_pem=pem)
            body = event_canonical_bytes(event)
            digest = hashlib.sha256(body).hexdigest()
            signature = self._signer(event.actor, donor).sign(body, event.timestamp)
            event = dataclasses.replace(event, signature=signature, event_hash=digest)
            out.append(self.mapper.to_stored_event(event))
            hashes.append(digest)
            encoded.append((old_hash.encode(), digest.encode()))  # later events name this one
        return out, hashes


def grow_signed(
    station: Station,
    upto: int,
    events: int,
    *,
    in_flight: int = 32,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Append interleaved signed copies until the chain holds at least *events* events."""
    resigner = Resigner(station, upto)
    recorder: Any = station.app.recorder
    have = int(recorder.max_notification_id() or 0)
    rng = random.Random(seed)
    active: list[tuple[list[StoredEvent], list[str]]] = []
    pending: list[StoredEvent] = []
    hashes: list[str] = []
    while have + len(pending) < events or active:
        while have + len(pending) + sum(len(a[0]) for a in active) < events and (
            len(active) < in_flight
        ):
            active.append(resigner.copy(rng.choice(resigner.templates)))
        if not active:
            break
        i = rng.randrange(len(active))
        stored, event_hashes = active[i]
        pending.append(stored.pop(0))
        hashes.append(event_hashes.pop(0))
        if not stored:
            active.pop(i)
        if len(pending) == CHUNK:
            recorder.insert_events(pending, event_hashes=hashes)
            have += len(pending)
            pending, hashes = [], []
            if progress is not None:
                progress(have)
    if pending:
        recorder.insert_events(pending, event_hashes=hashes)
        have += len(pending)
    return have
