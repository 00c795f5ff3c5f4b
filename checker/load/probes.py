"""Cross-tenant attempts a tenant's client makes on purpose: every one must be denied.

Each probe names another tenant's task (or the tenant) and tries one way in: the services
(read, list by filter, update, transition, delete) and raw SQL under the application role with
the prober's own tenant set (select by id, select everything, update, delete, insert a task
owned by the other tenant, read its events). Raw SQL is always rolled back. What leaks is
recorded in `observed`; a probe that sees or changes nothing is recorded `fail` (denied).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from checker.load.users import TenantUser, tasks_seen
from taskhub import tasks
from taskhub.lifecycle import Status


def _foreign(rows: list[Any], me: str) -> dict[str, Any]:
    """task_ids/owner_ids of the rows (id, user_id) that are not the prober's."""
    leaked = [row for row in rows if str(row[1]) != me]
    return {"task_ids": [str(r[0]) for r in leaked], "owner_ids": [str(r[1]) for r in leaked]}


def _changed(counts: list[Any]) -> dict[str, Any]:
    return {"rows_changed": counts[0]} if counts and counts[0] else {}


def _deleted(delete: Callable[[], None], target: str) -> dict[str, Any]:
    delete()  # raises NotFound when denied
    return {"deleted": [target]}


def probes(user: TenantUser, target: str, owner: str) -> dict[str, Callable[[], dict[str, Any]]]:
    """Every way in, by name: each returns what leaked."""
    db, me, tid = user.harness.db, user.uid, uuid.UUID(target)

    def principal() -> Any:
        signed = user.signed_in()
        if signed is None:
            raise PermissionError("not signed in")
        return signed

    return {
        "read": lambda: tasks_seen([tasks.get(db, principal(), tid)]),
        "list_by_status": lambda: _foreign(
            [(r.id, r.user_id) for status in Status
             for r in tasks.list_tasks(db, principal(), status, limit=200)], me),
        "update": lambda: tasks_seen([tasks.update(db, principal(), tid, title="mine now")]),
        "transition": lambda: tasks_seen([tasks.start(db, principal(), tid)]),
        "delete": lambda: _deleted(lambda: tasks.delete(db, principal(), tid), target),
        "sql_select_by_id": lambda: _foreign(user.probe_as_app(
            "SELECT id, user_id FROM tasks WHERE id = :id", {"id": target}), me),
        "sql_select_all": lambda: _foreign(user.probe_as_app(
            "SELECT id, user_id FROM tasks", {}), me),
        "sql_update": lambda: _changed(user.probe_as_app(
            "UPDATE tasks SET title = 'mine now' WHERE id = :id", {"id": target})),
        "sql_delete": lambda: _changed(user.probe_as_app(
            "DELETE FROM tasks WHERE id = :id", {"id": target})),
        "sql_insert_for_other": lambda: _changed(user.probe_as_app(
            "INSERT INTO tasks (user_id, title) VALUES (:owner, 'planted')", {"owner": owner})),
        "sql_events": lambda: _foreign(user.probe_as_app(
            "SELECT task_id, user_id FROM task_events WHERE task_id = :id", {"id": target}),
            me),
    }


def probe_once(user: TenantUser, action: str | None = None) -> None:
    """One probe on a random other tenant's seeded task (a random way in unless named)."""
    others = [t for t in user.harness.tenants if t.user_id != user.uid and t.task_ids]
    if not others or user.signed_in() is None:
        return
    victim = user.rng.choice(others)
    target = user.rng.choice(victim.task_ids)
    ways = probes(user, target, victim.user_id)
    name = action or user.rng.choice(sorted(ways))
    user.rec.probe(name, {"target_task_id": target, "target_tenant": victim.user_id},
                   ways[name], tenant=user.uid)
