"""`ledger doctor`: is this station able to work? Each check returns a typed finding with a fix.

Checks, in order: the form font, openssl, the store (reachable, tables present, never created
here), the station PKI (readable with the passphrase, CAs valid), the TSA (reachable, its token
and certificate valid, clock offset) and the staff certificates (expired or expiring within the
window; revoked ones are listed). Nothing is written: a SQLite store is opened read-only and a
missing one is reported, not created; the local TSA is served on 127.0.0.1 only for the check.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path

from cryptography import x509

from documents.forms.fonts import FormFont, locate_font
from ledger.application import LedgerApp
from ledger.stores import (
    BATCH_TABLE,
    CHAIN_TABLE,
    CHECKPOINT_TABLE,
    EVENT_TOKEN_TABLE,
    StoreURLError,
    persistence_env,
)
from services.settings import Settings
from services.station import open_token_key_of
from signing.errors import LedgerError
from signing.pki import SigningPrivateKey, StationPKI, issuing_token_label
from signing.timestamps import HttpTimeStamper, TimestampRejected
from signing.tsa import TimestampAuthority, TsaServer
from signing.tsp_validation import verify_timestamp_token
from signing.validation import CertificateValidator

#: The tables a ledger store holds besides eventsourcing's events table (named ``stored_events``
#: by its SQLite factory, ``<application name>_events`` by its PostgreSQL one).
LEDGER_TABLES = (CHAIN_TABLE, BATCH_TABLE, CHECKPOINT_TABLE, EVENT_TOKEN_TABLE)
#: The columns this code reads from each table (more are allowed: a later layout may add some).
#: The stores record no schema version, so the layout is what the doctor can check.
EVENT_COLUMNS = frozenset({"originator_id", "originator_version", "topic", "state"})
LEDGER_COLUMNS = {
    CHAIN_TABLE: frozenset(
        {"position", "originator_id", "originator_version", "event_hash", "prev_hash"}
    ),
    BATCH_TABLE: frozenset(
        {"first_seq", "size", "first_position", "last_position", "root", "token", "gen_time"}
    ),
    CHECKPOINT_TABLE: frozenset({"size", "root", "body", "signature", "token"}),
    EVENT_TOKEN_TABLE: frozenset({"position", "token", "gen_time"}),
}
SQLITE_EVENTS_TABLE = "stored_events"
POSTGRES_EVENTS_TABLE = f"{LedgerApp.name.lower()}_events"
EXPIRY_WINDOW = timedelta(days=30)
MAX_CLOCK_OFFSET_S = 5.0
#: Characters beyond GB2312 that donors' names hold (Extension A and E).
RARE_NAME_CHARS = "䶮㛃𬌗"


class Status(Enum):
    OK = "ok"
    PROBLEM = "problem"
    SKIPPED = "skipped"  # could not be checked because an earlier check failed


@dataclass(frozen=True)
class Finding:
    """One check: what was found and, unless it is OK, what to do about it."""

    check: str
    status: Status
    found: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorReport:
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(f.status is Status.OK for f in self.findings)

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status is not Status.OK)


def diagnose(
    settings: Settings,
    *,
    now: datetime | None = None,
    expiry_window: timedelta = EXPIRY_WINDOW,
    max_clock_offset_s: float = MAX_CLOCK_OFFSET_S,
) -> DoctorReport:
    """Run every check against the station `settings` describe."""
    now = now or datetime.now(UTC)
    findings = [_guarded("form font", check_font), _guarded("openssl", check_openssl)]
    findings.append(_guarded("store", lambda: check_store(settings.db)))
    pki_finding, pki = check_pki(settings, now, expiry_window)
    findings.append(pki_finding)
    if pki is None:
        why = "needs the station PKI"
        findings.append(Finding("TSA", Status.SKIPPED, why, pki_finding.fix))
        findings.append(Finding("staff certificates", Status.SKIPPED, why, pki_finding.fix))
    else:
        findings.append(
            _guarded(
                "TSA", lambda: check_tsa(settings, pki, now, expiry_window, max_clock_offset_s)
            )
        )
        findings.append(
            _guarded("staff certificates", lambda: check_staff(pki, now, expiry_window))
        )
        pki.close()  # a CA key in a token: end its session
    return DoctorReport(tuple(findings))


def _guarded(check: str, run: Callable[[], Finding]) -> Finding:
    """A check that fails in a way nobody foresaw is still one row of the table, not a
    traceback: the doctor is what a user runs when things are broken."""
    try:
        return run()
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        return Finding(check, Status.PROBLEM, f"check failed: {message}", "report this as a bug")


# -- the checks ---------------------------------------------------------------------------------


def check_font() -> Finding:
    try:
        location = locate_font()
        font = FormFont(location.path, location.face, seed="", sha256=location.sha256)
    except LedgerError as exc:
        return Finding("form font", Status.PROBLEM, "not usable", str(exc))
    lacking = font.missing(RARE_NAME_CHARS)
    if lacking:
        return Finding(
            "form font",
            Status.PROBLEM,
            f"{location.path} lacks {''.join(lacking)}",
            "use Noto Sans CJK SC: unset LEDGER_FORM_FONT",
        )
    pinned = ", SHA-256 as pinned" if location.sha256 else ""
    return Finding("form font", Status.OK, f"Noto Sans CJK SC from {location.source}{pinned}")


def check_openssl() -> Finding:
    command = shutil.which("openssl")
    if command is None:
        return Finding(
            "openssl",
            Status.PROBLEM,
            "not on the PATH (needed to check exported evidence without our code)",
            "apt-get install openssl",
        )
    result = subprocess.run(
        [command, "version"], capture_output=True, text=True, timeout=10, check=False
    )
    version = result.stdout.split("(")[0].strip()
    return Finding("openssl", Status.OK, version or command)


def check_store(db: str) -> Finding:
    try:
        env = persistence_env(db)
    except StoreURLError as exc:
        return Finding("store", Status.PROBLEM, "LEDGER_DB is not usable", str(exc))
    if "SQLITE_DBNAME" in env:
        return _check_sqlite(Path(env["SQLITE_DBNAME"]))
    return _check_postgres(env)


def _check_sqlite(path: Path) -> Finding:
    if not path.is_file():
        return Finding(
            "store",
            Status.PROBLEM,
            f"no SQLite ledger at {path}",
            "run `ledger init` (or `make demo`), or point LEDGER_DB at the ledger",
        )
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables: dict[str, set[str]] = {}
            for table, column in db.execute(
                "SELECT m.name, p.name FROM sqlite_master AS m "
                "JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table'"
            ):
                tables.setdefault(str(table), set()).add(str(column))
            events = (
                db.execute(f"SELECT count(*) FROM {SQLITE_EVENTS_TABLE}").fetchone()[0]
                if SQLITE_EVENTS_TABLE in tables
                else 0
            )
    except sqlite3.Error as exc:
        return Finding("store", Status.PROBLEM, f"{path}: {exc}", "restore the file from backup")
    return _tables_finding(f"SQLite {path}", SQLITE_EVENTS_TABLE, tables, events)


def _check_postgres(env: dict[str, str]) -> Finding:
    import psycopg
    from psycopg.sql import SQL, Identifier

    where = f"PostgreSQL {env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}/{env['POSTGRES_DBNAME']}"
    schema = env.get("POSTGRES_SCHEMA", "public")
    try:
        with psycopg.connect(
            host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]),
            dbname=env["POSTGRES_DBNAME"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=5,
            autocommit=True,
        ) as conn:
            rows = conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = %s",
                (schema,),
            ).fetchall()
            tables: dict[str, set[str]] = {}
            for table, column in rows:
                tables.setdefault(str(table), set()).add(str(column))
            events = 0
            if POSTGRES_EVENTS_TABLE in tables:
                count = conn.execute(
                    SQL("SELECT count(*) FROM {}.{}").format(
                        Identifier(schema), Identifier(POSTGRES_EVENTS_TABLE)
                    )
                ).fetchone()
                events = int(count[0]) if count else 0
    except psycopg.Error as exc:
        message = " ".join(str(exc).split())
        return Finding(
            "store",
            Status.PROBLEM,
            f"{where} unreachable: {message}",
            "start PostgreSQL (e.g. `pg_ctlcluster 15 main start`) or fix LEDGER_DB",
        )
    return _tables_finding(f"{where} schema {schema}", POSTGRES_EVENTS_TABLE, tables, events)


def _tables_finding(
    where: str, events_table: str, tables: dict[str, set[str]], events: int
) -> Finding:
    expected = {events_table: EVENT_COLUMNS, **LEDGER_COLUMNS}
    missing = [t for t in expected if t not in tables]
    if missing:
        return Finding(
            "store",
            Status.PROBLEM,
            f"{where} lacks {', '.join(missing)}",
            "not a ledger store: run `ledger init` on an empty one, or point LEDGER_DB at the "
            "ledger",
        )
    other = [
        f"{table} lacks {', '.join(sorted(columns - tables[table]))}"
        for table, columns in expected.items()
        if not columns <= tables[table]
    ]
    if other:
        return Finding(
            "store",
            Status.PROBLEM,
            f"{where}: another layout: {'; '.join(other)}",
            "open it with the version of this code that wrote it",
        )
    return Finding(
        "store",
        Status.OK,
        f"{where}: {len(expected)} tables in this version's layout, {events} events",
    )


def check_pki(
    settings: Settings, now: datetime, window: timedelta
) -> tuple[Finding, StationPKI | None]:
    if not (settings.pki_dir / "root.cert.pem").is_file():
        return (
            Finding(
                "station PKI",
                Status.PROBLEM,
                f"no station under {settings.pki_dir}",
                "run `ledger init` (or `make demo`), or set LEDGER_HOME",
            ),
            None,
        )
    try:
        label = issuing_token_label(settings.pki_dir)  # the issuing CA key in a token?
        issuing_key = None
        if label is not None:
            issuing_key = open_token_key_of(settings, label, "the issuing CA key")
        passphrase = settings.passphrase_bytes()
        pki = StationPKI.load(settings.pki_dir, passphrase, issuing_key=issuing_key)
    except (LedgerError, OSError, ValueError) as exc:
        message = " ".join(str(exc).split())
        return (
            Finding(
                "station PKI",
                Status.PROBLEM,
                f"cannot read {settings.pki_dir}: {message}",
                "set LEDGER_PASSPHRASE to the station's passphrase",
            ),
            None,
        )
    for label, certificate in (
        ("root", pki.root_certificate),
        ("issuing CA", pki.issuing_certificate),
    ):
        problem = _validity_problem(certificate, now, window)
        if problem:
            return (
                Finding(
                    "station PKI",
                    Status.PROBLEM,
                    f"the {label} certificate {problem}",
                    "renew the station CA before staff certificates expire with it",
                ),
                pki,
            )
    until = pki.issuing_certificate.not_valid_after_utc.date()
    return Finding("station PKI", Status.OK, f"{settings.pki_dir}, CAs valid until {until}"), pki


def check_tsa(
    settings: Settings,
    pki: StationPKI,
    now: datetime,
    window: timedelta,
    max_offset_s: float,
) -> Finding:
    roots = [pki.root_certificate]
    if settings.tsa_trust is not None:
        try:
            roots.extend(x509.load_pem_x509_certificates(settings.tsa_trust.read_bytes()))
        except (OSError, ValueError) as exc:
            return Finding(
                "TSA",
                Status.PROBLEM,
                f"LEDGER_TSA_TRUST {settings.tsa_trust}: {exc}",
                "point LEDGER_TSA_TRUST at a PEM file of TSA trust roots",
            )
    server: TsaServer | None = None
    tsa_key: SigningPrivateKey | None = None
    urls = settings.tsa_url_list
    try:
        if not urls:
            label = pki.tsa_token_label()  # the TSA key in a token?
            if label is not None:
                tsa_key = open_token_key_of(settings, label, "the TSA key")
            server = TsaServer(TimestampAuthority(pki.load_tsa(tsa_key)))
            server.start()
            urls = [server.url]
        return _probe_tsas(
            urls, roots, settings.tsa_timeout_s, now, window, max_offset_s, local=server is not None
        )
    finally:
        if server is not None:
            server.stop()
        close_key = getattr(tsa_key, "close", None)
        if callable(close_key):
            close_key()


def _probe_tsas(
    urls: Sequence[str],
    roots: Sequence[x509.Certificate],
    timeout_s: float,
    now: datetime,
    window: timedelta,
    max_offset_s: float,
    *,
    local: bool,
) -> Finding:
    found: list[str] = []
    for url in urls:
        name = "the station's own TSA" if local else url
        digest = hashlib.sha256(b"ledger doctor " + url.encode()).digest()
        asked = datetime.now(UTC)
        try:
            token = HttpTimeStamper([url], roots, timeout=timeout_s).timestamp(digest)
        except TimestampRejected as exc:  # it answered, but not with a token we can trust
            return Finding(
                "TSA",
                Status.PROBLEM,
                f"{name}: {' '.join(str(exc).split())}",
                "put the TSA's root certificate in LEDGER_TSA_TRUST (PEM), or use another TSA",
            )
        except LedgerError as exc:
            message = " ".join(str(exc).split())
            return Finding(
                "TSA",
                Status.PROBLEM,
                f"{name}: {message}",
                "check LEDGER_TSA_URLS and the network; events stay pending until a TSA answers",
            )
        answered = datetime.now(UTC)
        offset = (token.gen_time - (asked + (answered - asked) / 2)).total_seconds()
        verified = verify_timestamp_token(token.der, digest, CertificateValidator(roots))
        problem = _validity_problem(verified.tsa_certificate, now, window)
        if problem:
            return Finding(
                "TSA",
                Status.PROBLEM,
                f"{name}: its certificate {problem}",
                ("renew the TSA certificate" if local else "ask the TSA's operator"),
            )
        if abs(offset) > max_offset_s:
            return Finding(
                "TSA",
                Status.PROBLEM,
                f"{name}: clock offset {offset:+.1f} s (more than {max_offset_s:.0f} s)",
                "synchronise this machine's clock (NTP), or the TSA's",
            )
        until = verified.tsa_certificate.not_valid_after_utc.date()
        found.append(f"{name}: token valid, offset {offset:+.2f} s, certificate until {until}")
    return Finding("TSA", Status.OK, "; ".join(found))


def check_staff(pki: StationPKI, now: datetime, window: timedelta) -> Finding:
    crl = pki.crl(now)
    expiring: list[str] = []
    revoked: list[str] = []
    count = 0
    for path in sorted((pki.directory / "staff").glob("*.cert.pem")):
        staff_id = path.name.removesuffix(".cert.pem")
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        count += 1
        if crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None:
            revoked.append(staff_id)
            continue
        problem = _validity_problem(certificate, now, window)
        if problem:
            expiring.append(f"{staff_id} {problem}")
    revoked_note = f"; revoked (cannot sign): {', '.join(revoked)}" if revoked else ""
    if count == 0:
        return Finding("staff certificates", Status.PROBLEM, "none issued", "run `ledger init`")
    if expiring:
        return Finding(
            "staff certificates",
            Status.PROBLEM,
            "; ".join(expiring) + revoked_note,
            "issue new staff certificates (StationPKI.issue_staff) before they expire: an "
            "expired certificate cannot sign",
        )
    return Finding(
        "staff certificates",
        Status.OK,
        f"{count - len(revoked)} valid beyond {(now + window).date()}{revoked_note}",
    )


def _validity_problem(certificate: x509.Certificate, now: datetime, window: timedelta) -> str:
    """'' when valid now and beyond `window`, else what is wrong, in words."""
    not_after = certificate.not_valid_after_utc
    if certificate.not_valid_before_utc > now:
        return f"is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    if not_after <= now:
        return f"expired on {not_after:%Y-%m-%d}"
    if not_after <= now + window:
        return f"expires on {not_after:%Y-%m-%d} (within {window.days} days)"
    return ""
