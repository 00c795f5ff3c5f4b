"""Authentication properties beyond the basics in test_users / test_password_policy / test_tokens:
login does not tell unknown emails from wrong passwords (same error, the same Argon2id work),
a temporary password works once even under a race, and no session outlives a password
change, a new temporary password or the user's deletion.

Timing is measured by benchmarks/login_timing_bench.py, never asserted here.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, text

from taskhub import auth, tokens, users
from taskhub.db import Database
from taskhub.errors import (
    InvalidCredentials,
    InvalidToken,
    TaskhubError,
    TemporaryPasswordExpired,
)
from taskhub.settings import Argon2Params, Settings
from tests.integration.helpers import Account, as_owner, password
from tests.integration.spies import spy_on_argon2


def refusal(call: Callable[[], object]) -> InvalidCredentials:
    with pytest.raises(InvalidCredentials) as caught:
        call()
    return caught.value


def test_unknown_email_and_wrong_password_are_indistinguishable(
        db: Database, settings: Settings, make_account: Callable[..., Account],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Same error (type, message, args) and the same Argon2 work: exactly one Argon2id
    verification with the configured parameters, and no hashing, on every path."""
    account = make_account()
    argon2 = spy_on_argon2(monkeypatch)
    attempts = {
        "wrong password": (account.user.email, password(99)),
        "unknown email": ("nobody@example.com", account.password),
        "malformed email": ("not an email", account.password),
        "unknown email, other case": (account.user.email.upper() + "x", account.password),
    }
    seen = {}
    for name, (email, secret) in attempts.items():
        argon2.clear()
        error = refusal(lambda email=email, secret=secret: auth.login(  # type: ignore[misc]
            db, settings, email, secret))
        seen[name] = (type(error), str(error), error.args, argon2.calls[:])
    first = next(iter(seen.values()))
    assert first[3] == [("verify", settings.argon2)]
    assert all(outcome == first for outcome in seen.values()), seen


def test_the_dummy_verification_follows_the_settings(db: Database,
        settings: Settings, make_account: Callable[..., Account],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """When the Argon2 parameters change, the unknown-email path verifies with the new
    ones, as a wrong password for an account already re-hashed to them does; and even the
    first unknown-email login with them hashes nothing (the dummy hash costs no Argon2)."""
    account = make_account()
    heavier = dataclasses.replace(settings, argon2=Argon2Params(2, 2056, 1))  # used nowhere else
    auth.login(db, heavier, account.user.email, account.password)  # re-hashes
    argon2 = spy_on_argon2(monkeypatch)
    refusal(lambda: auth.login(db, heavier, "nobody@example.com", account.password))
    unknown = argon2.calls[:]
    argon2.clear()
    refusal(lambda: auth.login(db, heavier, account.user.email, password(98)))
    assert unknown == argon2.calls == [("verify", heavier.argon2)]


def test_a_temporary_password_works_once_under_a_race(db: Database,
        db_engine: Engine, settings: Settings, make_account: Callable[..., Account]) -> None:
    account = make_account()
    temporary = auth.issue_temporary_password(db, settings, account.user.id)
    racers = 6
    start = threading.Barrier(racers)

    def race() -> str | TaskhubError:
        start.wait()
        try:
            return auth.login(db, settings, account.user.email, temporary)
        except TaskhubError as exc:
            return exc

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(lambda _: race(), range(racers)))
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, TemporaryPasswordExpired) for o in outcomes if o not in winners)
    assert tokens.verify(db, settings, winners[0]).must_change_password
    with as_owner(db_engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM auth_sessions WHERE user_id = :u "
                                 "AND revoked_at IS NULL"),
                            {"u": account.user.id}).scalar_one() == 1


def test_a_temporary_password_dies_with_the_forced_change(db: Database,
        db_engine: Engine, settings: Settings, make_account: Callable[..., Account]) -> None:
    account = make_account()
    temporary = auth.issue_temporary_password(db, settings, account.user.id)
    restricted = tokens.verify(db, settings,
                               auth.login(db, settings, account.user.email, temporary))
    auth.change_password(db, settings, restricted, temporary, password(50))
    refusal(lambda: auth.login(db, settings, account.user.email, temporary))
    with as_owner(db_engine) as conn:  # even with its expiry moved back into the future
        conn.execute(text("UPDATE users SET temp_password_expires_at = now() + interval '1h' "
                          "WHERE id = :u"), {"u": account.user.id})
    refusal(lambda: auth.login(db, settings, account.user.email, temporary))


def test_a_new_temporary_password_ends_the_previous_ones_session(db: Database,
        settings: Settings, make_account: Callable[..., Account]) -> None:
    account = make_account()
    first = auth.issue_temporary_password(db, settings, account.user.id)
    restricted = auth.login(db, settings, account.user.email, first)
    auth.issue_temporary_password(db, settings, account.user.id)
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.verify(db, settings, restricted)
    refusal(lambda: auth.login(db, settings, account.user.email, first))


def test_deleting_a_user_ends_every_session(db: Database, db_engine: Engine, settings: Settings,
                                           make_account: Callable[..., Account]) -> None:
    account = make_account()
    email, secret = account.user.email, account.password
    live = [auth.login(db, settings, email, secret) for _ in range(3)]
    auth.logout(db, tokens.verify(db, settings, live[0]))  # one revoked
    users.delete(db, tokens.verify(db, settings, live[1]))
    for token in (account.token, *live):
        with pytest.raises(InvalidToken, match="unknown session"):
            tokens.verify(db, settings, token)
    with as_owner(db_engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM auth_sessions")).scalar_one() == 0
    # A new user with the same email and password is someone else: the old tokens stay dead.
    users.register(db, settings, email, secret)
    for token in live:
        with pytest.raises(InvalidToken, match="unknown session"):
            tokens.verify(db, settings, token)
