"""Wiring of the forms: produce, sign and write the PDF/A-3b forms of a sealed donation.

``produce_forms(station, donation_id, out_dir, donor_signer)`` is what the demo calls after each
sealing and what ``ledger forms NUMBER`` calls later. Per process it keeps, per station, one
`FormProducer`: the CJK font (parsed once), the pyHanko signer objects and the TSA adapter, and
an index from (donation, version) to log position read incrementally from the chain table.

Signatures: every person who signed an event the form shows signs the form (one PAdES B-T
signature each, with their certificate); the station system signs last as the sealing system,
and that update is made B-LTA (DSS with the certificates, the station CRL and the TSA chain,
then a document timestamp). The donor's credential lives 24 hours and is never stored: given
(``donor_signer``, forms made in the process that sealed the donation), the donor signs the PDF;
otherwise the donor's box says that the donor signed the ledger event electronically and that
this CAdES signature is attached, which is then the donor's signature. A revoked staff
certificate is handled the same way.
"""

from __future__ import annotations

import base64
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography import x509

from documents.forms.evidence import BatchEvidence, EventEvidence, attachments
from documents.forms.fonts import FormFont, form_font
from documents.forms.model import SignatureState, configured_forms
from documents.forms.record import donation_record
from documents.forms.render import STATIC_TEXT, RenderedForm, page_text, render
from documents.forms.templates import (
    DONOR_EVIDENCE_ONLY,
    FIXED_TEXT,
    ROLES,
    EventInfo,
    FormContext,
    Person,
    build_form,
)
from ledger.canonical import event_canonical_bytes, sha256_hex
from ledger.donation import Donation
from ledger.events import LedgerAggregate, WorkflowError
from ledger.signer import CredentialSigner
from ledger.stores import Batch
from ledger.timestamping import inclusion_evidence
from projections.eventtime import iso, recorded_at
from services.files import write_atomically
from services.references import donation_id_for, visit_reference
from services.settings import Settings
from services.station import Station
from signing.errors import SigningError
from signing.pades import PadesSigner, SignatureSlot
from signing.pki import Credential

SYSTEM_SUBJECT = "STAFF:SYSTEM"


@dataclass
class FormTimings:
    """Seconds spent per phase, summed over the forms produced (for benchmarks)."""

    gather: float = 0.0
    render: float = 0.0
    sign: float = 0.0
    forms: int = 0
    signatures: int = 0


@dataclass
class FormProducer:
    """Per-station, per-process state for producing forms (thread-safe). Holds no reference to
    the station (see `producer_for`)."""

    font: FormFont = field(default_factory=form_font)
    timings: FormTimings = field(default_factory=FormTimings)
    _pades: PadesSigner | None = field(default=None, init=False)
    _warmed: bool = field(default=False, init=False)
    _positions: dict[tuple[str, int], int] = field(default_factory=dict, init=False)
    _scanned: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def pades(self, station: Station) -> PadesSigner:
        with self._lock:
            if self._pades is None:
                self._pades = PadesSigner(station.timestamper())
            return self._pades

    # -- reading the ledger ---------------------------------------------------------------------

    def _position_of(self, station: Station, donation_id: UUID, version: int) -> int:
        """The log position of an event (an index grown from the chain table as needed)."""
        key = (donation_id.hex, version)
        with self._lock:
            while key not in self._positions:
                links = station.store.select_chain(self._scanned, 10_000)
                if not links:
                    raise WorkflowError(f"event {version} of {donation_id} is not in the chain")
                for link in links:
                    originator = UUID(link.originator_id).hex  # SQLite: hex, PostgreSQL: dashed
                    self._positions[(originator, link.originator_version)] = link.position
                self._scanned = links[-1].position
            return self._positions[key]

    def events(self, station: Station, donation_id: UUID) -> list[tuple[int, Any]]:
        stored = list(station.app.repository.event_store.get(donation_id))
        return [(self._position_of(station, donation_id, e.originator_version), e) for e in stored]

    # -- producing ------------------------------------------------------------------------------

    def produce(
        self,
        station: Station,
        donation_id: UUID,
        out_dir: Path,
        donor_signer: CredentialSigner | None = None,
        *,
        stamp_pending: bool = True,
        now: datetime | None = None,
    ) -> list[Path]:
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        donation = station.app.donation(donation_id)
        if donation.status != "sealed":
            raise WorkflowError(f"donation {donation_id} is not sealed: no forms before sealing")
        if stamp_pending:
            station.stamper().flush()  # so that every event carries its timestamp token
        events = self.events(station, donation_id)
        record = donation_record(events)
        parameters = station.app.station().parameters
        kinds = configured_forms(parameters)
        batches = list(station.store.select_batches())
        evidence = [_evidence(position, event, batches, station) for position, event in events]
        trusted = {e.position: e.batch.gen_time for e in evidence if e.batch is not None}
        credentials, people, unsignable = _signers(station, events, record, donor_signer, now)
        context = FormContext(
            record=record,
            parameters=parameters,
            people=people,
            trusted_times=trusted,
            events=[
                EventInfo(
                    position,
                    event.originator_version,
                    type(event).__name__,
                    event.actor,
                    event.actor_role,
                    iso(recorded_at(event)),
                    _values(event),
                )
                for position, event in events
            ],
            unsignable=unsignable,
            system_subject=SYSTEM_SUBJECT,
        )
        chain_pem = station.pki.chain_pem()
        crl = station.pki.crl(now)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = record.get("donation_no") or visit_reference(donation_id)
        self.timings.gather += time.perf_counter() - started
        paths = []
        if not self._warmed:  # one working-font build with every fixed label and common name
            self.font.warm(FIXED_TEXT + STATIC_TEXT)
            self._warmed = True
        forms = [build_form(kind, context) for kind in kinds]
        document_font = self.font.document_font("".join(page_text(f, self.font) for f in forms))
        for form in forms:
            t0 = time.perf_counter()
            kind = form.kind
            files = attachments(evidence, donation=record, form_data=form.data, chain_pem=chain_pem)
            rendered = render(
                form,
                files,
                self.font,
                created=now,
                author=str(parameters.get("station_name", "")),
                document_font=document_font,
            )
            t1 = time.perf_counter()
            signed = self._sign(
                station, rendered, credentials, crl, str(parameters.get("station_name"))
            )
            t2 = time.perf_counter()
            path = out_dir / f"{stem}-{kind.value}.pdf"
            write_atomically(path, signed)  # a full disk leaves no half PDF
            paths.append(path)
            self.timings.render += t1 - t0
            self.timings.sign += t2 - t1
            self.timings.forms += 1
        if donor_signer is not None:
            self.pades(station).forget(donor_signer.credential)
        return paths

    def _sign(
        self,
        station: Station,
        rendered: RenderedForm,
        credentials: dict[str, Credential],
        crl: x509.CertificateRevocationList,
        location: str,
    ) -> bytes:
        slots = [
            SignatureSlot(
                field_name=box.signer.key,
                page=box.page,
                box=box.box,
                credential=credentials[box.signer.subject_id],
                name=box.signer.name,
                reason=box.signer.meaning,
                location=location,
                appearance=box.signer.appearance(),
            )
            for box in rendered.boxes
            if box.signer.state is SignatureState.PADES
        ]
        self.timings.signatures += len(slots)
        root = station.pki.root_certificate
        return self.pades(station).sign_all(rendered.pdf, slots, certificates=[root], crls=[crl])


def _signers(
    station: Station,
    events: Sequence[tuple[int, Any]],
    record: dict[str, Any],
    donor_signer: CredentialSigner | None,
    now: datetime,
) -> tuple[dict[str, Credential], dict[str, Person], dict[str, str]]:
    """Credentials, printed names and roles of everyone who signed; why some cannot sign
    the PDF now."""
    subjects = {event.actor for _, event in events} | {SYSTEM_SUBJECT}
    subjects |= {s["signed_by"] for s in record.get("slots", ()) if s.get("signed_by")}
    credentials: dict[str, Credential] = {}
    people: dict[str, Person] = {}
    unsignable: dict[str, str] = {}
    for subject in sorted(subjects):
        kind, _, ident = subject.partition(":")
        if kind == "DONOR":
            name = str(record.get("identity", {}).get("name", ""))
            people[subject] = Person(name, ROLES["donor"])
            credential = donor_signer.credential if donor_signer is not None else None
            if (
                credential is not None
                and credential.subject_id == subject
                and credential.certificate.not_valid_after_utc > now
            ):
                credentials[subject] = credential
            else:
                unsignable[subject] = DONOR_EVIDENCE_ONLY
            continue
        try:
            signer = station.signer(ident)
        except (WorkflowError, SigningError, OSError) as exc:
            unsignable[subject] = f"已电子签名 (CAdES)，证据见附件；PDF 未签: {exc}"
            people[subject] = Person(ident, "")
            continue
        certificate = signer.credential.certificate
        names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        name = str(names[0].value) if names else ident
        people[subject] = Person(name, ROLES.get(signer.role, signer.role))
        credentials[subject] = signer.credential
    return credentials, people, unsignable


def _values(event: Any) -> dict[str, Any]:
    from ledger.donation import step_values

    return step_values(event)


def _evidence(
    position: int, event: LedgerAggregate.Event, batches: Sequence[Batch], station: Station
) -> EventEvidence:
    canonical = event_canonical_bytes(event)
    inclusion = inclusion_evidence(station.store, position, batches)
    batch = inclusion.batch if inclusion is not None else None
    return EventEvidence(
        position=position,
        version=event.originator_version,
        event_type=type(event).__name__,
        actor=event.actor,
        event_hash=sha256_hex(canonical),
        canonical=canonical,
        signature=base64.b64decode(event.signature),
        batch=(
            BatchEvidence(
                batch.first_seq,
                batch.size,
                batch.first_position,
                batch.root,
                batch.gen_time,
                batch.tsa_url,
                batch.token,
            )
            if batch is not None
            else None
        ),
        leaf_index=inclusion.index if inclusion is not None else None,
        path=tuple(h.hex() for h in inclusion.path) if inclusion is not None else (),
    )


# -- entry points -------------------------------------------------------------------------------

_producers: dict[int, tuple[weakref.ref[Station], FormProducer]] = {}
_producers_lock = threading.Lock()


def producer_for(station: Station) -> FormProducer:
    """The process's `FormProducer` of `station`, made on first use, dropped with the station."""
    with _producers_lock:
        entry = _producers.get(id(station))
        if entry is not None and entry[0]() is station:
            return entry[1]
        producer = FormProducer()
        _producers[id(station)] = (weakref.ref(station), producer)
        weakref.finalize(station, _producers.pop, id(station), None)
        return producer


def produce_forms(
    station: Station,
    donation_id: UUID,
    out_dir: Path,
    donor_signer: CredentialSigner | None,
) -> list[Path]:
    """Render, sign (PAdES, the last signature B-LTA) and write the station's configured forms
    of a sealed donation under `out_dir`; returns their paths (``<number>-<form>.pdf``)."""
    return producer_for(station).produce(station, donation_id, out_dir, donor_signer)


@dataclass(frozen=True)
class WriteForms:
    """Command: write the signed forms of the sealed donation `donation` (its donation number,
    visit reference or UUID, see `services.references`) under `out_dir` (default: the
    station's ``HOME/forms``)."""

    donation: str
    out_dir: Path | None = None


@dataclass(frozen=True)
class FormsWritten:
    paths: tuple[Path, ...]
    seconds: float


def write_forms(settings: Settings, command: WriteForms) -> FormsWritten:
    """The ``ledger forms`` use case: refuses a reference that names no donation (`InputError`)
    and a donation that is not sealed (`WorkflowError`)."""
    with Station.open(settings) as station:
        donation_id = donation_id_for(station, command.donation)
        donation: Donation = station.app.donation(donation_id)
        if donation.status != "sealed":
            label = donation.donation_no or visit_reference(donation_id)
            raise WorkflowError(f"donation {label} is not sealed yet")
        out = command.out_dir if command.out_dir is not None else settings.home / "forms"
        started = time.perf_counter()
        paths = produce_forms(station, donation_id, out, None)
        return FormsWritten(tuple(paths), time.perf_counter() - started)
