"""Consistency: the schema itself refuses invalid states, whoever writes the SQL.

Every statement here is raw SQL, mostly as the application role with a tenant set (what a buggy
or compromised service could send), some as the worker role; each must fail with the expected
SQLSTATE and name the constraint that caught it. The services' own checks are not involved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from taskhub import tasks
from taskhub.db import Database
from taskhub.principal import Worker
from taskhub.settings import APP_ROLE, WORKER_ROLE
from tests.integration.helpers import Account, become_app

CHECK, UNIQUE, FOREIGN_KEY, RLS = "23514", "23505", "23503", "42501"


@dataclass(frozen=True)
class Scene:
    """Two tenants: `a` owns a pending and a processing task; `ghost` is no one's id."""

    a: uuid.UUID
    b: uuid.UUID
    a_email: str
    b_email: str
    pending: uuid.UUID
    processing: uuid.UUID
    ghost: uuid.UUID


@dataclass(frozen=True)
class Case:
    """A statement run as `role` for tenant `tenant` (a Scene field) and how it must fail."""

    sql: str
    sqlstate: str
    constraint: str | None
    role: str = APP_ROLE
    tenant: str | None = "a"


CASES = {
    "unknown status on insert": Case(
        "INSERT INTO tasks (user_id, title, status) VALUES (:a, 't', 'archived')",
        CHECK, "ck_tasks_status_known"),
    "unknown status on update": Case(
        "UPDATE tasks SET status = 'done' WHERE id = :pending", CHECK, "ck_tasks_status_known"),
    "unknown status by a worker": Case(
        "UPDATE tasks SET status = 'Completed' WHERE id = :processing", CHECK,
        "ck_tasks_status_known", role=WORKER_ROLE, tenant=None),
    "completed without result": Case(
        "UPDATE tasks SET status = 'completed' WHERE id = :processing", CHECK,
        "ck_tasks_completed_has_result"),
    "completed without result by a worker": Case(
        "UPDATE tasks SET status = 'completed', result = NULL WHERE id = :processing", CHECK,
        "ck_tasks_completed_has_result", role=WORKER_ROLE, tenant=None),
    "failed without error": Case(
        "UPDATE tasks SET status = 'failed', error = NULL WHERE id = :processing", CHECK,
        "ck_tasks_failed_has_error"),
    "version below one": Case(
        "UPDATE tasks SET version = 0 WHERE id = :pending", CHECK, "ck_tasks_version_positive"),
    # CHECK constraints run in name order: legal_step comes first and also refuses any step
    # to an unknown status.
    "event with an unknown status": Case(
        "INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
        "VALUES (:pending, :a, 'pending', 'paused', 'x')", CHECK, "ck_task_events_legal_step"),
    "event skipping a state, by a worker": Case(
        "INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
        "VALUES (:pending, :a, 'pending', 'completed', 'x')", CHECK,
        "ck_task_events_legal_step", role=WORKER_ROLE, tenant=None),
    "event going backwards, by a worker": Case(
        "INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
        "VALUES (:processing, :a, 'processing', 'pending', 'x')", CHECK,
        "ck_task_events_legal_step", role=WORKER_ROLE, tenant=None),
    "creation event that is not pending": Case(
        "INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
        "VALUES (:pending, :a, NULL, 'completed', 'x')", CHECK, "ck_task_events_legal_step"),
    "task of a user that does not exist": Case(
        "INSERT INTO tasks (user_id, title) VALUES (:ghost, 't')", FOREIGN_KEY,
        "fk_tasks_user_id_users", tenant="ghost"),
    "event of a task that does not exist": Case(
        "INSERT INTO task_events (task_id, user_id, to_status, actor) "
        "VALUES (:ghost, :a, 'pending', 'x')", FOREIGN_KEY, "fk_task_events_task_id_user_id_tasks"),
    "session of a user that does not exist": Case(
        "INSERT INTO auth_sessions (user_id, expires_at) VALUES (:ghost, now() + interval '1h')",
        FOREIGN_KEY, "fk_auth_sessions_user_id_users", tenant="ghost"),
    "password history of a user that does not exist": Case(
        "INSERT INTO password_history (user_id, password_hash) VALUES (:ghost, 'h')",
        FOREIGN_KEY, "fk_password_history_user_id_users", tenant="ghost"),
    "event for another owner's task, in its own name": Case(
        "INSERT INTO task_events (task_id, user_id, to_status, actor) "
        "VALUES (:pending, :b, 'pending', 'x')", FOREIGN_KEY,
        "fk_task_events_task_id_user_id_tasks", tenant="b"),
    "event for another owner's task, in the owner's name": Case(
        "INSERT INTO task_events (task_id, user_id, to_status, actor) "
        "VALUES (:pending, :a, 'pending', 'x')", RLS, None, tenant="b"),
    "event for a task, by a worker, under the wrong owner": Case(
        "INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
        "VALUES (:processing, :b, 'processing', 'failed', 'w')", FOREIGN_KEY,
        "fk_task_events_task_id_user_id_tasks", role=WORKER_ROLE, tenant=None),
    # A new user's row is written in its own tenancy, as `users.register` does.
    "duplicate email": Case(
        "INSERT INTO users (id, email, password_hash) VALUES (:ghost, :a_email, 'h')", UNIQUE,
        "uq_users_email_lower", tenant="ghost"),
    "duplicate email in another case": Case(
        "INSERT INTO users (id, email, password_hash) VALUES (:ghost, upper(:a_email), 'h')",
        CHECK, "ck_users_email_normalised", tenant="ghost"),
    "email changed to another user's": Case(
        "UPDATE users SET email = :b_email WHERE id = :a", UNIQUE, "uq_users_email_lower"),
    "temporary password without expiry": Case(
        "UPDATE users SET must_change_password = true, temp_password_expires_at = NULL "
        "WHERE id = :a", CHECK, "ck_users_temp_password_expires"),
    "session expiring before it starts": Case(
        "INSERT INTO auth_sessions (user_id, created_at, expires_at) "
        "VALUES (:a, now(), now() - interval '1s')", CHECK,
        "ck_auth_sessions_expires_after_created"),
}


@pytest.fixture
def scene(db: Database, make_account: Callable[..., Account]) -> Scene:
    a, b = make_account(), make_account()
    pending = tasks.create(db, a.principal, "pending")
    processing = tasks.start(db, Worker("w"), tasks.create(db, a.principal, "p").id)
    return Scene(a.user.id, b.user.id, a.user.email, b.user.email, pending.id, processing.id,
                 uuid.uuid4())


def refused(engine: Engine, sql: str, params: dict[str, Any], role: str | None,
            tenant: uuid.UUID | None, *, before: str = "") -> Any:
    """Run `sql` in a transaction that is rolled back; return the driver's error (it must fail)."""
    with engine.connect() as conn:
        conn.begin()
        if before:
            conn.exec_driver_sql(before)
        if role == APP_ROLE:
            become_app(conn, tenant)
        elif role is not None:
            assert tenant is None, "only the application role acts for a tenant"
            conn.exec_driver_sql(f"SET LOCAL ROLE {role}")
        with pytest.raises(DBAPIError) as caught:
            conn.execute(text(sql), params)
    return caught.value.orig


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_refused(db_engine: Engine, scene: Scene, case: Case) -> None:
    values = asdict(scene)
    tenant = values[case.tenant] if case.tenant else None
    error = refused(db_engine, case.sql, values, case.role, tenant)
    assert error.sqlstate == case.sqlstate, error
    if case.constraint is not None:
        assert error.diag.constraint_name == case.constraint


def test_unique_email_holds_without_the_normalisation_check(
        db_engine: Engine, scene: Scene) -> None:
    """Defence in depth: even if emails could be stored in mixed case, the unique index on
    lower(email) still refuses a case variant of an existing one."""
    error = refused(db_engine, "INSERT INTO users (id, email, password_hash) "
                               "VALUES (:ghost, upper(:a_email), 'h')", asdict(scene), APP_ROLE,
                    scene.ghost,
                    before="ALTER TABLE users DROP CONSTRAINT ck_users_email_normalised")
    assert (error.sqlstate, error.diag.constraint_name) == (UNIQUE, "uq_users_email_lower")


def test_the_same_statements_pass_with_valid_values(db_engine: Engine, scene: Scene) -> None:
    """The refusals above are the constraints' doing, not missing privileges: valid versions of
    the same writes succeed under the same roles."""
    values = asdict(scene)
    with db_engine.connect() as conn:
        conn.begin()
        become_app(conn, scene.a)
        conn.execute(text("UPDATE tasks SET status = 'completed', result = '1', "
                          "version = version + 1 WHERE id = :processing"), values)
        conn.execute(text("INSERT INTO task_events (task_id, user_id, from_status, to_status, "
                          "actor) VALUES (:processing, :a, 'processing', 'completed', 'x')"),
                     values)
        conn.execute(text("INSERT INTO auth_sessions (user_id, expires_at) "
                          "VALUES (:a, now() + interval '1h')"), values)
        conn.execute(text("UPDATE users SET email = 'fresh@example.com' WHERE id = :a"), values)
        conn.rollback()
