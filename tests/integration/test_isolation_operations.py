"""Each race of `checker.isolation.operations`, forced step by step on real connections.

One actor runs on its own pools (a Database of its own) and is held at a chosen point
(`interleave.Pause`: before its first write, or just before COMMIT with its locks held); the
other runs on the test's `db`,
and when it must queue behind the first, the test waits until PostgreSQL shows it waiting on a
lock before releasing the first. Every interleaving is at READ COMMITTED, as the services run.
"""

from __future__ import annotations

import ast
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

from checker.access import RuntimeAccess
from checker.isolation.operations import OPERATIONS
from taskhub import auth, tasks, tokens, users
from taskhub.db import Database
from taskhub.errors import (
    IllegalTransition,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    TransitionConflict,
)
from taskhub.lifecycle import Status
from taskhub.principal import Worker
from taskhub.settings import Settings
from tests.integration.helpers import Account, count, password, wait_for_lock_waiters
from tests.integration.interleave import Pause, in_thread

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


def test_every_operation_names_an_existing_proof() -> None:
    for op in OPERATIONS:
        path, name = op.proof.split("::")
        tree = ast.parse((ROOT / path).read_text())
        assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, op.proof


def test_transition_after_the_winner_committed_is_illegal(db: Database,
        db_engine: Engine, held: Database, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account]) -> None:
    """A is held before its one statement; B moves the task and commits; A's statement then
    reads `processing` in its snapshot and writes nothing."""
    task = tasks.create(db, make_account().principal, "contested")
    with Pause(held, "before_write") as pause:
        a = in_thread(pool, lambda: tasks.start(held, Worker("a"), task.id))
        pause.wait_reached()
        b = tasks.start(db, Worker("b"), task.id)
        pause.release()
        refused = a.result(timeout=30)
    assert isinstance(refused, IllegalTransition)
    assert (refused.from_status, refused.to_status) == (Status.PROCESSING, Status.PROCESSING)
    assert (b.status, b.version) == (Status.PROCESSING, 2)
    assert count(db_engine, "SELECT count(*) FROM task_events WHERE task_id = :t", t=task.id) == 2


def test_transition_waits_then_finds_the_status_moved(db: Database,
        db_engine: Engine, held: Database, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account]) -> None:
    task = tasks.create(db, make_account().principal, "contested")
    with Pause(held, "before_commit") as pause:
        a = in_thread(pool, lambda: tasks.start(held, Worker("a"), task.id))
        pause.wait_reached()  # A has written, uncommitted: B still reads `pending`
        b = in_thread(pool, lambda: tasks.start(db, Worker("b"), task.id))
        wait_for_lock_waiters(db_engine, 1)
        pause.release()
        assert isinstance(a.result(timeout=30), tasks.TaskRecord)
        assert isinstance(b.result(timeout=30), TransitionConflict)


@pytest.mark.parametrize("first", ["edit", "transition"])
def test_edit_and_transition_keep_both_changes(db: Database,
        db_engine: Engine, held: Database, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account], first: str) -> None:
    owner = make_account().principal
    task = tasks.create(db, owner, "draft", {"v": 1})

    def edit(on: Database) -> object:
        return tasks.update(on, owner, task.id, title="final", payload={"v": 2})

    def move(on: Database) -> object:
        return tasks.start(on, Worker("w"), task.id)

    held_call, other_call = (edit, move) if first == "edit" else (move, edit)
    with Pause(held, "before_commit") as pause:
        a = in_thread(pool, lambda: held_call(held))
        pause.wait_reached()
        b = in_thread(pool, lambda: other_call(db))
        wait_for_lock_waiters(db_engine, 1)
        pause.release()
        assert isinstance(a.result(timeout=30), tasks.TaskRecord)
        assert isinstance(b.result(timeout=30), tasks.TaskRecord)
    final = tasks.get(db, owner, task.id)
    assert (final.title, final.payload, final.status, final.version) == (
        "final", {"v": 2}, Status.PROCESSING, 2)


def test_claim_skips_the_rows_another_claim_holds(db: Database,
        held: Database, db_access: RuntimeAccess, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account]) -> None:
    owner = make_account().principal
    ids = [tasks.create(db, owner, f"t{i}").id for i in range(4)]
    impatient = db_access.connect(connect_args={"options": "-c lock_timeout=2s"})
    try:
        with Pause(held, "before_commit") as pause:
            a = in_thread(pool, lambda: tasks.claim(held, Worker("a"), 2))
            pause.wait_reached()  # A holds the two oldest rows
            b = tasks.claim(impatient, Worker("b"), 2)  # a wait would hit lock_timeout
            pause.release()
            claimed_a = a.result(timeout=30)
    finally:
        impatient.dispose()
    assert [t.id for t in claimed_a] == ids[:2]
    assert [t.id for t in b] == ids[2:]


def test_login_queued_behind_a_password_change_fails(db: Database,
        db_engine: Engine, held: Database, settings: Settings, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account]) -> None:
    account = make_account()
    with Pause(held, "before_commit") as pause:
        change = in_thread(pool, lambda: auth.change_password(
            held, settings, account.principal, account.password, password(70)))
        pause.wait_reached()
        login = in_thread(pool, lambda: auth.login(db, settings, account.user.email,
                                                   account.password))
        wait_for_lock_waiters(db_engine, 1)
        pause.release()
        assert change.result(timeout=30) is None
        assert isinstance(login.result(timeout=30), InvalidCredentials)
    tokens.verify(db, settings, auth.login(db, settings, account.user.email,
                                                  password(70)))


def test_password_change_queued_behind_a_login_revokes_its_session(db: Database,
        db_engine: Engine, held: Database, settings: Settings, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account]) -> None:
    account = make_account()
    with Pause(held, "before_commit") as pause:
        login = in_thread(pool, lambda: auth.login(held, settings, account.user.email,
                                                   account.password))
        pause.wait_reached()  # the session row exists, uncommitted; the user row is locked
        change = in_thread(pool, lambda: auth.change_password(
            db, settings, account.principal, account.password, password(71)))
        wait_for_lock_waiters(db_engine, 1)
        pause.release()
        token = login.result(timeout=30)
        assert change.result(timeout=30) is None
    assert isinstance(token, str)
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.verify(db, settings, token)


def test_second_password_change_checks_the_first_ones_password(db: Database,
        db_engine: Engine, held: Database, settings: Settings, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account]) -> None:
    account = make_account()
    with Pause(held, "before_commit") as pause:
        first = in_thread(pool, lambda: auth.change_password(
            held, settings, account.principal, account.password, password(72)))
        pause.wait_reached()
        second = in_thread(pool, lambda: auth.change_password(
            db, settings, account.principal, account.password, password(73)))
        wait_for_lock_waiters(db_engine, 1)
        pause.release()
        assert first.result(timeout=30) is None
        assert isinstance(second.result(timeout=30), InvalidCredentials)
    auth.login(db, settings, account.user.email, password(72))


def test_verify_sees_the_committed_state_without_waiting(db: Database,
        held: Database, settings: Settings, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account]) -> None:
    account = make_account()
    with Pause(held, "before_commit") as pause:
        change = in_thread(pool, lambda: auth.change_password(
            held, settings, account.principal, account.password, password(74)))
        pause.wait_reached()  # every session revoked, uncommitted; the user row locked
        assert tokens.verify(db, settings, account.token) == account.principal
        pause.release()
        assert change.result(timeout=30) is None
    with pytest.raises(InvalidToken):
        tokens.verify(db, settings, account.token)


def test_create_queued_behind_a_user_delete_is_not_found(db: Database,
        db_engine: Engine, held: Database, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account]) -> None:
    owner = make_account().principal
    with Pause(held, "before_commit") as pause:
        delete = in_thread(pool, lambda: users.delete(held, owner))
        pause.wait_reached()
        create = in_thread(pool, lambda: tasks.create(db, owner, "too late"))
        wait_for_lock_waiters(db_engine, 1)  # the foreign key check waits for the delete
        pause.release()
        assert delete.result(timeout=30) is None
        assert isinstance(create.result(timeout=30), NotFound)
    assert count(db_engine, "SELECT count(*) FROM tasks") == 0


def test_user_delete_queued_behind_a_create_takes_the_new_task(db: Database,
        db_engine: Engine, held: Database, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account]) -> None:
    owner = make_account().principal
    with Pause(held, "before_commit") as pause:
        create = in_thread(pool, lambda: tasks.create(held, owner, "just in time"))
        pause.wait_reached()
        delete = in_thread(pool, lambda: users.delete(db, owner))
        wait_for_lock_waiters(db_engine, 1)
        pause.release()
        assert isinstance(create.result(timeout=30), tasks.TaskRecord)
        assert delete.result(timeout=30) is None
    assert count(db_engine, "SELECT count(*) FROM tasks") == 0
    assert count(db_engine, "SELECT count(*) FROM task_events") == 0


@pytest.mark.parametrize("deleted", ["user", "task"])
def test_transition_queued_behind_a_user_delete_is_not_found(db: Database,
        db_engine: Engine, held: Database, pool: ThreadPoolExecutor,
        make_account: Callable[..., Account], deleted: str) -> None:
    owner = make_account().principal
    task = tasks.create(db, owner, "doomed")

    def delete() -> None:
        if deleted == "user":
            users.delete(held, owner)
        else:
            tasks.delete(held, owner, task.id)

    with Pause(held, "before_commit") as pause:
        gone = in_thread(pool, delete)
        pause.wait_reached()  # the task row is deleted (locked), uncommitted
        move = in_thread(pool, lambda: tasks.start(db, Worker("w"), task.id))
        wait_for_lock_waiters(db_engine, 1)
        pause.release()
        assert gone.result(timeout=30) is None
        outcome = move.result(timeout=30)
    assert isinstance(outcome, NotFound), outcome
    assert "deleted" in str(outcome)
    assert count(db_engine, "SELECT count(*) FROM task_events WHERE task_id = :t",
                 t=uuid.UUID(str(task.id))) == 0
