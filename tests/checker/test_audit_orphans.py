"""orphans.*: rows left behind when cascades are bypassed (`session_replication_role =
replica` skips the foreign-key triggers, as a bulk loader or a careless restore would)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import URL

from checker.audit.synthetic import fake_argon2id, task_id, user_id
from tests.checker.audit_support import assert_fails_only, audit, owner, sampled, seed

pytestmark = pytest.mark.checker_no_audit  # every test here damages its database on purpose

GHOST = uuid.UUID("00000000-0000-4000-8000-00000000dead")


def test_tasks_without_user(db_url: URL) -> None:
    seed(db_url)
    ghost_task = uuid.uuid4()
    with owner(db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("INSERT INTO tasks (id, user_id, title) VALUES (%s, %s, 'orphan')",
                     (ghost_task, GHOST))
        conn.execute("INSERT INTO task_events (task_id, user_id, to_status, actor) "
                     "VALUES (%s, %s, 'pending', 'client')", (ghost_task, GHOST))
    result = audit(db_url)
    assert_fails_only(result, "orphans.tasks_without_user")
    assert sampled(result, "orphans.tasks_without_user", "task_id") == [str(ghost_task)]
    assert sampled(result, "orphans.tasks_without_user", "user_id") == [str(GHOST)]


def test_user_deleted_without_cascade(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM users WHERE id = %s", (user_id(1),))
    result = audit(db_url)
    assert_fails_only(result, "orphans.tasks_without_user", "orphans.sessions_without_user",
                      "orphans.password_history_without_user")
    assert result.get("orphans.tasks_without_user").violations == 10  # user 1 owned 10 tasks
    assert result.get("orphans.sessions_without_user").violations == 3
    assert result.get("orphans.password_history_without_user").violations == 1
    for name in ("orphans.tasks_without_user", "orphans.sessions_without_user"):
        assert set(sampled(result, name, "user_id")) == {str(user_id(1))}


def test_events_without_task(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM tasks WHERE id = %s", (task_id(3),))  # completed: 3 events
    result = audit(db_url)
    assert_fails_only(result, "orphans.events_without_task")
    assert result.get("orphans.events_without_task").violations == 3
    assert set(sampled(result, "orphans.events_without_task", "task_id")) == {str(task_id(3))}


def test_sessions_without_user(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        session = conn.execute(
            "INSERT INTO auth_sessions (user_id, expires_at) VALUES (%s, now() + '1 hour') "
            "RETURNING id", (GHOST,)).fetchone()
    result = audit(db_url)
    assert_fails_only(result, "orphans.sessions_without_user")
    assert session is not None
    assert sampled(result, "orphans.sessions_without_user", "session_id") == [str(session[0])]


def test_password_history_without_user(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("INSERT INTO password_history (user_id, password_hash) VALUES (%s, %s)",
                     (GHOST, fake_argon2id("ghost")))
    result = audit(db_url)
    assert_fails_only(result, "orphans.password_history_without_user")
    assert sampled(result, "orphans.password_history_without_user", "user_id") == [str(GHOST)]
