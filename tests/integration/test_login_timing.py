"""A wrong password to an account whose hash is older and cheaper is refused no sooner than
one to a current account: the login waits out the rest of a current verification. (Checked as
logic with a recording sleep; the wall-clock ratios are `benchmarks/login_timing_bench.py`'s.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from taskhub import auth, passwords, users
from taskhub.db import Database
from taskhub.errors import InvalidCredentials
from taskhub.settings import Argon2Params, Settings
from tests.integration.helpers import password

CHEAPER = Argon2Params(time_cost=1, memory_cost=512, parallelism=1)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """What the passwords module asked to sleep (nothing really waits)."""
    asked: list[float] = []
    monkeypatch.setattr(passwords.time, "sleep", asked.append)
    return asked


def _refused(call: Any) -> None:
    with pytest.raises(InvalidCredentials):
        call()


def test_only_a_cheaper_hash_waits_and_for_the_rest_of_a_current_verification(
        db: Database, settings: Settings, slept: list[float]) -> None:
    users.register(db, settings, "current@example.com", password(1))
    users.register(db, dataclasses.replace(settings, argon2=CHEAPER), "old@example.com",
                   password(2))
    for _ in range(3):  # current verifications: the reference
        _refused(lambda: auth.login(db, settings, "current@example.com", "wrong password"))
        _refused(lambda: auth.login(db, settings, "nobody@example.com", "wrong password"))
    assert slept == []
    reference = passwords.current_cost(settings)
    assert reference is not None and reference > 0

    _refused(lambda: auth.login(db, settings, "old@example.com", "wrong password"))

    assert len(slept) == 1 and 0 < slept[0] <= reference
    auth.login(db, settings, "old@example.com", password(2))  # the right one: no wait
    assert len(slept) == 1


@pytest.mark.no_audit  # a bcrypt-looking hash, which the audit rightly refuses
def test_a_hash_that_is_not_argon2id_also_waits(db: Database, db_engine: Any,
                                                settings: Settings, slept: list[float]) -> None:
    from sqlalchemy import text

    users.register(db, settings, "bcrypt@example.com", password(3))
    with db_engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = '$2b$12$legacy' "
                          "WHERE email = 'bcrypt@example.com'"))
    _refused(lambda: auth.login(db, settings, "nobody@example.com", "x"))  # the reference
    _refused(lambda: auth.login(db, settings, "bcrypt@example.com", password(3)))
    assert len(slept) == 1
