"""isolation.*: a tenant sees exactly its own rows, through the application role.

The database side impersonates tenants as the data layer does: it enters the tenant with
`taskhub_enter_tenant(id, tag)` (the owner computes the tag with `taskhub_private.tenant_tag`)
and takes the role `taskhub_app`, then compares what each tenant sees in every table with what
it owns. With a history, it also proves that every row a client saw was its own and that
every cross-tenant probe came back empty-handed.
"""

from __future__ import annotations

import uuid
from typing import Any

from checker.access import IMPERSONATE
from checker.audit import taskpass
from checker.audit.check import Family
from checker.audit.context import AuditContext, sample
from checker.audit.ledger import RECORDS, creator_sql
from checker.audit.result import Finding
from checker.history import PROBE_PREFIX
from taskhub.settings import APP_ROLE

family = Family("isolation")

TABLES = {"users": "id", "password_history": "user_id", "auth_sessions": "user_id",
          "tasks": "user_id", "task_events": "user_id"}
_VISIBLE = "SELECT " + ", ".join(
    f"(SELECT count(*) FROM {table}) AS visible_{table}, "
    f"(SELECT count(*) FROM {table} WHERE {column} <> %(tenant)s) AS foreign_{table}"
    for table, column in TABLES.items())
_OWNED = ", ".join(f"(SELECT count(*) FROM {table} x WHERE x.{column} = u.id) AS owned_{table}"
                   for table, column in TABLES.items())

_FIRST_BATCH = 16


@family.check("tenant_sees_own_rows",
              "as taskhub_app with the tenant entered (a valid proof), each sampled tenant sees "
              "exactly its own rows of every table (users, password history, sessions, tasks, "
              "task events), and nothing else")
def tenant_sees_own_rows(ctx: AuditContext) -> Finding:
    """One violation per tenant whose view differs from what it owns.

    Tenants are taken in a fixed pseudo-random order (md5 of the id), up to
    `options.isolation_tenants` (0: all), in growing batches sent in one round trip each; it
    stops after the first batch with a violation (a broken policy makes every tenant's query a
    full scan), so `details.tenants_checked` says how many were probed.
    """
    limit = ctx.options.isolation_tenants or None
    owned = ctx.rows(f"""
        SELECT u.id AS tenant, {_OWNED}
        FROM (SELECT id FROM users ORDER BY md5(id::text) LIMIT %(limit)s) AS u""",
        {"limit": limit})
    bad: list[dict[str, Any]] = []
    checked, batch = 0, _FIRST_BATCH
    while checked < len(owned) and not bad:
        chunk = owned[checked: checked + batch]
        for row, seen in zip(chunk, _visible(ctx, [row["tenant"] for row in chunk]), strict=True):
            if any(seen[f"visible_{t}"] != row[f"owned_{t}"] or seen[f"foreign_{t}"]
                   for t in TABLES):
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
            ctx.conn.execute(IMPERSONATE, {"tenant": tenant})
            ctx.conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
            cursors.append(ctx.conn.execute(_VISIBLE, {"tenant": tenant}))
            ctx.conn.execute("SET LOCAL ROLE NONE")
    results = []
    for cur in cursors:
        row = cur.fetchone()
        assert row is not None and cur.description is not None
        results.append({col.name: value for col, value in zip(cur.description, row, strict=True)})
    return results


@family.check("no_tenant_sees_nothing",
              "as taskhub_app without a proven tenant (none entered, or the tenant settings "
              "forged to name a real user) no row of any table is visible")
def no_tenant_sees_nothing(ctx: AuditContext) -> Finding:
    """One violation per probe (no tenant; `taskhub.tenant`, `app.user_id` forged to a real
    user's id, with and without a made-up proof) that saw any row."""
    someone = ctx.rows("SELECT id FROM users LIMIT 1")
    victim = str(someone[0]["id"]) if someone else str(uuid.uuid4())
    ctx.execute(f"SET LOCAL ROLE {APP_ROLE}")
    bad = []
    counts = ", ".join(f"(SELECT count(*) FROM {table}) AS {table}" for table in TABLES)
    for name, value, proof in (("taskhub.tenant", "", ""), ("taskhub.tenant", victim, ""),
                               ("taskhub.tenant", victim, "AAAA"), ("app.user_id", victim, "")):
        ctx.conn.execute("SELECT set_config(%s, %s, true), "
                         "set_config('taskhub.tenant_proof', %s, true)", (name, value, proof))
        seen = ctx.rows(f"SELECT {counts}")[0]
        if any(seen.values()):
            bad.append({"setting": name, "value": value or "(empty)", **seen})
    ctx.execute("SELECT set_config('taskhub.tenant', '', true)")
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
    counts, bad = ctx.tally(f"""
        SELECT 'bad' AS verdict, ARRAY[r.seq, 0, o.pos] AS ord,
               {_DESCRIBE} || jsonb_build_object('owner', o.owner) AS sample
        FROM {RECORDS} r, unnest(r.foreign_owners) WITH ORDINALITY AS o (owner, pos)
        WHERE r.foreign_owners IS NOT NULL
        UNION ALL
        SELECT CASE WHEN w.owner IS NULL THEN 'unverifiable'
                    WHEN w.owner <> r.tenant THEN 'bad' ELSE 'ok' END,
               ARRAY[r.seq, 1, w.pos],
               {_DESCRIBE} || jsonb_build_object('task_id', w.task, 'owner', w.owner)
        FROM (SELECT s.seq, s.pos, s.task,
                     coalesce(t.user_id, {creator_sql('s.task')}) AS owner
              FROM pg_temp.audit_seen s LEFT JOIN public.tasks t ON t.id = s.task) AS w
             JOIN {RECORDS} r ON r.seq = w.seq""")
    records = ctx.rows(f"""
        SELECT count(*) AS n FROM {RECORDS}
        WHERE tenant IS NOT NULL AND NOT starts_with(op, '{PROBE_PREFIX}')""")[0]["n"]
    return Finding(counts.get("bad", 0), bad,
                   {"records": records, "unverifiable": counts.get("unverifiable", 0)})


@family.check("cross_tenant_denied",
              "every cross-tenant probe (op probe.*) was refused and observed nothing",
              needs_history=True)
def cross_tenant_denied(ctx: AuditContext) -> Finding:
    """One violation per probe that succeeded or saw something; unknown outcomes that saw
    nothing are accepted and counted in `details.unknown`."""
    counts, bad = ctx.tally(f"""
        SELECT CASE WHEN r.outcome = 'ok' OR r.leaked THEN 'bad'
                    WHEN r.outcome = 'unknown' THEN 'unknown' ELSE 'ok' END AS verdict,
               r.seq AS ord,
               {_DESCRIBE} || jsonb_build_object('observed', r.observed) AS sample
        FROM {RECORDS} r WHERE starts_with(r.op, '{PROBE_PREFIX}')""")
    unknown = ctx.rows(f"SELECT count(*) AS n FROM {RECORDS} WHERE outcome = 'unknown' "
                       f"AND starts_with(op, '{PROBE_PREFIX}')")[0]["n"]
    return Finding(counts.get("bad", 0), bad,
                   {"probes": sum(counts.values()), "unknown": unknown})


_DESCRIBE = ("jsonb_build_object('process', r.process, 'op', r.op, 'tenant', r.tenant, "
             "'start', r.t0, 'outcome', r.outcome)")
"""What a sample shows of the record `r`."""
