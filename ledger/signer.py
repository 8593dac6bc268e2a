"""Adapters from signing/ credentials to the ledger's Signer protocol."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime

from signing.cms import CmsSigner
from signing.pki import Credential


@dataclass
class CredentialSigner:
    """Signs canonical event bodies with a credential (CAdES-BES, detached, DER, base64)."""

    credential: Credential
    role: str
    _cms: CmsSigner = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cms = CmsSigner(self.credential)

    @property
    def subject_id(self) -> str:
        return self.credential.subject_id

    @property
    def certificate_serial(self) -> str:
        return format(self.credential.certificate.serial_number, "x")

    def sign(self, data: bytes, signing_time: datetime) -> str:
        return base64.b64encode(self._cms.sign(data, signing_time)).decode("ascii")
