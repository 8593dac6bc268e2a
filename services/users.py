"""Users of the HTTP API and pages: roles, Argon2 passwords, sessions, lockout, idempotency.

The tables live in the ledger's own store (``LEDGER_DB``: SQLite or PostgreSQL, the same schema),
beside the events but outside the hash chain: they are access control, not evidence. What a user
does to the ledger is signed by their staff credential, not by this table.

* ``web_users``: name, role, the staff id whose certificate signs for the user (staff and
  quality users), Argon2id hash, consecutive failed logins and the lock's end.
* ``web_login_attempts``: every login attempt (user, time, success, remote address).
* ``web_sessions``: SHA-256 of each bearer or cookie token (the token itself is never stored),
  its CSRF token and expiry.
* ``web_idempotency``: for each user and ``Idempotency-Key``, the request's hash and the answer
  given, so that a retried request records once and gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ledger.stores import persistence_env, postgres_admin_connection, postgres_setup
from signing.errors import InputError, LedgerError

ROLES = ("staff", "quality", "archivist", "regulator", "admin", "channel")
#: Roles whose actions sign ledger events: their users name the staff id of their certificate.
SIGNING_ROLES = ("staff", "quality")
#: Roles that may name a certificate (an administrator signs setting changes and revocations,
#: an archivist the transfer packages and their archive events).
CERTIFICATE_ROLES = (*SIGNING_ROLES, "admin", "archivist")
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
SESSION_FOR = timedelta(hours=8)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()

_TABLES = (
    """CREATE TABLE IF NOT EXISTS web_users (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        staff_id TEXT,
        password_hash TEXT NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS web_login_attempts (
        username TEXT NOT NULL,
        at TEXT NOT NULL,
        ok INTEGER NOT NULL,
        remote TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS web_sessions (
        token_hash TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        csrf TEXT NOT NULL,
        expires_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS web_idempotency (
        username TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (username, idem_key))""",
)


class AuthenticationFailed(LedgerError):
    """Wrong name or password (one message for both)."""


class AccountLocked(LedgerError):
    """Too many failed logins: the account is locked until the time named."""


class IdempotencyConflict(InputError):
    """An ``Idempotency-Key`` reused for a different request, or one still in progress."""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    staff_id: str | None


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires_at: datetime


class UserStore:
    """The user tables of one ledger store."""

    def __init__(self, db_url: str) -> None:
        self.env = persistence_env(db_url)
        self.sqlite_path = self.env.get("SQLITE_DBNAME")
        self.schema = self.env.get("POSTGRES_SCHEMA")
        self._create()

    @contextmanager
    def transaction(self) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
        """A transaction; yields ``run(sql, *params)`` (``?`` placeholders) -> rows."""
        if self.sqlite_path is not None:
            Path(self.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")

                def run_lite(sql: str, *params: Any) -> list[tuple[Any, ...]]:
                    return list(conn.execute(sql, params).fetchall())

                try:
                    yield run_lite
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.close()
            return
        with postgres_admin_connection(self.env) as pg:
            pg.autocommit = False
            with pg.transaction():
                if self.schema:
                    pg.execute(f'SET LOCAL search_path TO "{self.schema}"')

                def run_pg(sql: str, *params: Any) -> list[tuple[Any, ...]]:
                    cursor = pg.execute(sql.replace("?", "%s").encode(), params)
                    return list(cursor.fetchall()) if cursor.description else []

                yield run_pg

    def _create(self) -> None:
        if self.sqlite_path is None:
            with postgres_setup(dict(self.env)), self.transaction() as run:
                for sql in _TABLES:
                    run(sql)
            return
        with self.transaction() as run:
            for sql in _TABLES:
                run(sql)

    # -- users --------------------------------------------------------------------------------

    def add(self, username: str, role: str, password_hash: str, staff_id: str | None) -> None:
        with self.transaction() as run:
            run(
                "INSERT INTO web_users (username, role, staff_id, password_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
                username,
                role,
                staff_id,
                password_hash,
                _now().isoformat(),
            )
            stored = run("SELECT password_hash FROM web_users WHERE username = ?", username)
        if stored[0][0] != password_hash:
            raise InputError(f"user {username} already exists")

    def users(self) -> list[User]:
        with self.transaction() as run:
            rows = run("SELECT username, role, staff_id FROM web_users ORDER BY username")
        return [User(str(r[0]), str(r[1]), r[2]) for r in rows]

    def login(self, username: str, password: str, remote: str, now: datetime) -> User:
        """The user, after a password check; records the attempt; locks after repeated
        failures."""
        with self.transaction() as run:
            rows = run(
                "SELECT role, staff_id, password_hash, failed, locked_until FROM web_users "
                "WHERE username = ?",
                username,
            )
            ok = False
            locked_until = None
            if rows:
                role, staff_id, stored, failed, locked = rows[0]
                locked_until = datetime.fromisoformat(locked) if locked else None
                if locked_until is not None and locked_until > now:
                    run(
                        "INSERT INTO web_login_attempts VALUES (?, ?, ?, ?)",
                        username,
                        now.isoformat(),
                        0,
                        remote,
                    )
                else:
                    ok = _verify(stored, password)
                    failed = 0 if ok else int(failed) + 1
                    lock = (now + LOCK_FOR).isoformat() if failed >= MAX_FAILURES else None
                    if lock is not None:
                        failed = 0
                        locked_until = now + LOCK_FOR
                    run(
                        "UPDATE web_users SET failed = ?, locked_until = ? WHERE username = ?",
                        failed,
                        lock,
                        username,
                    )
                    run(
                        "INSERT INTO web_login_attempts VALUES (?, ?, ?, ?)",
                        username,
                        now.isoformat(),
                        int(ok),
                        remote,
                    )
                    if ok and _hasher.check_needs_rehash(stored):
                        run(
                            "UPDATE web_users SET password_hash = ? WHERE username = ?",
                            _hasher.hash(password),
                            username,
                        )
            else:
                _verify(_DUMMY_HASH, password)  # same work for unknown names
                run(
                    "INSERT INTO web_login_attempts VALUES (?, ?, ?, ?)",
                    username,
                    now.isoformat(),
                    0,
                    remote,
                )
        if ok:
            return User(username, str(role), staff_id)
        if locked_until is not None and locked_until > now:
            raise AccountLocked(
                f"account {username} is locked until {locked_until:%Y-%m-%d %H:%M} UTC after "
                f"{MAX_FAILURES} failed logins"
            )
        raise AuthenticationFailed("wrong user name or password")

    def attempts(self, username: str) -> list[tuple[str, bool, str]]:
        with self.transaction() as run:
            rows = run(
                "SELECT at, ok, remote FROM web_login_attempts WHERE username = ? ORDER BY at",
                username,
            )
        return [(str(r[0]), bool(r[1]), str(r[2])) for r in rows]

    # -- sessions -----------------------------------------------------------------------------

    def open_session(self, user: User, now: datetime) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires = now + SESSION_FOR
        with self.transaction() as run:
            run("DELETE FROM web_sessions WHERE expires_at < ?", now.isoformat())
            run(
                "INSERT INTO web_sessions VALUES (?, ?, ?, ?)",
                _digest(token),
                user.username,
                csrf,
                expires.isoformat(),
            )
        return token, Session(user, csrf, expires)

    def session(self, token: str, now: datetime) -> Session | None:
        with self.transaction() as run:
            rows = run(
                "SELECT u.username, u.role, u.staff_id, s.csrf, s.expires_at "
                "FROM web_sessions s JOIN web_users u ON u.username = s.username "
                "WHERE s.token_hash = ?",
                _digest(token),
            )
        if not rows:
            return None
        username, role, staff_id, csrf, expires = rows[0]
        expires_at = datetime.fromisoformat(expires)
        if expires_at <= now:
            return None
        return Session(User(str(username), str(role), staff_id), str(csrf), expires_at)

    def close_session(self, token: str) -> None:
        with self.transaction() as run:
            run("DELETE FROM web_sessions WHERE token_hash = ?", _digest(token))

    # -- idempotency --------------------------------------------------------------------------

    def claim(self, username: str, key: str, request_hash: str) -> tuple[int, Any] | None:
        """Claim *key* for this request: None when it is new (the caller runs the request and
        calls `settle`, or `release` when it wrote nothing), else the answer given before.
        Two processes claiming the same key at once: one wins, the other sees it in progress."""
        nonce = json.dumps(f"claim:{secrets.token_hex(8)}")
        with self.transaction() as run:
            run(
                "INSERT INTO web_idempotency VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (username, idem_key) DO NOTHING",
                username,
                key,
                request_hash,
                0,
                nonce,
                _now().isoformat(),
            )
            rows = run(
                "SELECT request_hash, status, body FROM web_idempotency "
                "WHERE username = ? AND idem_key = ?",
                username,
                key,
            )
        stored_hash, status, body = rows[0]
        if int(status) == 0 and body == nonce:
            return None  # ours
        if stored_hash != request_hash:
            raise IdempotencyConflict(
                f"Idempotency-Key {key} was used for a different request: use a new key"
            )
        if int(status) == 0:
            raise IdempotencyConflict(f"the request with Idempotency-Key {key} is in progress")
        return int(status), json.loads(body)

    def settle(self, username: str, key: str, status: int, body: Any) -> None:
        with self.transaction() as run:
            run(
                "UPDATE web_idempotency SET status = ?, body = ? "
                "WHERE username = ? AND idem_key = ?",
                status,
                json.dumps(body, ensure_ascii=False),
                username,
                key,
            )

    def release(self, username: str, key: str) -> None:
        with self.transaction() as run:
            run(
                "DELETE FROM web_idempotency WHERE username = ? AND idem_key = ?",
                username,
                key,
            )


# -- use cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddUser:
    username: str
    role: str
    #: None: a password is generated and returned once.
    password: str | None = None
    #: The staff id whose certificate signs this user's actions (staff and quality users).
    staff_id: str | None = None


@dataclass(frozen=True)
class UserAdded:
    user: User
    #: The generated password (shown once), or None when one was given.
    generated_password: str | None


def add_user(store: UserStore, command: AddUser, known_staff: Callable[[str], bool]) -> UserAdded:
    """Add a user; `InputError` for a bad name, role, password or staff id."""
    if not NAME_PATTERN.match(command.username):
        raise InputError(f"user name {command.username!r}: 2 to 64 of letters, digits and _ . @ -")
    if command.role not in ROLES:
        raise InputError(f"unknown role {command.role!r} (roles: {', '.join(ROLES)})")
    staff_id = command.staff_id or None
    if command.role in SIGNING_ROLES:
        if staff_id is None:
            raise InputError(
                f"a {command.role} user signs with a staff certificate: give --staff-id"
            )
        if not known_staff(staff_id):
            raise InputError(f"no staff certificate {staff_id} at this station")
    elif staff_id is not None and command.role not in CERTIFICATE_ROLES:
        raise InputError(f"a {command.role} user signs nothing: no --staff-id")
    elif staff_id is not None and not known_staff(staff_id):
        raise InputError(f"no staff certificate {staff_id} at this station")
    generated = None
    password = command.password
    if password is None:
        generated = password = secrets.token_urlsafe(15)
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password needs at least {MIN_PASSWORD} characters")
    user = User(command.username, command.role, staff_id)
    store.add(user.username, user.role, _hasher.hash(password), staff_id)
    return UserAdded(user, generated)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def request_digest(*parts: Any) -> str:
    """A stable hash of a request (method, path, body) for the idempotency check."""
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()
