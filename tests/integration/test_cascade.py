"""Deleting a user removes every row that belonged to them, and nothing of anyone else."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, text

from taskhub import auth, tasks, tokens, users
from taskhub.db import Database
from taskhub.principal import Worker
from taskhub.settings import Settings
from tests.integration.helpers import Account, as_owner, password

TABLES = {
    "tasks": "SELECT count(*) FROM tasks WHERE user_id = :u",
    "task_events": "SELECT count(*) FROM task_events WHERE user_id = :u",
    "task_events by task": "SELECT count(*) FROM task_events e "
                           "WHERE NOT EXISTS (SELECT FROM tasks t WHERE t.id = e.task_id)",
    "auth_sessions": "SELECT count(*) FROM auth_sessions WHERE user_id = :u",
    "password_history": "SELECT count(*) FROM password_history WHERE user_id = :u",
    "users": "SELECT count(*) FROM users WHERE id = :u",
}


def counts(engine: Engine, user_id: object) -> dict[str, int]:
    with as_owner(engine) as conn:
        return {name: int(conn.execute(text(sql), {"u": user_id}).scalar_one())
                for name, sql in TABLES.items()}


def test_delete_user_leaves_nothing_behind(db: Database, db_engine: Engine, settings: Settings,
                                           make_account: Callable[..., Account]) -> None:
    victim, bystander = make_account(), make_account()
    for principal in (victim.principal, bystander.principal):
        done = tasks.create(db, principal, "done")
        tasks.start(db, Worker("w"), done.id)
        tasks.complete(db, Worker("w"), done.id, [1])
        tasks.create(db, principal, "pending")
    auth.change_password(db, settings, victim.principal, victim.password, password(90))
    token = auth.login(db, settings, victim.user.email, password(90))

    assert all(n > 0 for name, n in counts(db_engine, victim.user.id).items()
               if name != "task_events by task")
    others_before = counts(db_engine, bystander.user.id)

    users.delete(db, tokens.verify(db, settings, token))

    assert counts(db_engine, victim.user.id) == dict.fromkeys(TABLES, 0)
    assert counts(db_engine, bystander.user.id) == others_before
