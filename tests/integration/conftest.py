"""Fixtures for the services against real PostgreSQL (a fresh migrated database per test)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from checker.access import RuntimeAccess
from taskhub import auth, tokens, users
from taskhub.db import Database
from taskhub.settings import TEST_ARGON2, Settings
from tests.integration.helpers import Account, password

JWT_SECRET = "integration-tests-secret-" + "0123456789abcdef" * 3  # 72 bytes


@pytest.fixture
def settings() -> Settings:
    """Cheap Argon2id and a 32+ byte secret; everything else at its default."""
    return Settings(argon2=TEST_ARGON2, jwt_secret=JWT_SECRET)


@pytest.fixture
def held(db_access: RuntimeAccess) -> Iterator[Database]:
    """A second `Database` on this test's database, with pools of its own: the actor a test
    pauses (on a lock, an event hook) while the others go on through `db`."""
    database = db_access.connect()
    yield database
    database.dispose()


@pytest.fixture
def make_account(db: Database, settings: Settings) -> Callable[..., Account]:
    """Register (with a unique email unless given) and sign in."""
    counter = itertools.count(1)

    def make(email: str | None = None, pw: str | None = None) -> Account:
        n = next(counter)
        email = email or f"user{n}@example.com"
        pw = pw or password(n)
        user = users.register(db, settings, email, pw)
        token = auth.login(db, settings, email, pw)
        return Account(user, pw, token, tokens.verify(db, settings, token))

    return make
