"""Concurrency: many threads, each on its own connection, racing through the real services.

Where an exact interleaving matters, locks force it (a held row lock or a paused transaction,
released once PostgreSQL shows the others queued); elsewhere a barrier starts everyone at once
and the assertions hold for every interleaving.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, text

from taskhub import auth, passwords, tasks, tokens, users
from taskhub.db import Database
from taskhub.errors import (
    Conflict,
    EmailTaken,
    IllegalTransition,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    TaskhubError,
    TransitionConflict,
)
from taskhub.lifecycle import Status
from taskhub.principal import Principal, Worker
from taskhub.settings import Argon2Params, Settings
from tests.integration.faults import after_write
from tests.integration.helpers import (
    Account,
    as_owner,
    count,
    lifecycle_violations,
    password,
    wait_for_lock_waiters,
)
from tests.integration.interleave import Pause, all_at_once, in_thread, returned_or_raised

N = 8
OTHER_ARGON2 = Argon2Params(time_cost=2, memory_cost=2048, parallelism=1)


def test_n_workers_moving_one_task_exactly_one_wins(db: Database,
        db_engine: Engine, make_account: Callable[..., Account]) -> None:
    task = tasks.create(db, make_account().principal, "contested")
    started = all_at_once(db_engine, task.id, *[
        lambda i=i: tasks.start(db, Worker(f"w{i}"), task.id) for i in range(N)])
    assert sum(isinstance(o, tasks.TaskRecord) for o in started) == 1
    assert sum(isinstance(o, TransitionConflict) for o in started) == N - 1

    finished = all_at_once(db_engine, task.id, *[
        (lambda i=i: tasks.complete(db, Worker(f"w{i}"), task.id, {"by": i}))
        if i % 2 else (lambda i=i: tasks.fail(db, Worker(f"w{i}"), task.id, f"w{i}"))
        for i in range(N)])
    winners = [o for o in finished if isinstance(o, tasks.TaskRecord)]
    assert len(winners) == 1
    assert sum(isinstance(o, TransitionConflict) for o in finished) == N - 1
    assert winners[0].version == 3
    assert count(db_engine, "SELECT count(*) FROM task_events WHERE task_id = :t", t=task.id) == 3
    assert lifecycle_violations(db_engine) == []


def test_n_workers_free_running(db: Database,
                                db_engine: Engine, make_account: Callable[..., Account]) -> None:
    """No choreography: N threads released by a barrier start the same task, ten times over.

    Exactly one wins. A loser that read `pending` before the winner committed gets
    TransitionConflict; one that read afterwards finds the task `processing` already, from
    where `start` is not a legal move: IllegalTransition (as for any late start).
    """
    owner = make_account().principal
    for round_ in range(10):
        task = tasks.create(db, owner, f"round {round_}")
        barrier = threading.Barrier(N)

        def attempt(name: str, task_id: uuid.UUID = task.id,
                    barrier: threading.Barrier = barrier) -> Any:
            barrier.wait()
            return returned_or_raised(lambda: tasks.start(db, Worker(name), task_id))

        with ThreadPoolExecutor(N) as pool:
            outcomes = list(pool.map(attempt, [f"w{i}" for i in range(N)]))
        assert sum(isinstance(o, tasks.TaskRecord) for o in outcomes) == 1
        assert all(isinstance(o, tasks.TaskRecord | TransitionConflict) or (
            isinstance(o, IllegalTransition) and o.from_status == Status.PROCESSING)
            for o in outcomes), outcomes
    assert lifecycle_violations(db_engine) == []


def test_user_edits_racing_worker_updates_lose_nothing(db: Database,
        db_engine: Engine, make_account: Callable[..., Account]) -> None:
    owner = make_account().principal
    ids = [tasks.create(db, owner, f"t{i}", {"v": 0}).id for i in range(10)]
    barrier = threading.Barrier(2)

    def edit() -> None:
        for i, task_id in enumerate(ids):
            barrier.wait()
            tasks.update(db, owner, task_id, title=f"edited {i}", payload={"v": i})

    def work() -> None:
        for task_id in ids:
            barrier.wait()
            tasks.start(db, Worker("w"), task_id)
            tasks.complete(db, Worker("w"), task_id, {"done": str(task_id)})

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(edit), pool.submit(work)]:
            future.result(timeout=60)
    for i, task_id in enumerate(ids):
        final = tasks.get(db, owner, task_id)
        assert (final.title, final.payload) == (f"edited {i}", {"v": i})
        assert (final.status, final.result, final.version) == (
            Status.COMPLETED, {"done": str(task_id)}, 3)
    assert lifecycle_violations(db_engine) == []


def test_parallel_logins_open_distinct_sessions_and_rehash_once(db: Database,
        db_engine: Engine, settings: Settings, make_account: Callable[..., Account]) -> None:
    account = make_account()
    old = passwords.hash_password(account.password, replace(settings, argon2=OTHER_ARGON2))
    with as_owner(db_engine) as conn:
        conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :u"),
                     {"h": old, "u": account.user.id})
    barrier = threading.Barrier(N)

    def login(_: int) -> str:
        barrier.wait()
        return auth.login(db, settings, account.user.email, account.password)

    with after_write(db) as writes, ThreadPoolExecutor(N) as pool:
        issued = list(pool.map(login, range(N)))
    rehashes = [w for w in writes if w.startswith("UPDATE users SET password_hash")]
    assert len(rehashes) == 1
    sessions = {tokens.verify(db, settings, token).session_id for token in issued}
    assert len(sessions) == N
    assert count(db_engine, "SELECT count(*) FROM auth_sessions WHERE user_id = :u "
                            "AND revoked_at IS NULL", u=account.user.id) == N + 1
    with as_owner(db_engine) as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE id = :u"),
                              {"u": account.user.id}).scalar_one()
    assert not passwords.needs_rehash(stored, settings)


def test_argon2_runs_with_no_transaction_open_and_the_row_unlocked(db: Database,
        db_engine: Engine, settings: Settings, make_account: Callable[..., Account],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Argon2id verification and hash of a login, a password change, a temporary
    password and a registration happens while the service holds no transaction and no lock
    on the user's row (taking it NOWAIT would
    fail with 55P03), so logins to one account verify in parallel and nothing queues behind
    a 200 ms hash."""
    account = make_account()
    open_transactions: list[int] = []

    def look() -> None:
        with as_owner(db_engine) as conn:
            conn.execute(text("SELECT 1 FROM users WHERE id = :u FOR UPDATE NOWAIT"),
                         {"u": account.user.id})
            open_transactions.append(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL")).scalar_one())

    def watched(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            look()
            return real(*args)
        return call

    monkeypatch.setattr(passwords, "verify", watched(passwords.verify))
    monkeypatch.setattr(passwords, "hash_password", watched(passwords.hash_password))
    auth.login(db, settings, account.user.email, account.password)
    auth.change_password(db, settings, account.principal, account.password, password(60))
    auth.issue_temporary_password(db, settings, account.user.id)
    users.register(db, settings, "argon2.outside@example.com", password(62))
    # login: one verification; change: the old password, the history check, the new hash;
    # the temporary password's hash; the registration's hash
    assert len(open_transactions) >= 5 and set(open_transactions) == {0}


@pytest.mark.parametrize("operation", ["login", "change_password"])
def test_a_hash_that_keeps_changing_ends_in_a_conflict_and_changes_nothing(db: Database,
        db_engine: Engine, settings: Settings, make_account: Callable[..., Account],
        monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    """After each verification someone else re-hashes the password (as a racing login
    would): the service starts over, MAX_ATTEMPTS times, then gives up with Conflict."""
    account = make_account()
    real_verify, attempts = passwords.verify, []

    def verify_then_rehash(stored: str, secret: str, settings_: Settings) -> bool:
        if secret == account.password:  # not the history check of the new password
            attempts.append(stored)
            with as_owner(db_engine) as conn:
                conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :u"),
                             {"h": passwords.hash_password(account.password, settings),
                              "u": account.user.id})
        return real_verify(stored, secret, settings_)

    monkeypatch.setattr(passwords, "verify", verify_then_rehash)
    with pytest.raises(Conflict):
        if operation == "login":
            auth.login(db, settings, account.user.email, account.password)
        else:
            auth.change_password(db, settings, account.principal, account.password,
                                 password(61))
    assert len(attempts) == auth.MAX_ATTEMPTS
    monkeypatch.undo()
    assert count(db_engine, "SELECT count(*) FROM auth_sessions WHERE user_id = :u "
                            "AND revoked_at IS NULL", u=account.user.id) == 1
    auth.login(db, settings, account.user.email, account.password)  # still the password


def test_one_email_registered_concurrently_in_different_cases(db: Database,
        db_engine: Engine, held: Database, settings: Settings) -> None:
    """The first registration holds its new row uncommitted; the others queue on the unique
    index; once it commits, each of them gets EmailTaken."""
    variants = ["Race@Example.com", "race@example.com", "RACE@EXAMPLE.COM",
                "  race@Example.COM ", "rAcE@eXaMpLe.CoM"]
    with Pause(held, "before_commit") as pause, ThreadPoolExecutor(len(variants)) as pool:
        first = in_thread(pool, lambda: users.register(held, settings, variants[0], password(1)))
        pause.wait_reached()
        others = [in_thread(pool, lambda e=e: users.register(db, settings, e, password(2)))
                  for e in variants[1:]]
        wait_for_lock_waiters(db_engine, len(others))
        pause.release()
        assert isinstance(first.result(timeout=30), users.UserRecord)
        assert all(isinstance(o.result(timeout=30), EmailTaken) for o in others)
    assert count(db_engine, "SELECT count(*) FROM users WHERE lower(email) = :e",
                 e="race@example.com") == 1
    assert count(db_engine, "SELECT count(*) FROM password_history") == 1


def test_one_email_registered_concurrently_free_running(db: Database,
        settings: Settings) -> None:
    for round_ in range(3):
        emails = [f"Round{round_}@Example.com", f"round{round_}@example.com",
                  f"ROUND{round_}@EXAMPLE.COM", f"round{round_}@EXAMPLE.com"]
        barrier = threading.Barrier(len(emails))

        def register(email: str, barrier: threading.Barrier = barrier) -> Any:
            barrier.wait()
            return returned_or_raised(lambda: users.register(db, settings, email, password(3)))

        with ThreadPoolExecutor(len(emails)) as pool:
            outcomes = list(pool.map(register, emails))
        assert sum(isinstance(o, users.UserRecord) for o in outcomes) == 1
        assert sum(isinstance(o, EmailTaken) for o in outcomes) == len(emails) - 1


def test_user_deleted_while_its_tasks_are_processed(db: Database,
        db_engine: Engine, make_account: Callable[..., Account]) -> None:
    """Workers claim and finish tasks and the tenant keeps creating them while the user is
    deleted: afterwards nothing of the user is left, the bystander's tasks are all done, and
    every failure was a clear NotFound or TransitionConflict (never a StorageError)."""
    doomed, bystander = make_account().principal, make_account().principal
    for i in range(30):
        tasks.create(db, doomed, f"doomed {i}")
    for i in range(10):
        tasks.create(db, bystander, f"kept {i}")
    errors: list[TaskhubError] = []
    stop = threading.Event()

    def worker(name: str) -> None:
        while True:
            claimed = tasks.claim(db, Worker(name), 2)
            if not claimed and stop.is_set():
                return
            for task in claimed:
                try:
                    tasks.complete(db, Worker(name), task.id, {"by": name})
                except (NotFound, TransitionConflict) as exc:
                    errors.append(exc)

    def tenant(principal: Principal) -> None:
        for i in range(500):
            try:
                tasks.create(db, principal, f"late {i}")
            except NotFound as exc:
                errors.append(exc)
                return

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(worker, f"w{i}") for i in range(3)]
        creator = pool.submit(tenant, doomed)
        try:
            deadline = time.monotonic() + 30
            while count(db_engine, "SELECT count(*) FROM tasks WHERE user_id = :u AND status = "
                                   "'completed'", u=doomed.user_id) < 5:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            users.delete(db, doomed)
            creator.result(timeout=30)
        finally:
            stop.set()  # the workers drain the queue and return, whatever happened here
        for future in futures:
            future.result(timeout=30)

    assert any(isinstance(e, NotFound) for e in errors)  # the tenant noticed its deletion
    assert all(isinstance(e, NotFound | TransitionConflict) for e in errors), errors
    for table in ("tasks", "task_events", "auth_sessions", "password_history"):
        assert count(db_engine, f"SELECT count(*) FROM {table} WHERE user_id = :u",
                     u=doomed.user_id) == 0
    assert {t.status for t in tasks.list_tasks(db, bystander)} == {Status.COMPLETED}
    assert lifecycle_violations(db_engine) == []


def test_password_change_racing_logins_leaves_no_old_session_alive(db: Database,
        db_engine: Engine, settings: Settings, make_account: Callable[..., Account]) -> None:
    """Logins with the old password run in a loop while the password changes: every session
    they obtained is dead afterwards, and once the change committed they all fail."""
    account = make_account()
    issued: list[str] = []
    outcomes: list[Any] = []
    lock = threading.Lock()

    def log_in_until_refused() -> None:
        for _ in range(200):
            result = returned_or_raised(lambda: auth.login(db, settings, account.user.email,
                                                account.password))
            with lock:
                (issued if isinstance(result, str) else outcomes).append(result)
            if not isinstance(result, str):
                return

    with ThreadPoolExecutor(5) as pool:
        logins = [pool.submit(log_in_until_refused) for _ in range(4)]
        deadline = time.monotonic() + 30
        while len(issued) < 8:  # the logins are under way
            assert time.monotonic() < deadline
            time.sleep(0.001)
        auth.change_password(db, settings, account.principal, account.password,
                             password(80))
        for future in logins:
            future.result(timeout=30)

    assert len(outcomes) == 4 and all(isinstance(o, InvalidCredentials) for o in outcomes)
    for token in [account.token, *issued]:
        with pytest.raises(InvalidToken):
            tokens.verify(db, settings, token)
    assert count(db_engine, "SELECT count(*) FROM auth_sessions s JOIN users u ON "
                            "u.id = s.user_id WHERE s.revoked_at IS NULL") == 0
    tokens.verify(db, settings,
                  auth.login(db, settings, account.user.email, password(80)))
