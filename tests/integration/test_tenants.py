"""Tenant isolation: B cannot touch A's tasks, through the services or through raw SQL run
as the application role (row-level security, and grants that leave events and a task's owner
unchangeable), and workers cannot create or delete tasks."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from taskhub import tasks
from taskhub.db import Database
from taskhub.errors import NotFound
from taskhub.principal import Principal, Worker
from taskhub.settings import WORKER_ROLE
from taskhub.tasks import TaskRecord
from tests.integration.helpers import (
    Account,
    as_app,
    as_owner,
    become_app,
    lifecycle_violations,
)

INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture
def tenants(db: Database,
            make_account: Callable[..., Account]) -> tuple[Principal, Principal, TaskRecord]:
    a, b = make_account().principal, make_account().principal
    tasks.create(db, b, "b's own")
    task = tasks.create(db, a, "a's secret", {"k": "v"})
    tasks.start(db, Worker("w"), tasks.create(db, a, "a's running").id)
    return a, b, task


def snapshot(engine: Engine) -> list[tuple[object, ...]]:
    with as_owner(engine) as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT t.*, (SELECT count(*) FROM task_events e WHERE e.task_id = t.id) "
            "FROM tasks t ORDER BY id")).all()]


def test_services_refuse_b_everything_on_a_task(db: Database,
        db_engine: Engine, tenants: tuple[Principal, Principal, TaskRecord]) -> None:
    a, b, task = tenants
    before = snapshot(db_engine)
    attempts: list[Callable[[], object]] = [
        lambda: tasks.get(db, b, task.id),
        lambda: tasks.update(db, b, task.id, title="mine now"),
        lambda: tasks.update(db, b, task.id, payload={"k": "stolen"}),
        lambda: tasks.start(db, b, task.id),
        lambda: tasks.delete(db, b, task.id),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            attempt()
    assert [t.title for t in tasks.list_tasks(db, b)] == ["b's own"]
    assert snapshot(db_engine) == before
    assert tasks.get(db, a, task.id) == task


def test_b_cannot_finish_a_processing_task_of_a(db: Database,
        tenants: tuple[Principal, Principal, TaskRecord]) -> None:
    a, b, _ = tenants
    running = tasks.list_tasks(db, a, "processing")[0]
    with pytest.raises(NotFound):
        tasks.complete(db, b, running.id, "forged")
    with pytest.raises(NotFound):
        tasks.fail(db, b, running.id, "sabotage")
    assert tasks.get(db, a, running.id) == running


def test_raw_sql_as_app_role_sees_and_changes_nothing_of_a(
        db_engine: Engine, tenants: tuple[Principal, Principal, TaskRecord]) -> None:
    a, b, task = tenants
    before = snapshot(db_engine)
    with as_app(db_engine, b.user_id) as conn:
        def scalar(sql: str) -> object:
            return conn.execute(text(sql), {"a": a.user_id, "t": task.id}).scalar_one()

        assert scalar("SELECT count(*) FROM tasks WHERE user_id = :a") == 0
        assert scalar("SELECT count(*) FROM tasks WHERE id = :t") == 0
        assert scalar("SELECT count(*) FROM tasks") == 1  # only b's own
        assert scalar("SELECT count(*) FROM task_events WHERE user_id = :a") == 0
        assert scalar("SELECT count(*) FROM task_events") == 1
        for sql in ("UPDATE tasks SET title = 'x' WHERE id = :t",
                    "UPDATE tasks SET status = 'failed', error = 'x' WHERE user_id = :a",
                    "DELETE FROM tasks WHERE id = :t",
                    "DELETE FROM tasks WHERE user_id = :a"):
            assert conn.execute(text(sql), {"a": a.user_id, "t": task.id}).rowcount == 0, sql
        for sql in ("UPDATE task_events SET actor = 'x' WHERE user_id = :a",  # not granted
                    "DELETE FROM task_events WHERE task_id = :t"):
            savepoint = conn.begin_nested()
            with pytest.raises(DBAPIError) as caught:
                conn.execute(text(sql), {"a": a.user_id, "t": task.id})
            savepoint.rollback()
            assert getattr(caught.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE, sql
    assert snapshot(db_engine) == before


# Moving a task to another owner is not granted (UPDATE on tasks excludes user_id); with the
# column granted for the test, row-level security still refuses it.
GRANT_OWNER_COLUMN = "GRANT UPDATE (user_id) ON tasks TO taskhub_app"


@pytest.mark.parametrize(("sql", "grant"), [
    ("INSERT INTO tasks (user_id, title) VALUES (:a, 'planted')", None),
    ("UPDATE tasks SET user_id = :a", GRANT_OWNER_COLUMN),  # one's own task into a's tenancy
    ("INSERT INTO task_events (task_id, user_id, to_status, actor) "
     "VALUES (:t, :a, 'failed', 'x')", None),
])
def test_rls_with_check_rejects_writes_into_a(
        db_engine: Engine, tenants: tuple[Principal, Principal, TaskRecord], sql: str,
        grant: str | None) -> None:
    a, b, task = tenants
    before = snapshot(db_engine)
    if grant is not None:
        with as_app(db_engine, b.user_id) as conn, pytest.raises(DBAPIError) as refused:
            conn.execute(text(sql), {"a": a.user_id, "t": task.id})
        assert getattr(refused.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE
    with db_engine.connect() as conn:  # closing rolls the transaction (and grant) back
        conn.begin()
        if grant is not None:
            conn.exec_driver_sql(grant)
        become_app(conn, b.user_id)
        with pytest.raises(DBAPIError) as caught:
            conn.execute(text(sql), {"a": a.user_id, "t": task.id})
    assert "row-level security" in str(caught.value)
    assert snapshot(db_engine) == before


def test_app_role_without_tenant_sees_no_task(
        db_engine: Engine, tenants: tuple[Principal, Principal, TaskRecord]) -> None:
    with as_app(db_engine, None) as conn:
        assert conn.execute(text("SELECT count(*) FROM tasks")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM task_events")).scalar_one() == 0
    with as_app(db_engine, uuid.uuid4()) as conn:
        assert conn.execute(text("SELECT count(*) FROM tasks")).scalar_one() == 0


@pytest.mark.parametrize("sql", [
    "INSERT INTO tasks (user_id, title) VALUES (:a, 'by worker')",
    "DELETE FROM tasks",
    "UPDATE tasks SET title = 'renamed'",
    "UPDATE tasks SET user_id = :a",
])
def test_worker_role_moves_tasks_but_cannot_create_delete_or_reassign(
        db_engine: Engine, tenants: tuple[Principal, Principal, TaskRecord], sql: str) -> None:
    a, _, _ = tenants
    with db_engine.connect() as conn, pytest.raises(DBAPIError, match="permission denied"):
        conn.begin()
        conn.exec_driver_sql(f"SET LOCAL ROLE {WORKER_ROLE}")
        conn.execute(text(sql), {"a": a.user_id})


def test_workers_serve_every_tenant(db: Database,
        db_engine: Engine, tenants: tuple[Principal, Principal, TaskRecord]) -> None:
    a, b, task = tenants
    claimed = tasks.claim(db, Worker("w"), 10)
    assert {t.user_id for t in claimed} == {a.user_id, b.user_id}
    assert task.id in {t.id for t in claimed}
    assert lifecycle_violations(db_engine) == []
