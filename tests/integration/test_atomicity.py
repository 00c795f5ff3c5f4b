"""Atomicity: every service operation that writes more than once is all or nothing.

Each operation is broken after one of its writes in three ways: a driver error raised right
after the write (an engine event), a constraint violation in a later write (a temporary CHECK
constraint or trigger), and its session ended by the server from another connection
(`pg_terminate_backend`) before the next statement or COMMIT. Every time, the service raises
StorageError (a domain error, never the driver's), every table holds exactly the rows it held
before, and the same operation then succeeds on a healthy connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import pytest
from sqlalchemy import URL, Engine, text

from checker.access import RuntimeAccess
from taskhub import auth, passwords, tasks, users
from taskhub.db import Database, libpq_url
from taskhub.errors import StorageError
from taskhub.principal import Worker
from taskhub.settings import Argon2Params, Settings
from tests.integration.faults import (
    Rejection,
    after_write,
    raise_driver_error,
    snapshot,
    terminate_backend,
)
from tests.integration.helpers import Account, as_owner, password

WORKER = Worker("atomicity")
CHEAPER_ARGON2 = Argon2Params(time_cost=1, memory_cost=512, parallelism=1)  # than the tests

Act = Callable[[Database], object]


@dataclass(frozen=True)
class World:
    """What an operation's arrangement may use: the owner's engine (to look and arrange behind
    the services' back) and the services' Database."""

    engine: Engine
    db: Database
    settings: Settings
    make_account: Callable[..., Account]


@dataclass(frozen=True)
class Operation:
    """A service call that writes `writes` statements, and how to make a later one fail."""

    name: str
    writes: int
    arrange: Callable[[World], Act]
    rejections: Mapping[int, Rejection] = field(default_factory=dict)


def _register(w: World) -> Act:
    return lambda e: users.register(e, w.settings, "New.User@Example.com", password(90))


def _change_password(w: World) -> Act:
    shallow = replace(w.settings, password_history_depth=1)  # so the trimming deletes a row
    account = w.make_account()
    return lambda e: auth.change_password(e, shallow, account.principal, account.password,
                                          password(91))


def _issue_temporary_password(w: World) -> Act:
    account = w.make_account()  # its live session is revoked by the second write
    return lambda e: auth.issue_temporary_password(e, w.settings, account.user.id)


def _use_temporary_password(w: World) -> Act:
    account = w.make_account()
    temporary = auth.issue_temporary_password(w.db, w.settings, account.user.id)
    return lambda e: auth.login(e, w.settings, account.user.email, temporary)


def _login_with_rehash(w: World) -> Act:
    """The password and an earlier one were hashed more cheaply than today's parameters: the
    login rehashes the password and its history entry and drops the earlier entry."""
    account = w.make_account()
    cheap = replace(w.settings, argon2=CHEAPER_ARGON2)
    old_hash = passwords.hash_password(account.password, cheap)
    with as_owner(w.engine) as conn:
        conn.execute(text("UPDATE password_history SET password_hash = :h WHERE user_id = :u"),
                     {"h": passwords.hash_password(password(89), cheap), "u": account.user.id})
        conn.execute(text("INSERT INTO password_history (user_id, password_hash) "
                          "VALUES (:u, :h)"), {"h": old_hash, "u": account.user.id})
        conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :u"),
                     {"h": old_hash, "u": account.user.id})
    return lambda e: auth.login(e, w.settings, account.user.email, account.password)


def _create_task(w: World) -> Act:
    principal = w.make_account().principal
    return lambda e: tasks.create(e, principal, "report", {"pages": 2})


def _start_task(w: World) -> Act:
    task = tasks.create(w.db, w.make_account().principal, "job")
    return lambda e: tasks.start(e, WORKER, task.id)


def _complete_task(w: World) -> Act:
    task = tasks.create(w.db, w.make_account().principal, "job")
    tasks.start(w.db, WORKER, task.id)
    return lambda e: tasks.complete(e, WORKER, task.id, {"answer": 42})


def _claim_tasks(w: World) -> Act:
    principal = w.make_account().principal
    for i in range(3):
        tasks.create(w.db, principal, f"queued {i}")
    return lambda e: tasks.claim(e, WORKER, 2)


def _delete_user(w: World) -> Act:
    account = w.make_account()
    w.make_account()  # a bystander whose rows must stay
    for i in range(2):
        tasks.start(w.db, WORKER, tasks.create(w.db, account.principal, f"t{i}").id)
    return lambda e: users.delete(e, account.principal)


NO_FUTURE_ROWS = Rejection.check
OPERATIONS = (
    Operation("register", 2, _register, {2: NO_FUTURE_ROWS("password_history")}),
    Operation("change_password", 4, _change_password, {
        2: NO_FUTURE_ROWS("password_history"), 3: Rejection.deletes("password_history"),
        4: Rejection.check("auth_sessions", "revoked_at IS NULL")}),
    Operation("issue_temporary_password", 2, _issue_temporary_password,
              {2: Rejection.check("auth_sessions", "revoked_at IS NULL")}),
    Operation("login_with_temporary_password", 2, _use_temporary_password,
              {2: NO_FUTURE_ROWS("auth_sessions")}),
    Operation("login_with_rehash", 4, _login_with_rehash, {
        2: NO_FUTURE_ROWS("password_history"), 3: Rejection.deletes("password_history"),
        4: NO_FUTURE_ROWS("auth_sessions")}),
    # One statement each: the later part that fails is the event insert of the same
    # statement (create, transitions, claim) or the deepest cascade (delete); "after write 1"
    # is just before COMMIT.
    Operation("create_task", 1, _create_task, {1: NO_FUTURE_ROWS("task_events")}),
    Operation("start_task", 1, _start_task, {1: NO_FUTURE_ROWS("task_events")}),
    Operation("complete_task", 1, _complete_task, {1: NO_FUTURE_ROWS("task_events")}),
    Operation("claim_tasks", 1, _claim_tasks, {1: NO_FUTURE_ROWS("task_events")}),
    Operation("delete_user", 1, _delete_user, {1: Rejection.deletes("task_events")}),
)

AFTER_EACH_WRITE = [pytest.param(op, k, id=f"{op.name}-after-write-{k}")
                    for op in OPERATIONS for k in range(1, op.writes + 1)]
REJECTED_WRITES = [pytest.param(op, k, rejection, id=f"{op.name}-write-{k}")
                   for op in OPERATIONS for k, rejection in op.rejections.items()]


@pytest.fixture
def world(db_engine: Engine, db: Database, settings: Settings,
          make_account: Callable[..., Account]) -> World:
    return World(db_engine, db, settings, make_account)


@pytest.fixture
def faulty(db_access: RuntimeAccess) -> Iterator[Database]:
    """Separate pools for the call under test: only its statements are counted and broken."""
    db = db_access.connect()
    yield db
    db.dispose()


def _then_it_succeeds(op: Operation, act: Act, db: Database) -> None:
    """Nothing half-done blocks a clean retry, which writes exactly `op.writes` statements."""
    with after_write(db) as writes:
        act(db)
    assert len(writes) == op.writes, writes


@pytest.mark.parametrize(("op", "k"), AFTER_EACH_WRITE)
def test_driver_error_after_a_write_leaves_nothing(
        op: Operation, k: int, world: World, faulty: Database) -> None:
    act = op.arrange(world)
    before = snapshot(world.engine)
    with after_write(faulty, k, raise_driver_error) as writes, \
            pytest.raises(StorageError, match="injected fault") as caught:
        act(faulty)
    assert len(writes) == k
    assert not caught.value.during_commit
    assert snapshot(world.engine) == before
    _then_it_succeeds(op, act, world.db)


@pytest.mark.parametrize(("op", "k", "rejection"), REJECTED_WRITES)
def test_constraint_violation_in_a_later_write_leaves_nothing(
        op: Operation, k: int, rejection: Rejection, world: World, faulty: Database) -> None:
    act = op.arrange(world)
    with rejection.active(world.engine):
        before = snapshot(world.engine)
        with after_write(faulty) as writes, pytest.raises(StorageError) as caught:
            act(faulty)
        assert len(writes) == k - 1  # the k-th write is the one refused
        assert caught.value.sqlstate == rejection.sqlstate
        assert snapshot(world.engine) == before
    _then_it_succeeds(op, act, world.db)


@pytest.mark.parametrize(("op", "k"), AFTER_EACH_WRITE)
def test_session_killed_after_a_write_leaves_nothing(
        op: Operation, k: int, world: World, faulty: Database, db_url: URL) -> None:
    act = op.arrange(world)
    before = snapshot(world.engine)
    with after_write(faulty, k, terminate_backend(libpq_url(db_url))) as writes, \
            pytest.raises(StorageError) as caught:
        act(faulty)
    assert len(writes) == k
    assert caught.value.during_commit == (k == op.writes)  # the last write is followed by COMMIT
    assert snapshot(world.engine) == before
    _then_it_succeeds(op, act, world.db)
