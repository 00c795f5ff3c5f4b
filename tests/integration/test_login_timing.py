"""A wrong password to an account whose hash is older and cheaper is refused no sooner than
one to a current account: the login waits out the rest of a current verification.

Checked as logic on a simulated clock: a verification advances it by its Argon2 cost (memory
times passes, in microseconds) and a sleep only records what was asked, so the verdict does not
depend on how busy the machine is. The wall-clock ratios are `benchmarks/login_timing_bench.py`'s.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from argon2 import extract_parameters

from taskhub import auth, passwords, users
from taskhub.db import Database
from taskhub.errors import InvalidCredentials
from taskhub.settings import Argon2Params, Hasher, Settings
from tests.integration.helpers import password

CHEAPER = Argon2Params(time_cost=1, memory_cost=512, parallelism=1)


def _cost(params: Argon2Params) -> float:
    """The simulated seconds one verification at `params` takes."""
    return params.memory_cost * params.time_cost * 1e-6


class _Clock:
    """perf_counter and sleep for the modules under test: time passes only in verifications."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


class _TimedHasher:
    """argon2-cffi's hasher whose verifications advance the clock by the hash's own cost."""

    def __init__(self, params: Argon2Params, clock: _Clock) -> None:
        self._inner = passwords.hasher(params)
        self._clock = clock

    def hash(self, password: str) -> str:
        return self._inner.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        made = extract_parameters(stored)  # InvalidHashError for a hash that is not Argon2
        self._clock.now += _cost(Argon2Params(made.time_cost, made.memory_cost,
                                              made.parallelism))
        return self._inner.verify(stored, password)

    def check_needs_rehash(self, stored: str) -> bool:
        return self._inner.check_needs_rehash(stored)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """The simulated clock of auth and passwords, with no verification durations recorded yet."""
    simulated = _Clock()
    for module in (auth, passwords):
        monkeypatch.setattr(module, "time", simulated)
    monkeypatch.setattr(passwords, "_cost_samples", {})
    return simulated


@pytest.fixture
def timed(settings: Settings, clock: _Clock) -> Settings:
    """The test settings with verifications that take their Argon2 cost on the clock."""
    def factory(params: Argon2Params) -> Hasher:
        return _TimedHasher(params, clock)
    return dataclasses.replace(settings, hasher=factory)


def _refused(call: Any) -> None:
    with pytest.raises(InvalidCredentials):
        call()


def test_only_a_cheaper_hash_waits_and_for_the_rest_of_a_current_verification(
        db: Database, timed: Settings, clock: _Clock) -> None:
    users.register(db, timed, "current@example.com", password(1))
    users.register(db, dataclasses.replace(timed, argon2=CHEAPER), "old@example.com",
                   password(2))
    for _ in range(3):  # current verifications: the reference
        _refused(lambda: auth.login(db, timed, "current@example.com", "wrong password"))
        _refused(lambda: auth.login(db, timed, "nobody@example.com", "wrong password"))
    assert clock.slept == []
    reference = _cost(timed.argon2)
    assert passwords.current_cost(timed) == pytest.approx(reference)

    _refused(lambda: auth.login(db, timed, "old@example.com", "wrong password"))

    assert clock.slept == [pytest.approx(reference - _cost(CHEAPER))]
    auth.login(db, timed, "old@example.com", password(2))  # the right one: no wait
    assert len(clock.slept) == 1


@pytest.mark.checker_no_audit  # a bcrypt-looking hash, which the audit rightly refuses
def test_a_hash_that_is_not_argon2id_also_waits(db: Database, db_engine: Any,
                                                timed: Settings, clock: _Clock) -> None:
    from sqlalchemy import text

    users.register(db, timed, "bcrypt@example.com", password(3))
    with db_engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = '$2b$12$legacy' "
                          "WHERE email = 'bcrypt@example.com'"))
    _refused(lambda: auth.login(db, timed, "nobody@example.com", "x"))  # the reference
    _refused(lambda: auth.login(db, timed, "bcrypt@example.com", password(3)))
    assert clock.slept == [pytest.approx(_cost(timed.argon2))]  # refused at once, then waits
