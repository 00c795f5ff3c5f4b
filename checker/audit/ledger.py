"""ledger.*: what clients were told happened is in the database, and nothing else is.

Only with a history, which the audit has loaded into temporary tables on its own connection
(`checker.audit.history_tables`): every check here is a few set-based queries over them and
the data, so the checker's memory does not grow with the history. `unknown` outcomes are
accepted either way and counted in each check's details. A task's absence is explained by any
`ok` or `unknown` delete of the task or of its owner, whatever the timing: ids are generated
by the server, so no delete can name a task before its creation returned, and a user deleted
before a create would have made that create fail.
"""

from __future__ import annotations

from typing import Any

from checker.audit.check import Family
from checker.audit.context import AuditContext, sample
from checker.audit.result import Finding
from checker.history import RUN_START, TASK_SEED, HistoryRecord

family = Family("ledger")

RECORDS = "pg_temp.audit_records"


def brief(r: HistoryRecord, **extra: Any) -> dict[str, Any]:
    """A record as a check's sample shows it: who, what, when (and `extra`)."""
    return {"process": r.process, "tenant": r.tenant, "op": r.op, "start": r.start,
            "end": r.end, **extra}


def brief_sql(alias: str, **extra: str) -> str:
    """`brief` in SQL, of the `audit_records` row `alias`; `extra`: key -> SQL expression."""
    pairs = [("process", f"{alias}.process"), ("tenant", f"{alias}.tenant"),
             ("op", f"{alias}.op"), ("start", f"{alias}.t0"), ("end", f"{alias}.t1"),
             *extra.items()]
    return "jsonb_build_object(" + ", ".join(f"'{key}', {value}" for key, value in pairs) + ")"


def explained_sql(task: str, owner: str) -> str:
    """SQL: whether a delete that may have happened removed the task `task` (by id or with
    its owner `owner`). (Like `creator_sql`, its aliases are named to shadow no caller's.)"""
    return (f"(EXISTS (SELECT FROM pg_temp.audit_deleted_tasks gone_task "
            f"WHERE gone_task.id = {task}) OR EXISTS (SELECT FROM pg_temp.audit_deleted_users "
            f"gone_user WHERE gone_user.id = {owner}))")


def creator_sql(task: str) -> str:
    """SQL: the tenant that created the task `task` by the history's account: its last
    task.create's (NULL for a worker's, and then no other), else that of the task.seed record
    claiming it (known for the claimed tasks that are gone, the only ones asked about)."""
    return (f"CASE WHEN EXISTS (SELECT FROM pg_temp.audit_creates creator "
            f"WHERE creator.task = {task}) THEN (SELECT creator.tenant "
            f"FROM pg_temp.audit_creates creator WHERE creator.task = {task}) "
            f"ELSE (SELECT seeder.tenant FROM pg_temp.audit_disagreements gone "
            f"JOIN {RECORDS} seeder ON seeder.seq = gone.seed_seq "
            f"WHERE gone.claimed = {task} AND gone.task_id IS NULL LIMIT 1) END")


def _one(ctx: AuditContext, query: str, params: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    rows = ctx.rows(query, params)
    assert len(rows) == 1
    return rows[0]


@family.check("acknowledged_creates_persist",
              "every acknowledged task.create (and every task a task.seed claims) is in the "
              "database, owned by its creator, unless a delete of it or of its owner explains "
              "its absence", needs_history=True)
def acknowledged_creates_persist(ctx: AuditContext) -> Finding:
    """One violation per ok create or seeded task that is missing (unexplained) or has
    another owner."""
    problem = "CASE WHEN t.id IS NULL THEN 'missing' ELSE 'owned by ' || t.user_id END"
    counts, bad = ctx.tally(f"""
        SELECT CASE WHEN t.id IS NOT NULL
                    THEN CASE WHEN t.user_id IS DISTINCT FROM r.tenant THEN 'bad' ELSE 'ok' END
                    WHEN {explained_sql('r.observed_task', 'r.tenant')} THEN 'explained'
                    ELSE 'bad' END AS verdict,
               ARRAY[0, r.seq] AS ord,
               {brief_sql('r', task_id='r.observed_task', problem=problem)} AS sample
        FROM {RECORDS} r LEFT JOIN public.tasks t ON t.id = r.observed_task
        WHERE r.op = 'task.create' AND r.outcome = 'ok'
        UNION ALL  -- the seeded tasks: only those missing or misowned are in disagreements
        SELECT CASE WHEN t.id IS NOT NULL THEN 'bad'
                    WHEN {explained_sql('d.claimed', 's.tenant')} THEN 'explained'
                    ELSE 'bad' END,
               ARRAY[1, d.pos],
               {brief_sql('s', task_id='d.claimed', problem=problem)}
        FROM pg_temp.audit_disagreements d JOIN {RECORDS} s ON s.seq = d.seed_seq
             LEFT JOIN public.tasks t ON t.id = d.task_id
        WHERE d.claimed IS NOT NULL""")
    seen = _one(ctx, f"""
        SELECT count(*) FILTER (WHERE op = 'task.create' AND outcome = 'ok') AS acked,
               count(*) FILTER (WHERE op = 'task.create' AND outcome = 'unknown') AS unknown,
               coalesce(sum(seed_count) FILTER (WHERE op = '{TASK_SEED}'), 0) AS seeded
        FROM {RECORDS} WHERE op IN ('task.create', '{TASK_SEED}')""")
    return Finding(counts.get("bad", 0), bad,
                   {"acknowledged": seen["acked"] + int(seen["seeded"]),
                    "explained_by_delete": counts.get("explained", 0),
                    "unknown": seen["unknown"]})


@family.check("acknowledged_transitions_persist",
              "every acknowledged transition (and claim) has its event (same task, from, to) "
              "in task_events, unless a delete explains the task's absence", needs_history=True)
def acknowledged_transitions_persist(ctx: AuditContext) -> Finding:
    """One violation per ok transition without its event."""
    seen = _one(ctx, "SELECT count(*) FILTER (WHERE outcome = 'ok') AS acked, "
                     "count(*) FILTER (WHERE outcome = 'unknown') AS unknown "
                     "FROM pg_temp.audit_transitions")
    if not seen["acked"]:
        return Finding(0, details={"acknowledged": 0, "unknown": seen["unknown"]})
    owner = f"coalesce({creator_sql('x.task')}, r.tenant)"
    counts, bad = ctx.tally(f"""
        SELECT CASE WHEN e.has_event THEN 'ok'
                    WHEN NOT e.task_exists AND {explained_sql('x.task', owner)}
                    THEN 'explained' ELSE 'bad' END AS verdict,
               ARRAY[x.seq, x.pos] AS ord,
               {brief_sql('r', task_id='x.task',
                          transition="x.from_status || '->' || x.to_status",
                          task_exists='e.task_exists')} AS sample
        FROM pg_temp.audit_transitions x JOIN {RECORDS} r ON r.seq = x.seq,
             LATERAL (SELECT EXISTS (SELECT FROM public.task_events ev WHERE ev.task_id = x.task
                                     AND ev.from_status = x.from_status
                                     AND ev.to_status = x.to_status) AS has_event,
                             EXISTS (SELECT FROM public.tasks WHERE id = x.task) AS task_exists) e
        WHERE x.outcome = 'ok'""")
    return Finding(counts.get("bad", 0), bad,
                   {"acknowledged": seen["acked"],
                    "explained_by_delete": counts.get("explained", 0),
                    "unknown": seen["unknown"]})


@family.check("acknowledged_deletes_persist",
              "no task or user whose delete was acknowledged is still in the database",
              needs_history=True)
def acknowledged_deletes_persist(ctx: AuditContext) -> Finding:
    """One violation per ok task.delete / user.delete whose row still exists."""
    counts, bad = ctx.tally(f"""
        SELECT 'bad' AS verdict, ARRAY[0, r.seq] AS ord,
               {brief_sql('r', task_id='r.task')} AS sample
        FROM {RECORDS} r
        WHERE r.op = 'task.delete' AND r.outcome = 'ok'
              AND EXISTS (SELECT FROM public.tasks t WHERE t.id = r.task)
        UNION ALL
        SELECT 'bad', ARRAY[1, r.seq], {brief_sql('r', user_id='r.user_ref')}
        FROM {RECORDS} r
        WHERE r.op = 'user.delete' AND r.outcome = 'ok'
              AND EXISTS (SELECT FROM public.users u WHERE u.id = r.user_ref)""")
    seen = _one(ctx, f"""
        SELECT count(*) FILTER (WHERE outcome = 'ok') AS acked,
               count(*) FILTER (WHERE outcome = 'unknown') AS unknown
        FROM {RECORDS} WHERE op IN ('task.delete', 'user.delete')""")
    return Finding(counts.get("bad", 0), bad,
                   {"acknowledged": seen["acked"], "unknown": seen["unknown"]})


@family.check("no_phantom_tasks",
              "every task the history must explain (all when its run.start says complete, else "
              "those created after the run started) was created by one of its clients or "
              "claimed by its task.seed records",
              needs_history=True)
def no_phantom_tasks(ctx: AuditContext) -> Finding:
    """Violations: per owner, tasks no create record names, beyond that owner's creates of
    unknown outcome that returned no id (each of which may have committed one)."""
    scope = _one(ctx, f"""
        SELECT count(*) AS starts, bool_and(complete) AS complete, min(t0) AS since
        FROM {RECORDS} WHERE op = '{RUN_START}'""")
    if not scope["starts"]:
        return Finding(0, details={"scope": "none: the history has no run.start record"})
    judged = f"""
        WITH unnamed AS (SELECT * FROM pg_temp.audit_disagreements WHERE claimed IS NULL),
             budget AS (SELECT tenant, count(*) AS n FROM {RECORDS}
                        WHERE op = 'task.create' AND outcome = 'unknown'
                              AND observed_task IS NULL GROUP BY tenant),
             owners AS (SELECT u.user_id, count(*) AS n, min(u.pos) AS first,
                               greatest(count(*) - coalesce(max(b.n), 0), 0) AS excess
                        FROM unnamed u LEFT JOIN budget b ON b.tenant = u.user_id
                        GROUP BY u.user_id)"""
    totals = _one(ctx, f"""{judged}
        SELECT (SELECT coalesce(sum(n), 0) FROM owners) AS unnamed,
               (SELECT coalesce(sum(excess), 0) FROM owners) AS violations,
               (SELECT coalesce(sum(n), 0) FROM budget) AS unknown""")
    samples = ctx.rows(f"""{judged}
        SELECT u.task_id, u.user_id, u.created_at
        FROM unnamed u JOIN owners o ON o.user_id = u.user_id
        WHERE o.excess > 0 ORDER BY o.first, u.pos LIMIT %(n)s""", {"n": ctx.options.samples})
    violations, unnamed = int(totals["violations"]), int(totals["unnamed"])
    since = scope["since"] + ctx.options.clock_skew
    return Finding(violations, sample(samples, ctx.options),
                   {"scope": "every task" if scope["complete"] else
                    f"tasks created at or after epoch {since:.3f}",
                    "unnamed": unnamed, "explained_by_unknown_creates": unnamed - violations,
                    "unknown": int(totals["unknown"])})


@family.check("single_winner",
              "no two acknowledged transitions (or claims) of one task left the same status",
              needs_history=True)
def single_winner(ctx: AuditContext) -> Finding:
    """One violation per (task, from_status) that more than one ok record claims to have left."""
    counts, bad = ctx.tally(f"""
        WITH won AS (SELECT task, from_status, seq, min(pos) AS pos
                     FROM pg_temp.audit_transitions WHERE outcome = 'ok'
                     GROUP BY task, from_status, seq),
             contested AS (SELECT task, from_status FROM won GROUP BY task, from_status
                           HAVING count(*) > 1)
        SELECT 'bad' AS verdict,
               (SELECT min(ARRAY[a.seq, a.pos]) FROM pg_temp.audit_transitions a
                WHERE a.task = c.task AND a.from_status = c.from_status) AS ord,
               jsonb_build_object(
                   'task_id', c.task, 'from_status', c.from_status,
                   'winners', (SELECT jsonb_agg({brief_sql('r', to_status='x.to_status')}
                                                ORDER BY w.seq)
                               FROM won w JOIN {RECORDS} r ON r.seq = w.seq
                                    JOIN pg_temp.audit_transitions x
                                    ON x.seq = w.seq AND x.pos = w.pos
                               WHERE w.task = c.task AND w.from_status = c.from_status))
                   AS sample
        FROM contested c""")
    seen = _one(ctx, "SELECT count(*) AS attempted, "
                     "count(*) FILTER (WHERE outcome = 'unknown') AS unknown "
                     "FROM pg_temp.audit_transitions")
    return Finding(counts.get("bad", 0), bad,
                   {"transitions": seen["attempted"], "unknown": seen["unknown"]})
