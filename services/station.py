"""Wiring: settings -> PKI, station secrets, the ledger application and its verifier.

This is the only place that puts the floors together (docs/design.md).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ledger.application import LedgerApp
from ledger.checkpoints import SignedCheckpoint, issue_checkpoint
from ledger.events import LedgerAggregate, WorkflowError
from ledger.personal import mask_name
from ledger.registry import SigningCredential, credential_id_for
from ledger.rules import StationParameters, load_rule_set, load_station_parameters
from ledger.signer import CredentialSigner
from ledger.stores import (
    EvidenceStore,
    chain_length,
    persistence_env,
    postgres_read_only,
    postgres_setup,
)
from ledger.timestamping import BatchPolicy, Stamper
from ledger.verify import LedgerVerifier
from services import checkpoints
from services.roster import DEMO_STAFF, SYSTEM_STAFF_ID, StaffMember
from services.settings import Settings
from signing.errors import KeyStoreError, LedgerError
from signing.pki import (
    SigningPrivateKey,
    StationPKI,
    issuing_token_label,
    subject_serial_number,
)
from signing.secrets import StationSecrets
from signing.timestamps import HttpTimeStamper, TimeStamper
from signing.tsa import TimestampAuthority, TsaServer
from signing.validation import CertificateValidator, signature_value

log = logging.getLogger(__name__)


class StationNotInitialised(LedgerError):
    pass


def station_parameters_dict(parameters: StationParameters) -> dict[str, Any]:
    return {
        "parameter_set": parameters.ref,
        "e_signature_enabled": parameters.e_signature_enabled,
        "mpv_enabled": parameters.mpv_enabled,
        "station_name": parameters.station_name,
        "department": parameters.department,
        "form_phone_callback": parameters.form_phone_callback,
        "form_template_code": parameters.form_template_code,
        "required_signatures": {k: list(v) for k, v in parameters.required_signatures.items()},
        # The signed forms produced per donation (read by documents.forms.configured_forms).
        "forms": list(parameters.forms),
        # "batch": Merkle batches of events share one RFC 3161 token; "per_event": each event's
        # signature value gets its own token as well (CAdES-T), at one TSA request per event.
        "timestamp_mode": parameters.timestamp_mode,
    }


@dataclass
class Station:
    """One station's ledger: its application, PKI and signers."""

    settings: Settings
    pki: StationPKI
    secrets: StationSecrets
    app: LedgerApp
    _signers: dict[str, CredentialSigner] = field(default_factory=dict)
    _tsa_server: TsaServer | None = None
    _timestamper: TimeStamper | None = None
    _token_keys: list[SigningPrivateKey] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings) -> Station:
        if not (settings.pki_dir / "root.cert.pem").exists() and not any(
            settings.pki_dir.glob("*.pem")
        ):
            raise StationNotInitialised(
                f"no station PKI under {settings.pki_dir}: run `ledger init` first"
            )
        label = issuing_token_label(settings.pki_dir)  # the issuing CA key in a token?
        issuing_key = None
        if label is not None:
            issuing_key = open_token_key_of(settings, label, "the issuing CA key")
        try:
            pki = StationPKI.load(
                settings.pki_dir, settings.passphrase_bytes(), issuing_key=issuing_key
            )
            secrets = StationSecrets.load(settings.secrets_file, settings.passphrase_bytes())
            return cls(settings, pki, secrets, _make_app(settings, secrets))
        except BaseException:
            close_key = getattr(issuing_key, "close", None)
            if callable(close_key):
                close_key()
            raise

    @classmethod
    def initialise(
        cls,
        settings: Settings,
        staff: Iterable[StaffMember] = DEMO_STAFF,
        now: datetime | None = None,
    ) -> Station:
        """Create the station CA, secrets, staff certificates and the station configuration."""
        now = now or datetime.now(UTC)
        if settings.pki_dir.exists() and any(settings.pki_dir.iterdir()):
            raise WorkflowError(f"{settings.pki_dir} already holds a station PKI")
        # One station per database or schema: its chain, batches and checkpoints are the
        # store's. A second station's events in another's chain break its verification.
        env = persistence_env(settings.db)
        if "SQLITE_DBNAME" not in env and postgres_read_only(env):
            raise WorkflowError(
                "LEDGER_DB is read-only (a hot standby, or a read-only role): a station is set "
                "up on the primary"
            )
        held = chain_length(env)
        if held:
            raise WorkflowError(
                f"LEDGER_DB already holds a ledger of {held} events: give each station its "
                "own database or schema (postgresql://...?schema=NAME)"
            )
        settings.home.mkdir(parents=True, exist_ok=True)
        pki = StationPKI.create(
            settings.pki_dir, settings.station_name, settings.passphrase_bytes(), now
        )
        pki.issue_tsa(f"{settings.station_name} TSA", now)
        secrets = StationSecrets.generate()
        secrets.save(settings.secrets_file, settings.passphrase_bytes())
        station = cls(settings, pki, secrets, _make_app(settings, secrets))
        members = list(staff)
        for member in members:
            pki.issue_staff(member.staff_id, member.name, member.role, now)
        system = station.signer(SYSTEM_STAFF_ID)
        for member in members:
            credential = pki.load_staff(member.staff_id)
            cert = credential.certificate
            station.app.save(
                SigningCredential.staff_issued(
                    system,
                    format(cert.serial_number, "x"),
                    subject_id=subject_serial_number(cert),
                    name=member.name,
                    role=member.role,
                    not_before=cert.not_valid_before_utc.isoformat(),
                    not_after=cert.not_valid_after_utc.isoformat(),
                    certificate_pem=_pem(cert),
                )
            )
        parameters = station_parameters_dict(load_station_parameters())
        parameters["station_name"] = settings.station_name
        station.app.configure_station(station.signer("A001"), parameters)
        return station

    def close(self) -> None:
        for signer in self._signers.values():  # token keys: end their PKCS#11 sessions
            close_key = getattr(signer.credential.private_key, "close", None)
            if callable(close_key):
                close_key()
        self._signers.clear()
        if self._tsa_server is not None:
            self._tsa_server.stop()
            self._tsa_server = None
        for key in self._token_keys:
            close_key = getattr(key, "close", None)
            if callable(close_key):
                close_key()
        self._token_keys.clear()
        self.pki.close()
        self.app.close()

    def __enter__(self) -> Station:
        """``with Station.open(settings) as station:``: closed when the block ends, however."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def revoke_staff(self, staff_id: str, reason: str, admin_id: str = "A001") -> int:
        """Revoke a staff certificate: CRL entry and a signed CertificateRevoked event.

        Events that staff member signs from now on fail verification; earlier ones stay valid.
        """
        if not reason.strip():
            raise WorkflowError("a revocation needs a reason")
        if staff_id == SYSTEM_STAFF_ID:
            raise WorkflowError("the station system credential cannot be revoked here")
        certificate = self.pki.load_staff(staff_id).certificate
        # CRL times are whole seconds: round up, so nothing signed before now looks revoked.
        now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        admin = self.signer(admin_id)
        credential: Any = self.app.repository.get(
            credential_id_for(format(certificate.serial_number, "x"))
        )
        assert isinstance(credential, SigningCredential)
        credential.revoke(admin, now.isoformat(), reason)
        self.pki.revoke(certificate.serial_number, now, now)
        self.app.save(credential)
        self._signers.pop(staff_id, None)
        # The revocation takes effect at `now` (the next whole second); return only once it has,
        # so anything the key signs after this call is after the revocation time.
        time.sleep(max(0.0, (now - datetime.now(UTC)).total_seconds()))
        return certificate.serial_number

    # -- trusted time -------------------------------------------------------------------------

    def trust_roots(self) -> list[x509.Certificate]:
        roots = [self.pki.root_certificate]
        if self.settings.tsa_trust is not None:
            roots.extend(x509.load_pem_x509_certificates(self.settings.tsa_trust.read_bytes()))
        return roots

    def local_tsa(self) -> TimestampAuthority:
        label = self.pki.tsa_token_label()  # the TSA key in a PKCS#11 token?
        if label is None:
            return TimestampAuthority(self.pki.load_tsa())
        key = open_token_key_of(self.settings, label, "the TSA key")
        self._token_keys.append(key)  # its session ends with the station
        return TimestampAuthority(self.pki.load_tsa(key))

    def timestamper(self) -> TimeStamper:
        """RFC 3161 over HTTP: the configured TSAs, or the station's own TSA on 127.0.0.1."""
        if self._timestamper is None:
            urls = self.settings.tsa_url_list
            if not urls:
                self._tsa_server = TsaServer(self.local_tsa())
                self._tsa_server.start()
                urls = [self._tsa_server.url]
            self._timestamper = HttpTimeStamper(
                urls, self.trust_roots(), timeout=self.settings.tsa_timeout_s
            )
        return self._timestamper

    def stamper(self) -> Stamper:
        policy = BatchPolicy(
            max_events=self.settings.batch_max_events,
            max_delay_ms=self.settings.batch_max_delay_ms,
        )
        return Stamper(
            self.store,
            self.timestamper(),
            policy,
            per_event=lambda: self.app.station().parameters.get("timestamp_mode") == "per_event",
            signatures=self._signature_values,
            checkpoint=self._periodic_checkpoint if self.settings.checkpoint_interval_s else None,
            checkpoint_interval_s=self.settings.checkpoint_interval_s,
        )

    def _periodic_checkpoint(self) -> SignedCheckpoint:
        signed = issue_checkpoint(
            self.store, self.system, self.timestamper(), self.settings.station_id
        )
        if self.settings.witness:
            try:
                checkpoints.publish(self.settings.witness, signed)
            except checkpoints.WitnessError as exc:  # the stamper keeps running; verify warns
                log.warning("%s", exc)
        return signed

    def _signature_values(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        out = []
        for note in self.app.recorder.select_notifications(after + 1, limit):
            event = self.app.mapper.to_domain_event(note)
            if isinstance(event, LedgerAggregate.Event):
                out.append((note.id, signature_value(base64.b64decode(event.signature))))
        return out

    @property
    def store(self) -> EvidenceStore:
        recorder = self.app.recorder
        assert isinstance(recorder, EvidenceStore)
        return recorder

    def checkpoint(self) -> SignedCheckpoint:
        """Stamp what is pending, then sign and timestamp the ledger's size, root and chain
        head, keep it and publish it to the witness (``LEDGER_WITNESS``) if one is set."""
        return checkpoints.issue(self)

    # -- signers ------------------------------------------------------------------------------

    def signer(self, staff_id: str) -> CredentialSigner:
        """The signer of a staff member (the role comes from the certificate)."""
        if staff_id not in self._signers:
            if self.pki.has_token_staff(staff_id):
                credential = self.pki.load_token_staff(staff_id, self._token_key(staff_id))
            else:
                credential = self.pki.load_staff(staff_id)
            if self._revoked(credential.certificate.serial_number):
                raise WorkflowError(f"the certificate of {staff_id} is revoked: it cannot sign")
            titles = credential.certificate.subject.get_attributes_for_oid(x509.NameOID.TITLE)
            role = str(titles[0].value) if titles else "staff"
            self._signers[staff_id] = CredentialSigner(credential, role)
        return self._signers[staff_id]

    def _token_key(self, staff_id: str) -> SigningPrivateKey:
        """The staff member's key in the PKCS#11 token (LEDGER_PKCS11_MODULE, _TOKEN, _PIN)."""
        return open_token_key_of(self.settings, staff_id, f"the key of {staff_id}")

    def _revoked(self, serial_number: int) -> bool:
        entry = self.pki.crl(datetime.now(UTC)).get_revoked_certificate_by_serial_number(
            serial_number
        )
        return entry is not None

    @property
    def system(self) -> CredentialSigner:
        return self.signer(SYSTEM_STAFF_ID)

    def donor_signer(
        self, donation_id: UUID, *, fingerprint_verified: bool, now: datetime | None = None
    ) -> CredentialSigner:
        """Issue the donor's 24-hour certificate at signing time and record its issuance."""
        now = now or datetime.now(UTC)
        donation = self.app.donation(donation_id)
        registration = donation.steps["registration"]["values"]
        # the certificate travels in every signature the donor makes (the forms' attachments,
        # the PDF, the DSS): its common name is the masked name, the serialNumber the donor ref
        masked = mask_name(str(registration["name"]))
        credential = self.pki.issue_donor(registration["donor_ref"], masked, now)
        cert = credential.certificate
        self.app.save(
            SigningCredential.donor_issued(
                self.system,
                format(cert.serial_number, "x"),
                subject_id=subject_serial_number(cert),
                donor_ref=registration["donor_ref"],
                fingerprint_verified=fingerprint_verified,
                issued_at=cert.not_valid_before_utc.isoformat(),
                expires_at=cert.not_valid_after_utc.isoformat(),
                certificate_pem=_pem(cert),
            )
        )
        return CredentialSigner(credential, "donor")

    # -- verification -------------------------------------------------------------------------

    def validator(self, now: datetime | None = None) -> CertificateValidator:
        return CertificateValidator(self.trust_roots(), self.pki.crls(now or datetime.now(UTC)))

    def verifier(self, since: SignedCheckpoint | None = None) -> LedgerVerifier:
        recorder: Any = self.app.recorder

        def select(start: int, limit: int) -> Any:
            return recorder.select_notifications(start, limit)

        return LedgerVerifier(self.store, select, self.app.mapper, self.validator(), since=since)


def open_token_key_of(settings: Settings, label: str, what: str) -> SigningPrivateKey:
    """The key `label` in the PKCS#11 token of the settings (LEDGER_PKCS11_MODULE, _TOKEN,
    _PIN); *what* names it in the one-line refusal when they are not set."""
    pin = settings.pkcs11_pin.get_secret_value()
    if not (settings.pkcs11_module and settings.pkcs11_token and pin):
        raise KeyStoreError(
            f"{what} is in a PKCS#11 token: set LEDGER_PKCS11_MODULE, "
            "LEDGER_PKCS11_TOKEN and LEDGER_PKCS11_PIN"
        )
    from signing.pkcs11 import open_token_key  # only stations with a token load python-pkcs11

    return open_token_key(settings.pkcs11_module, settings.pkcs11_token, pin, label)


#: The eligibility rule set new events are judged by: version 2 adds the regional donor-history
#: rules (events recorded under version 1 keep naming it and are verified by it).
RULE_SET = ("gb18467-2011", "2")


def _make_app(settings: Settings, secrets: StationSecrets) -> LedgerApp:
    env = persistence_env(settings.db)

    def build() -> LedgerApp:
        return LedgerApp(
            env, rule_set=load_rule_set(*RULE_SET), secrets=secrets, station_id=settings.station_id
        )

    if "SQLITE_DBNAME" in env:
        Path(env["SQLITE_DBNAME"]).parent.mkdir(parents=True, exist_ok=True)
        return build()
    if postgres_read_only(env):
        # A streaming-replication standby (or a read-only role): read and verify, create
        # nothing (eventsourcing's CREATE_TABLE switch; the schema must exist already).
        env["CREATE_TABLE"] = "n"
        return build()
    with postgres_setup(env):
        return build()


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
