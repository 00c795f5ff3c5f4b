"""No password, password hash or token in logs or error messages, on any failure path.

Every logger runs at DEBUG (SQLAlchemy's engine and pool included: at INFO the engine logs
each statement with its parameters), and every service failure is provoked with a
distinctive password or token, including driver errors in the middle of writes that carry a
fresh Argon2id hash (PostgreSQL's DETAIL quotes the failing row). What is checked: the
exception's str and repr, its formatted traceback with the whole chain, and every log line.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import pytest
from sqlalchemy import URL, Engine, text

from checker.access import RuntimeAccess
from taskhub import auth, tokens, users
from taskhub.db import ENGINE_LOGGER, Database, make_engine
from taskhub.errors import (
    EmailTaken,
    InputTooLarge,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    PasswordReused,
    StorageError,
    TaskhubError,
    TemporaryPasswordExpired,
    WeakPassword,
)
from taskhub.principal import Principal
from taskhub.settings import Argon2Params, Settings
from tests.integration.faults import Rejection
from tests.integration.forge import hs256
from tests.integration.helpers import as_owner

EMAIL = "secretive@example.com"
SECRET = "Zebra-quartz-SECRET-9f3k-tangerine"
NEW_SECRET = "Walrus-opal-NEWSECRET-2m7q-lantern"
WEAK = "SECRETpw1"
LOGGERS = ("", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "psycopg", "taskhub")


@dataclass
class Secrets:
    """What must never be shown, and where to look for it."""

    values: list[str]
    caplog: pytest.LogCaptureFixture

    def add(self, *values: str) -> None:
        """More secrets (a token once issued, a hash once stored)."""
        self.values.extend(values)

    def assert_hidden(self, shown: str, where: str) -> None:
        """None of the secrets, nor any Argon2 PHC string, appears in `shown`."""
        assert "$argon2" not in shown, f"an Argon2 hash in {where}: {shown[:500]}"
        for secret in self.values:
            assert secret not in shown, f"a secret in {where}: {shown[:500]}"

    def assert_failure_hidden(self, call: Callable[[], object],
                              expected: type[TaskhubError]) -> TaskhubError:
        """Run `call`, which must fail with `expected`; nothing secret in what it shows."""
        with pytest.raises(expected) as caught:
            call()
        error = caught.value
        for where, shown in (("str", str(error)), ("repr", repr(error)),
                             ("traceback", "".join(traceback.format_exception(error)))):
            self.assert_hidden(shown, f"the {type(error).__name__}'s {where}")
        return error

    def assert_logs_hidden(self) -> None:
        """Nothing secret in any log record (message, arguments, attached exception)."""
        records = self.caplog.get_records("setup") + self.caplog.get_records("call")
        assert records, "nothing was logged: the loggers are not at DEBUG"
        for record in records:
            shown = record.getMessage() + repr(record.args)
            if record.exc_info:
                shown += "".join(traceback.format_exception(*record.exc_info))
            self.assert_hidden(shown, f"the log record {record.name}:{record.lineno}")


@pytest.fixture
def secrets(caplog: pytest.LogCaptureFixture) -> Iterator[Secrets]:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    watched = Secrets([SECRET, NEW_SECRET, WEAK], caplog)
    yield watched
    watched.assert_logs_hidden()


@pytest.fixture
def registered(db: Database, db_engine: Engine, settings: Settings, secrets: Secrets) -> str:
    """EMAIL with SECRET; its stored hash and a token are secrets too. Returns the token."""
    users.register(db, settings, EMAIL, SECRET)
    token = auth.login(db, settings, EMAIL, SECRET)
    with as_owner(db_engine) as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    secrets.add(token, token.rpartition(".")[2], stored, stored.rpartition("$")[2])
    return token


def test_the_engine_hides_bound_parameters(db_url: URL, db: Database) -> None:
    engine = make_engine(db_url)
    try:
        assert engine.hide_parameters
    finally:
        engine.dispose()
    assert db.app.hide_parameters and db.worker.hide_parameters  # what the services use


def test_sqlalchemy_logs_statements_but_not_parameters_or_rows(
        db_engine: Engine, settings: Settings, registered: str, secrets: Secrets) -> None:
    records = secrets.caplog.get_records("setup")  # registering and signing in
    messages = [record.getMessage() for record in records]
    assert any("INSERT INTO users" in message for message in messages)
    assert any("parameters hidden" in message for message in messages)
    assert not [r for r in records if r.name == ENGINE_LOGGER and r.levelno <= logging.DEBUG]


def test_the_check_detects_a_leak(db_access: RuntimeAccess, settings: Settings,
                                  caplog: pytest.LogCaptureFixture) -> None:
    """Control: engines configured otherwise log the hash both as a parameter (INFO) and
    in a result row (DEBUG), so the checks above would catch either."""
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    loud = db_access.connect(hide_parameters=False, logging_name="unfiltered")
    try:
        users.register(loud, settings, EMAIL, SECRET)
        auth.login(loud, settings, EMAIL, SECRET)
    finally:
        loud.dispose()
    leaks = [r for r in caplog.records if "$argon2id$" in r.getMessage()]
    assert {r.levelno for r in leaks} == {logging.INFO, logging.DEBUG}


def test_refused_credentials(db: Database, settings: Settings, registered: str,
                             secrets: Secrets) -> None:
    principal = tokens.verify(db, settings, registered)
    cases: list[tuple[Callable[[], object], type[TaskhubError]]] = [
        (lambda: users.register(db, settings, EMAIL, NEW_SECRET), EmailTaken),
        (lambda: users.register(db, settings, "w@example.com", WEAK), WeakPassword),
        (lambda: users.register(db, settings, "b@example.com", SECRET * 40),
         InputTooLarge),
        (lambda: users.register(db, settings, "s@example.com", SECRET + "\ud800"),
         InvalidInput),
        (lambda: auth.login(db, settings, EMAIL, NEW_SECRET), InvalidCredentials),
        (lambda: auth.login(db, settings, "nobody@example.com", SECRET),
         InvalidCredentials),
        (lambda: auth.change_password(db, settings, principal, NEW_SECRET, SECRET),
         InvalidCredentials),
        (lambda: auth.change_password(db, settings, principal, SECRET, WEAK),
         WeakPassword),
        (lambda: auth.change_password(db, settings, principal, SECRET, SECRET),
         PasswordReused),
    ]
    for call, expected in cases:
        secrets.assert_failure_hidden(call, expected)


def test_refused_tokens(db: Database, db_engine: Engine, settings: Settings, registered: str,
                        secrets: Secrets) -> None:
    header, payload, signature = registered.split(".")
    forged = hs256({"sub": "x"}, "another-secret-of-at-least-32-bytes")
    for bad in (registered[:-3], f"{header}.{payload}.", registered + "A" * 5000,
                f"{header}.{payload}.{signature[::-1]}", forged, registered + "\u00e9"):
        secrets.assert_failure_hidden(partial(tokens.verify, db, settings, bad),
                                      InvalidToken)
    auth.logout(db, tokens.verify(db, settings, registered))
    error = secrets.assert_failure_hidden(
        lambda: tokens.verify(db, settings, registered), InvalidToken)
    assert error.reason == "session revoked"  # type: ignore[attr-defined]


def test_temporary_passwords(db: Database, settings: Settings, registered: str,
                             secrets: Secrets) -> None:
    user_id = tokens.verify(db, settings, registered).user_id
    temporary = auth.issue_temporary_password(db, settings, user_id)
    secrets.add(temporary)
    auth.login(db, settings, EMAIL, temporary)
    secrets.assert_failure_hidden(lambda: auth.login(db, settings, EMAIL, temporary),
                                  TemporaryPasswordExpired)


Write = Callable[[Database, Settings, Principal], object]
WRITES_WITH_A_HASH: dict[str, tuple[str, Write]] = {
    "register: users": ("users", lambda e, s, p: users.register(e, s, "n@example.com", SECRET)),
    "register: history": ("password_history",
                          lambda e, s, p: users.register(e, s, "n@example.com", SECRET)),
    "change: users": ("users", lambda e, s, p: auth.change_password(e, s, p, SECRET,
                                                                   NEW_SECRET)),
    "change: history": ("password_history",
                        lambda e, s, p: auth.change_password(e, s, p, SECRET, NEW_SECRET)),
    "temporary password": ("users",
                           lambda e, s, p: auth.issue_temporary_password(e, s, p.user_id)),
    "rehash at login": ("users", lambda e, s, p: auth.login(
        e, dataclasses.replace(s, argon2=Argon2Params(2, 2048, 1)), EMAIL, SECRET)),
    "session at login": ("auth_sessions", lambda e, s, p: auth.login(e, s, EMAIL, SECRET)),
}


@pytest.mark.parametrize("case", WRITES_WITH_A_HASH)
def test_driver_errors_in_writes_that_carry_a_hash(db: Database,
        db_engine: Engine, settings: Settings, registered: str, secrets: Secrets,
        case: str) -> None:
    """A CHECK that refuses the write: PostgreSQL's error quotes the failing row (the new
    hash among it) in its DETAIL, SQLAlchemy's the statement and its parameters."""
    table, call = WRITES_WITH_A_HASH[case]
    principal = tokens.verify(db, settings, registered)
    with Rejection.check(table, "false").active(db_engine):
        error = secrets.assert_failure_hidden(lambda: call(db, settings, principal),
                                              StorageError)
    assert error.sqlstate == "23514"  # type: ignore[attr-defined]
    assert "injected_fault" in str(error)  # the primary message still names the constraint
