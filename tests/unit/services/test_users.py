"""services.users: the user tables in the ledger's store (SQLite and PostgreSQL), Argon2,
lockout, sessions and idempotency claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services import users
from signing.errors import InputError

PASSWORD = "a long enough password"
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def known(staff_id: str) -> bool:
    return staff_id in ("N001", "P001", "Q001")


@pytest.fixture
def store(backend_db: str) -> users.UserStore:
    return users.UserStore(backend_db)


def add(store: users.UserStore, name: str = "nurse", role: str = "staff") -> users.UserAdded:
    staff = "N001" if role in users.SIGNING_ROLES else None
    return users.add_user(store, users.AddUser(name, role, PASSWORD, staff), known)


def test_the_password_is_stored_as_an_argon2id_hash(store: users.UserStore) -> None:
    add(store)
    with store.transaction() as run:
        (stored,) = run("SELECT password_hash FROM web_users WHERE username = ?", "nurse")[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_user_logs_in_with_the_right_password(store: users.UserStore) -> None:
    add(store)
    user = store.login("nurse", PASSWORD, "10.0.0.1", NOW)
    assert user == users.User("nurse", "staff", "N001")
    assert store.attempts("nurse") == [(NOW.isoformat(), True, "10.0.0.1")]


def test_a_wrong_password_fails_and_is_recorded(store: users.UserStore) -> None:
    add(store)
    with pytest.raises(users.AuthenticationFailed):
        store.login("nurse", "wrong", "10.0.0.2", NOW)
    assert store.attempts("nurse") == [(NOW.isoformat(), False, "10.0.0.2")]


def test_an_unknown_name_fails_like_a_wrong_password(store: users.UserStore) -> None:
    with pytest.raises(users.AuthenticationFailed, match="wrong user name or password"):
        store.login("nobody", PASSWORD, "", NOW)
    assert store.attempts("nobody")[0][1] is False


def test_repeated_failures_lock_the_account_for_a_while(store: users.UserStore) -> None:
    add(store)
    for i in range(users.MAX_FAILURES - 1):
        with pytest.raises(users.AuthenticationFailed):
            store.login("nurse", "wrong", "", NOW + timedelta(seconds=i))
    with pytest.raises(users.AccountLocked):
        store.login("nurse", "wrong", "", NOW + timedelta(seconds=10))
    with pytest.raises(users.AccountLocked):  # the right password while locked
        store.login("nurse", PASSWORD, "", NOW + timedelta(minutes=1))
    later = NOW + users.LOCK_FOR + timedelta(minutes=1)
    assert store.login("nurse", PASSWORD, "", later).username == "nurse"


def test_a_success_resets_the_failure_count(store: users.UserStore) -> None:
    add(store)
    for _ in range(users.MAX_FAILURES - 1):
        with pytest.raises(users.AuthenticationFailed):
            store.login("nurse", "wrong", "", NOW)
    store.login("nurse", PASSWORD, "", NOW)
    with pytest.raises(users.AuthenticationFailed):
        store.login("nurse", "wrong", "", NOW)  # one failure, not the fifth: not locked


def test_a_session_token_is_stored_hashed_and_expires(store: users.UserStore) -> None:
    add(store)
    user = store.login("nurse", PASSWORD, "", NOW)
    token, session = store.open_session(user, NOW)
    with store.transaction() as run:
        hashes = [r[0] for r in run("SELECT token_hash FROM web_sessions")]
    assert token not in hashes and len(hashes) == 1
    assert store.session(token, NOW + timedelta(minutes=1)) == session
    assert store.session(token, NOW + users.SESSION_FOR) is None
    store.close_session(token)
    assert store.session(token, NOW) is None


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (users.AddUser("a b", "staff", PASSWORD, "N001"), "user name"),
        (users.AddUser("x1", "king", PASSWORD), "unknown role"),
        (users.AddUser("x1", "staff", PASSWORD), "--staff-id"),
        (users.AddUser("x1", "staff", PASSWORD, "Z999"), "no staff certificate"),
        (users.AddUser("x1", "regulator", PASSWORD, "N001"), "signs nothing"),
        (users.AddUser("x1", "regulator", "short"), "at least"),
    ],
    ids=["bad-name", "bad-role", "staff-without-id", "unknown-staff", "id-for-reader", "short"],
)
def test_bad_users_are_input_errors_and_add_nothing(
    store: users.UserStore, command: users.AddUser, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        users.add_user(store, command, known)
    assert store.users() == []


def test_a_name_is_added_once(store: users.UserStore) -> None:
    add(store)
    with pytest.raises(InputError, match="already exists"):
        add(store)


def test_a_generated_password_is_returned_once_and_works(store: users.UserStore) -> None:
    added = users.add_user(store, users.AddUser("reg", "regulator"), known)
    assert added.generated_password is not None
    assert store.login("reg", added.generated_password, "", NOW).role == "regulator"


def test_an_idempotency_key_replays_the_first_answer(store: users.UserStore) -> None:
    assert store.claim("nurse", "k1", "hash-a") is None
    with pytest.raises(users.IdempotencyConflict, match="in progress"):
        store.claim("nurse", "k1", "hash-a")
    store.settle("nurse", "k1", 201, {"version": 3})
    assert store.claim("nurse", "k1", "hash-a") == (201, {"version": 3})
    with pytest.raises(users.IdempotencyConflict, match="different request"):
        store.claim("nurse", "k1", "hash-b")
    assert store.claim("physician", "k1", "hash-b") is None  # keys are per user


def test_a_released_key_can_be_claimed_again(store: users.UserStore) -> None:
    assert store.claim("nurse", "k2", "h") is None
    store.release("nurse", "k2")
    assert store.claim("nurse", "k2", "h") is None
