"""Settings from the environment (``LEDGER_*``), validated by pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_PASSPHRASE = "development-only-passphrase"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", frozen=True)

    #: ``sqlite:///PATH`` (embedded default) or ``postgresql://USER@HOST:PORT/DB``.
    db: str = "sqlite:///var/ledger.sqlite"
    #: Where the station PKI, the station secrets and exports live.
    home: Path = Path("var")
    #: Protects every private key and the station secrets at rest.
    passphrase: SecretStr = SecretStr(DEVELOPMENT_PASSPHRASE)
    station_id: str = "ZJBC-01"
    station_name: str = "浙江省血液中心"
    env: Literal["development", "production"] = "development"
    #: Comma-separated RFC 3161 TSA URLs, tried in order. Empty: the station's own local TSA,
    #: served over HTTP on 127.0.0.1 by the running command (the embedded default).
    tsa_urls: str = ""
    #: PEM file with the trust roots of third-party TSAs (the station root is always trusted).
    tsa_trust: Path | None = None
    tsa_timeout_s: float = 5.0
    #: The regional donor-history service (献血史查询), asked at registration when set.
    donor_history_url: str | None = None
    donor_history_timeout_s: float = 5.0
    batch_max_events: int = 256
    batch_max_delay_ms: int = 500
    #: A running stamper issues a signed, timestamped checkpoint this often (0: only on demand).
    checkpoint_interval_s: float = 3600.0
    #: Where every checkpoint is published as it is issued, out of the database administrator's
    #: reach: a file path (one JSON line appended per checkpoint) or an http(s) URL that accepts
    #: a POST of the checkpoint JSON and answers a GET with the JSON lines. Empty: none.
    witness: str = ""
    #: How long an event may stay outside every timestamp batch, beyond the batch delay, before
    #: `ledger verify` says INDETERMINATE (ledger.verify_time.DEFAULT_PENDING_GRACE).
    pending_grace_s: float = 3600.0
    #: Staff keys held in a PKCS#11 token (``staff/<id>.token.cert.pem``, `signing.pkcs11`): the
    #: module (e.g. /usr/lib/softhsm/libsofthsm2.so), the token label and the user PIN.
    pkcs11_module: str = ""
    pkcs11_token: str = ""
    pkcs11_pin: SecretStr = SecretStr("")

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Settings:
        if self.env == "production" and (
            self.passphrase.get_secret_value() == DEVELOPMENT_PASSPHRASE
        ):
            raise ValueError("LEDGER_PASSPHRASE must be set in production")
        return self

    @property
    def pki_dir(self) -> Path:
        return self.home / "pki"

    @property
    def secrets_file(self) -> Path:
        return self.home / "keys" / "station-secrets.json"

    @property
    def tsa_url_list(self) -> list[str]:
        return [url.strip() for url in self.tsa_urls.split(",") if url.strip()]

    def passphrase_bytes(self) -> bytes:
        return self.passphrase.get_secret_value().encode("utf-8")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
