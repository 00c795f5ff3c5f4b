"""isolation.*: a tenant sees exactly its own rows, through the application role.

The database side impersonates tenants: `SET LOCAL ROLE taskhub_app` and
`set_config('app.user_id', id, true)`, as the data layer does, and compares what each sees with
what it owns. With a history, it also proves that every row a client saw was its own and that
every cross-tenant probe came back empty-handed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from checker.audit import taskpass
from checker.audit.check import Family
from checker.audit.context import AuditContext, sample
from checker.audit.result import Finding
from checker.history import PROBE_PREFIX, HistoryRecord
from taskhub.settings import APP_ROLE

family = Family("isolation")

_VISIBLE = """
SELECT (SELECT count(*) FROM tasks) AS visible_tasks,
       (SELECT count(*) FROM tasks WHERE user_id <> %(tenant)s) AS foreign_tasks,
       (SELECT count(*) FROM task_events) AS visible_events,
       (SELECT count(*) FROM task_events WHERE user_id <> %(tenant)s) AS foreign_events"""
_FIRST_BATCH = 16


@family.check("tenant_sees_own_rows",
              "as taskhub_app with app.user_id set, each sampled tenant sees exactly the tasks "
              "and task events it owns, and nothing else")
def tenant_sees_own_rows(ctx: AuditContext) -> Finding:
    """One violation per tenant whose view differs from what it owns.

    Tenants are taken in a fixed pseudo-random order (md5 of the id), up to
    `options.isolation_tenants` (0: all), in growing batches sent in one round trip each; it
    stops after the first batch with a violation (a broken policy makes every tenant's query a
    full scan), so `details.tenants_checked` says how many were probed.
    """
    limit = ctx.options.isolation_tenants or None
    owned = ctx.rows("""
        SELECT u.id AS tenant,
               (SELECT count(*) FROM tasks t WHERE t.user_id = u.id) AS owned_tasks,
               (SELECT count(*) FROM task_events e WHERE e.user_id = u.id) AS owned_events
        FROM (SELECT id FROM users ORDER BY md5(id::text) LIMIT %(limit)s) AS u""",
        {"limit": limit})
    ctx.execute(f"SET LOCAL ROLE {APP_ROLE}")
    bad: list[dict[str, Any]] = []
    checked, batch = 0, _FIRST_BATCH
    while checked < len(owned) and not bad:
        chunk = owned[checked: checked + batch]
        for row, seen in zip(chunk, _visible(ctx, [row["tenant"] for row in chunk]), strict=True):
            if (seen["visible_tasks"], seen["visible_events"]) != (
                    row["owned_tasks"], row["owned_events"]) or seen["foreign_tasks"] or \
                    seen["foreign_events"]:
                bad.append({**row, **seen})
        checked += len(chunk)
        batch *= 4
    return Finding(len(bad), sample(bad, ctx.options),
                   {"tenants_checked": checked, "tenants_sampled": len(owned)})


def _visible(ctx: AuditContext, tenants: list[uuid.UUID]) -> list[dict[str, Any]]:
    """What each tenant sees, all tenants in one pipelined round trip."""
    cursors = []
    with ctx.conn.pipeline():
        for tenant in tenants:
            ctx.conn.execute("SELECT set_config('app.user_id', %s, true)", (str(tenant),))
            cursors.append(ctx.conn.execute(_VISIBLE, {"tenant": tenant}))
    results = []
    for cur in cursors:
        row = cur.fetchone()
        assert row is not None and cur.description is not None
        results.append({col.name: value for col, value in zip(cur.description, row, strict=True)})
    return results


@family.check("no_tenant_sees_nothing",
              "as taskhub_app without a tenant (app.user_id empty or naming no user) no task "
              "or task event is visible")
def no_tenant_sees_nothing(ctx: AuditContext) -> Finding:
    """One violation per probe (empty setting, an unknown user id) that saw any row."""
    ctx.execute(f"SET LOCAL ROLE {APP_ROLE}")
    bad = []
    for probe in ("", str(uuid.uuid4())):
        ctx.execute("SELECT set_config('app.user_id', %s, true)", (probe,))
        seen = ctx.rows("SELECT (SELECT count(*) FROM tasks) AS tasks, "
                        "(SELECT count(*) FROM task_events) AS events")[0]
        if seen["tasks"] or seen["events"]:
            bad.append({"app.user_id": probe or "(empty)", **seen})
    return Finding(len(bad), sample(bad, ctx.options))


@family.check("event_owner_matches_task",
              "each task event carries its task's owner (task_events.user_id = tasks.user_id)")
def event_owner_matches_task(ctx: AuditContext) -> Finding:
    """One violation per event whose user_id differs from its task's."""
    return taskpass.finding(ctx, """
        SELECT e.id AS event_id, e.task_id, e.user_id AS event_owner, t.user_id AS task_owner
        FROM task_events e JOIN tasks t ON t.id = e.task_id
        WHERE e.task_id = ANY (%(suspects)s) AND e.user_id <> t.user_id
        ORDER BY e.id""")


@family.check("observed_rows_owned",
              "every row a tenant's client observed (tasks and their owners) belonged to "
              "that tenant", needs_history=True)
def observed_rows_owned(ctx: AuditContext) -> Finding:
    """One violation per (record, row) pair where a client saw another tenant's row.

    A task's owner comes from the database, or, for a task since deleted, from the record of
    its creation; rows whose owner neither can tell are counted in `details.unverifiable`.
    """
    records = [r for r in ctx.history or () if r.tenant and not r.op.startswith(PROBE_PREFIX)]
    task_ids = {t for r in records for t in _seen_tasks(r)}
    owners = _owners_in_db(ctx, task_ids)
    creators = _creators(ctx.history or ())
    bad, unverifiable = [], 0
    for record in records:
        for seen_owner in record.observed_ids("owner_ids"):
            if seen_owner != record.tenant:
                bad.append(_describe(record, owner=seen_owner))
        for task in _seen_tasks(record):
            owner = owners.get(task) or creators.get(task)
            if owner is None:
                unverifiable += 1
            elif owner != record.tenant:
                bad.append(_describe(record, task_id=task, owner=owner))
    return Finding(len(bad), sample(bad, ctx.options),
                   {"records": len(records), "unverifiable": unverifiable})


@family.check("cross_tenant_denied",
              "every cross-tenant probe (op probe.*) was refused and observed nothing",
              needs_history=True)
def cross_tenant_denied(ctx: AuditContext) -> Finding:
    """One violation per probe that succeeded or saw something; unknown outcomes that saw
    nothing are accepted and counted in `details.unknown`."""
    probes = [r for r in ctx.history or () if r.op.startswith(PROBE_PREFIX)]
    bad = [_describe(r, observed=r.observed) for r in probes
           if r.outcome == "ok" or any(r.observed.values())]
    unknown = sum(1 for r in probes if r.outcome == "unknown")
    return Finding(len(bad), sample(bad, ctx.options), {"probes": len(probes), "unknown": unknown})


def _seen_tasks(record: HistoryRecord) -> list[str]:
    seen = record.observed_ids("task_ids")
    created = record.observed.get("task_id")
    return [*seen, str(created)] if created else seen


def _owners_in_db(ctx: AuditContext, task_ids: set[str]) -> dict[str, str]:
    if not task_ids:
        return {}
    rows = ctx.rows("SELECT id, user_id FROM tasks WHERE id = ANY (%(ids)s::uuid[])",
                    {"ids": sorted(task_ids)})
    return {str(row["id"]): str(row["user_id"]) for row in rows}


def _creators(records: Iterable[HistoryRecord]) -> dict[str, str]:
    return {str(r.observed["task_id"]): r.tenant for r in records
            if r.op == "task.create" and r.tenant is not None and r.observed.get("task_id")}


def _describe(record: HistoryRecord, **extra: Any) -> dict[str, Any]:
    return {"process": record.process, "op": record.op, "tenant": record.tenant,
            "start": record.start, "outcome": record.outcome, **extra}
