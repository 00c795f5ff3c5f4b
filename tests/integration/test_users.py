"""Users: create, read, update, delete; unique emails; Argon2id storage and rehash on login."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text

from taskhub import auth, passwords, tokens, users
from taskhub.db import Database
from taskhub.errors import (
    EmailTaken,
    InputTooLarge,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
)
from taskhub.settings import Argon2Params, Settings
from tests.integration.helpers import Account, as_owner, password


def stored_hash(engine: Engine, email: str) -> str:
    with as_owner(engine) as conn:
        return str(conn.execute(text("SELECT password_hash FROM users WHERE email = :e"),
                                {"e": email}).scalar_one())


def test_register_normalises_the_email_and_reads_back(db: Database,
        settings: Settings) -> None:
    user = users.register(db, settings, "  Ada.Lovelace@Example.COM ", password(1))
    assert user.email == "ada.lovelace@example.com"
    assert not user.must_change_password
    token = auth.login(db, settings, "ADA.LOVELACE@example.com", password(1))
    principal = tokens.verify(db, settings, token)
    assert principal.user_id == user.id
    assert users.get(db, principal) == user


def test_register_records_the_first_password_in_history(db: Database,
        db_engine: Engine, settings: Settings) -> None:
    user = users.register(db, settings, "h@example.com", password(1))
    with as_owner(db_engine) as conn:
        history = conn.execute(text("SELECT password_hash FROM password_history "
                                    "WHERE user_id = :u"), {"u": user.id}).scalars().all()
    assert history == [stored_hash(db_engine, "h@example.com")]


@pytest.mark.parametrize("email", ["no-at-sign", "two@@example.com", "a b@example.com", ""])
def test_malformed_email_refused(db: Database, settings: Settings, email: str) -> None:
    with pytest.raises(InvalidInput):
        users.register(db, settings, email, password(1))


def test_oversized_email_refused(db: Database, settings: Settings) -> None:
    with pytest.raises(InputTooLarge):
        users.register(db, settings, "a" * 250 + "@example.com", password(1))


def test_duplicate_email_in_another_case_refused(db: Database,
        db_engine: Engine, settings: Settings) -> None:
    users.register(db, settings, "Grace@Example.com", password(1))
    with pytest.raises(EmailTaken):
        users.register(db, settings, "gRACE@example.COM", password(2))
    with as_owner(db_engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 1


def test_update_email(db: Database, settings: Settings,
                      make_account: Callable[..., Account]) -> None:
    account = make_account("old@example.com")
    updated = users.update_email(db, account.principal, " New@Example.com")
    assert updated.email == "new@example.com"
    assert updated.updated_at >= account.user.updated_at
    assert users.get(db, account.principal).email == "new@example.com"
    with pytest.raises(InvalidCredentials):
        auth.login(db, settings, "old@example.com", account.password)
    auth.login(db, settings, "NEW@example.com", account.password)


def test_update_email_to_anothers_in_another_case_refused(db: Database,
        make_account: Callable[..., Account]) -> None:
    make_account("taken@example.com")
    account = make_account("mine@example.com")
    with pytest.raises(EmailTaken):
        users.update_email(db, account.principal, "TAKEN@example.com")
    assert users.get(db, account.principal).email == "mine@example.com"


def test_delete(db: Database, settings: Settings,
                make_account: Callable[..., Account]) -> None:
    account = make_account()
    other = make_account()
    users.delete(db, account.principal)
    with pytest.raises(NotFound):
        users.get(db, account.principal)
    with pytest.raises(NotFound):
        users.delete(db, account.principal)
    with pytest.raises(InvalidToken, match="unknown session"):
        tokens.verify(db, settings, account.token)
    with pytest.raises(InvalidCredentials):
        auth.login(db, settings, account.user.email, account.password)
    assert users.get(db, other.principal) == other.user


def test_stored_hash_is_argon2id_and_verifies(db: Database,
                                              db_engine: Engine, settings: Settings) -> None:
    users.register(db, settings, "phc@example.com", password(1))
    stored = stored_hash(db_engine, "phc@example.com")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert passwords.verify(stored, password(1), settings)
    assert password(1) not in stored


def test_login_rehashes_when_the_parameters_change(db: Database,
        db_engine: Engine, settings: Settings) -> None:
    users.register(db, settings, "re@example.com", password(1))
    before = stored_hash(db_engine, "re@example.com")
    heavier = dataclasses.replace(settings, argon2=Argon2Params(time_cost=2, memory_cost=2048,
                                                                parallelism=1))
    auth.login(db, settings, "re@example.com", password(1))
    assert stored_hash(db_engine, "re@example.com") == before  # same parameters: untouched

    auth.login(db, heavier, "re@example.com", password(1))
    after = stored_hash(db_engine, "re@example.com")
    assert after.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert passwords.verify(after, password(1), heavier)
    assert not passwords.needs_rehash(after, heavier)
    auth.login(db, heavier, "re@example.com", password(1))
    assert stored_hash(db_engine, "re@example.com") == after  # no rehash once current


def test_wrong_password_and_unknown_email_look_the_same(db: Database,
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    users.register(db, settings, "known@example.com", password(1))
    dummy_calls: list[str] = []
    real_dummy = passwords.verify_dummy

    def counting_dummy(pw: str, s: Settings) -> None:
        dummy_calls.append(pw)
        real_dummy(pw, s)

    monkeypatch.setattr(passwords, "verify_dummy", counting_dummy)
    with pytest.raises(InvalidCredentials) as wrong:
        auth.login(db, settings, "known@example.com", password(2))
    assert dummy_calls == []
    with pytest.raises(InvalidCredentials) as unknown:
        auth.login(db, settings, "unknown@example.com", password(1))
    assert dummy_calls == [password(1)]  # an Argon2 verification was spent anyway
    with pytest.raises(InvalidCredentials):
        auth.login(db, settings, "not an email", password(1))
    assert str(wrong.value) == str(unknown.value)


def test_oversized_password_refused_at_login(db: Database, settings: Settings) -> None:
    with pytest.raises(InputTooLarge):
        auth.login(db, settings, "x@example.com", "\u00e9" * 513)  # 1026 bytes
