"""Password policy through the services: strength, history, temporary passwords."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, text

from taskhub import auth, passwords, tasks, tokens, users
from taskhub.db import Database
from taskhub.errors import (
    InputTooLarge,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    PasswordChangeRequired,
    PasswordReused,
    TemporaryPasswordExpired,
    WeakPassword,
)
from taskhub.settings import Settings
from tests.integration.helpers import Account, as_owner, count, password, wait_for_lock_waiters


def test_weak_password_refused_with_feedback(db: Database,
                                             db_engine: Engine, settings: Settings) -> None:
    with pytest.raises(WeakPassword) as caught:
        users.register(db, settings, "weak@example.com", "password1")
    assert caught.value.warning
    assert caught.value.suggestions
    assert caught.value.warning in str(caught.value)
    assert count(db_engine, "SELECT count(*) FROM users") == 0


def test_own_email_is_a_weak_password(db: Database, settings: Settings) -> None:
    with pytest.raises(WeakPassword):
        users.register(db, settings, "qzxvbrtplkm@example.com", "qzxvbrtplkm1")
    users.register(db, settings, "someone@example.com", "qzxvbrtplkm1")


def test_oversized_password_refused(db: Database, settings: Settings) -> None:
    with pytest.raises(InputTooLarge, match="1024 bytes"):
        users.register(db, settings, "big@example.com", "\u00e9" * 513)


def test_change_password_checks_the_old_one_and_strength(db: Database,
        db_engine: Engine, settings: Settings, make_account: Callable[..., Account]) -> None:
    account = make_account()
    with pytest.raises(InvalidCredentials):
        auth.change_password(db, settings, account.principal, password(50), password(51))
    with pytest.raises(WeakPassword):
        auth.change_password(db, settings, account.principal, account.password,
                             "password1")
    tokens.verify(db, settings, account.token)  # refused changes end no session
    before = count(db_engine, "SELECT count(*) FROM password_history")
    auth.change_password(db, settings, account.principal, account.password, password(51))
    assert count(db_engine, "SELECT count(*) FROM password_history") == before + 1
    with as_owner(db_engine) as conn:
        changed = conn.execute(text("SELECT password_changed_at FROM users WHERE id = :u"),
                               {"u": account.user.id}).scalar_one()
    assert changed > account.user.password_changed_at
    with pytest.raises(InvalidCredentials):
        auth.login(db, settings, account.user.email, account.password)
    auth.login(db, settings, account.user.email, password(51))


def test_no_reuse_of_the_last_n(db: Database, db_engine: Engine, settings: Settings) -> None:
    depth = settings.password_history_depth
    email = "history@example.com"
    users.register(db, settings, email, password(0))
    current = password(0)

    def change(new: str) -> None:
        principal = tokens.verify(db, settings,
                                  auth.login(db, settings, email, current))
        auth.change_password(db, settings, principal, current, new)

    for n in range(1, depth + 1):  # passwords 0..depth: the last `depth` are 1..depth
        change(password(n))
        current = password(n)
    for n in range(1, depth + 1):
        with pytest.raises(PasswordReused):
            change(password(n))
    assert count(db_engine, "SELECT count(*) FROM password_history") == depth  # pruned
    change(password(0))  # the (depth + 1)-th most recent password is allowed again


def test_login_waits_for_a_concurrent_password_change(db: Database,
        db_engine: Engine, settings: Settings, make_account: Callable[..., Account]) -> None:
    """A login racing a password change must not open a session with the old password: it
    queues on the user's row and then checks the password that was committed."""
    account = make_account()
    new_hash = passwords.hash_password(password(60), settings)
    with ThreadPoolExecutor(1) as pool, db_engine.connect() as change:
        change.begin()  # what change_password writes, held uncommitted
        change.execute(text("UPDATE users SET password_hash = :h, "
                            "password_changed_at = clock_timestamp() WHERE id = :u"),
                       {"h": new_hash, "u": account.user.id})
        change.execute(text("UPDATE auth_sessions SET revoked_at = clock_timestamp() "
                            "WHERE user_id = :u"), {"u": account.user.id})
        old = pool.submit(auth.login, db, settings, account.user.email, account.password)
        wait_for_lock_waiters(db_engine, 1)
        change.commit()
        with pytest.raises(InvalidCredentials):
            old.result(timeout=30)
    tokens.verify(db, settings,
                  auth.login(db, settings, account.user.email, password(60)))


def test_temporary_password_lifecycle(db: Database, settings: Settings,
                                      make_account: Callable[..., Account]) -> None:
    account, other = make_account(), make_account()
    task = tasks.create(db, account.principal, "before the reset")
    temporary = auth.issue_temporary_password(db, settings, account.user.id)
    assert temporary != account.password

    # Every earlier session ends and the old password stops working.
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.verify(db, settings, account.token)
    with pytest.raises(InvalidCredentials):
        auth.login(db, settings, account.user.email, account.password)
    tokens.verify(db, settings, other.token)  # other users are untouched

    # A wrong guess does not consume the temporary password.
    with pytest.raises(InvalidCredentials):
        auth.login(db, settings, account.user.email, temporary + "x")
    restricted_token = auth.login(db, settings, account.user.email, temporary)
    restricted = tokens.verify(db, settings, restricted_token)
    assert restricted.must_change_password

    # Single use.
    with pytest.raises(TemporaryPasswordExpired):
        auth.login(db, settings, account.user.email, temporary)

    # The restricted session can do nothing but change the password (and log out).
    forbidden: list[Callable[[], object]] = [
        lambda: users.get(db, restricted),
        lambda: users.update_email(db, restricted, "elsewhere@example.com"),
        lambda: users.delete(db, restricted),
        lambda: tasks.create(db, restricted, "new"),
        lambda: tasks.get(db, restricted, task.id),
        lambda: tasks.list_tasks(db, restricted),
        lambda: tasks.update(db, restricted, task.id, title="x"),
        lambda: tasks.start(db, restricted, task.id),
        lambda: tasks.delete(db, restricted, task.id),
    ]
    for attempt in forbidden:
        with pytest.raises(PasswordChangeRequired):
            attempt()
    with pytest.raises(PasswordReused):  # not even back to the temporary password itself
        auth.change_password(db, settings, restricted, temporary, temporary)
    with pytest.raises(PasswordReused):  # nor to a recent password
        auth.change_password(db, settings, restricted, temporary, account.password)

    auth.change_password(db, settings, restricted, temporary, password(77))
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.verify(db, settings, restricted_token)
    full = tokens.verify(db, settings,
                         auth.login(db, settings, account.user.email, password(77)))
    assert not full.must_change_password
    assert tasks.get(db, full, task.id).title == "before the reset"
    user = users.get(db, full)
    assert (user.must_change_password, user.temp_password_expires_at) == (False, None)


def test_temporary_password_expires(db: Database, db_engine: Engine, settings: Settings,
                                    make_account: Callable[..., Account]) -> None:
    account = make_account()
    short = dataclasses.replace(settings, temp_password_ttl_seconds=60)
    temporary = auth.issue_temporary_password(db, short, account.user.id)
    with as_owner(db_engine) as conn:
        ttl = conn.execute(text("SELECT extract(epoch FROM temp_password_expires_at - "
                                "password_changed_at) FROM users WHERE id = :u"),
                           {"u": account.user.id}).scalar_one()
        assert 59 < ttl <= 60.1
        conn.execute(text("UPDATE users SET temp_password_expires_at = now() - interval '1 s' "
                          "WHERE id = :u"), {"u": account.user.id})
    with pytest.raises(TemporaryPasswordExpired):
        auth.login(db, settings, account.user.email, temporary)
    with pytest.raises(InvalidCredentials):  # and the old password does not come back
        auth.login(db, settings, account.user.email, account.password)


def test_temporary_password_is_random_and_strong(db: Database, settings: Settings,
                                                 make_account: Callable[..., Account]) -> None:
    account = make_account()
    first = auth.issue_temporary_password(db, settings, account.user.id)
    second = auth.issue_temporary_password(db, settings, account.user.id)
    assert first != second
    passwords.check_strength(second, account.user.email, settings)
    with pytest.raises(InvalidCredentials):  # the second replaced the first
        auth.login(db, settings, account.user.email, first)
    with pytest.raises(NotFound):
        auth.issue_temporary_password(db, settings, uuid.uuid4())
