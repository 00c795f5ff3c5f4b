"""ledger.acknowledged_edits_persist: each task field the history wrote holds a value some write
may have left there last.

A task's `title` and its `payload` are each a register. The writes of one field of one task are
its `task.create` (the initial value) and every `task.update` that set it, as `args.wrote`
digests (`checker.history.digest`). A write is superseded when an acknowledged write of the same
field started after it had returned; the final value must be the value of a write that is
not superseded and that may have happened (`ok` or `unknown`): the last acknowledged one, or one
that overlapped it, or one of unknown outcome after it. A field with no acknowledged write in
the history (a seeded task only ever edited with unknown outcome) is not checked: its value
before the run is not the history's to know. Tasks that are gone are the creates and deletes
checks' business.
"""

from __future__ import annotations

from typing import Any

from checker.audit.check import Family
from checker.audit.context import AuditContext, jsonable
from checker.audit.ledger import RECORDS, brief_sql, explained_sql
from checker.audit.result import Finding
from checker.history import digest

family = Family("ledger")

_FETCH = 2000


# One row per (task, field) the history wrote, in the order of its first write: whether the
# task is gone (and, if so, whether this field's writes make it a violation), else the
# values it may hold (NULL: no acknowledged write, unchecked) and its value now.
_FIELDS = f"""
    WITH w AS (
        SELECT w.*, max(w.t0) FILTER (WHERE w.outcome = 'ok')
                        OVER (PARTITION BY w.task, w.field) AS latest_start
        FROM pg_temp.audit_writes w),
    f AS (
        SELECT task, field, count(*) AS writes, min(ARRAY[seq, pos]) AS first,
               bool_or(op = 'task.create') AS created, bool_or(outcome = 'ok') AS acked,
               array_agg(DISTINCT tenant) AS owners,
               array_agg(value) FILTER (WHERE t1 + %(skew)s >= latest_start) AS finals,
               (array_agg(seq ORDER BY t1 DESC, seq) FILTER (WHERE outcome = 'ok'))[1]
                   AS last_acked
        FROM w GROUP BY task, field)
    SELECT f.task, f.field, f.writes, f.finals, f.last_acked, t.id IS NOT NULL AS present,
           CASE WHEN t.id IS NULL THEN NOT f.created AND f.acked AND NOT EXISTS (
                    SELECT FROM unnest(f.owners) AS o (owner)
                    WHERE {explained_sql('f.task', 'o.owner')})
           END AS lost,
           CASE f.field WHEN 'title' THEN to_jsonb(t.title) ELSE t.payload END AS value
    FROM f LEFT JOIN public.tasks t ON t.id = f.task
    ORDER BY f.first"""


@family.check("acknowledged_edits_persist",
              "each task field a client wrote (title, payload) holds the value of the last "
              "acknowledged write of it, or of a write that overlapped it or whose outcome is "
              "unknown: no acknowledged edit reverted or lost, no edited task gone without a "
              "delete, no acknowledged edit the history cannot check", needs_history=True)
def acknowledged_edits_persist(ctx: AuditContext) -> Finding:
    """One violation per (task, field) whose value no surviving write explains, per edited
    task (one with no create in the history: a seeded one) missing without a delete to explain
    it, and per acknowledged edit that did not record what it wrote.

    The fields stream from a server-side cursor: each value's digest is taken here, as the
    history took it (`checker.history.digest`), one batch at a time."""
    blind_count, blind = ctx.tally(f"""
        SELECT 'bad' AS verdict, r.seq AS ord,
               {brief_sql('r', task_id='r.task',
                          problem="'acknowledged edit without args.wrote'")} AS sample
        FROM {RECORDS} r
        WHERE r.op = 'task.update' AND r.outcome = 'ok' AND NOT r.wrote_ok""")
    bad: list[dict[str, Any]] = list(blind)
    violations = blind_count.get("bad", 0)
    missing: set[str] = set()
    checked = unchecked = writes = 0
    last_acked: dict[int, int] = {}  # sample index -> seq of its last acknowledged write
    with ctx.conn.cursor(name="audit_edited_fields") as cur:
        cur.itersize = _FETCH
        cur.execute(_FIELDS, {"skew": ctx.options.history_skew})
        for task, name, count, finals, last, present, lost, value in cur:
            writes += count
            task = str(task)
            if not present:
                # A created task's absence is acknowledged_creates_persist's to judge; a
                # seeded task that was edited has no other check to notice it went.
                if lost and task not in missing:
                    missing.add(task)
                    violations += 1
                    if len(bad) < ctx.options.samples:
                        bad.append({"task_id": task,
                                    "problem": "edited, then missing without a delete"})
                continue
            if finals is None:
                unchecked += 1
                continue
            checked += 1
            if digest(value) not in finals:
                violations += 1
                if len(bad) < ctx.options.samples:
                    last_acked[len(bad)] = last
                    bad.append({"task_id": task, "field": name, "writes": count})
    if last_acked:
        briefs = {row["seq"]: row["brief"] for row in ctx.rows(
            f"SELECT r.seq, {brief_sql('r')} AS brief FROM {RECORDS} r "
            "WHERE r.seq = ANY (%(seqs)s)", {"seqs": list(last_acked.values())})}
        for index, seq in last_acked.items():
            bad[index]["last_acknowledged"] = briefs[seq]
    return Finding(violations, [jsonable(item) for item in bad],
                   {"fields_checked": checked, "fields_unchecked": unchecked,
                    "writes": writes} if writes else {"fields_checked": 0})
