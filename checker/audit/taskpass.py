"""The one pass over tasks and task_events that the per-task checks share.

Checking each task against its events needs every event next to its task: a join or a sort of
the whole events table. Doing that once per check would multiply the audit's cost, and sorting
events by (task, id) for window functions costs about 3x a plain hash aggregation (measured at
1M tasks, see benchmarks/audit_bench.py). So the audit works in two phases:

1. `suspects()`: ONE hash aggregation over `tasks UNION ALL task_events`, grouped by
   (task id, owner), computes a few order-insensitive aggregates per group and returns the ids
   of the tasks whose group is not exactly what a legal history produces. It is sound: every
   task that breaks any per-task property (a legal path, status = last event, version = event
   count, result/error, events owned like their task, events with a task) is a suspect; a
   clean task never needs looking at again. False suspects are harmless (phase 2 clears them).
2. Each check then runs its exact, readable query (window functions over ordered events)
   restricted to the suspects: on a clean database, nothing.

How phase 1 is exact: each event gets a step code (creation 1, pending->processing 2,
processing->completed 4, processing->failed 8, anything else 16); each task row the code set
its status requires plus 64 (pending 1, processing 3, completed 7, failed 11; 128 more when its
result/error does not fit its status). With A = sum of event codes, B = bit_or of event codes,
C = sum of task-row codes: A = B means no step repeats; C = B + 64 means exactly one task row,
whose status needs exactly the steps present (so each event's owner is the task's owner, since
the group key includes it) and whose fields fit. Version is the event count when the task row's
version minus one per event sums to 0. A task's changes are serialised (each one reads the
status the previous one committed), so its event ids grow along its path (this assumes the
identity's default CACHE 1); the steps are in order when the first event (smallest id) is the
creation and the last one (largest id) carries the status: min/max of `id * 8 + rank(to)`.
"""

from __future__ import annotations

import uuid

from checker.audit.context import AuditContext
from checker.audit.result import Finding

_STEP = """CASE WHEN e.from_status IS NULL THEN CASE WHEN e.to_status = 'pending' THEN 1 ELSE 16 END
     WHEN e.from_status = 'pending' THEN CASE WHEN e.to_status = 'processing' THEN 2 ELSE 16 END
     WHEN e.from_status = 'processing' THEN
          CASE e.to_status WHEN 'completed' THEN 4 WHEN 'failed' THEN 8 ELSE 16 END
     ELSE 16 END"""
_RANK = """CASE e.to_status WHEN 'pending' THEN 1 WHEN 'processing' THEN 2
     WHEN 'completed' THEN 3 WHEN 'failed' THEN 4 ELSE 5 END"""
_NEEDS = """CASE t.status WHEN 'pending' THEN 1 WHEN 'processing' THEN 3
     WHEN 'completed' THEN 7 WHEN 'failed' THEN 11 ELSE 0 END"""
_FIELDS_OK = """CASE t.status WHEN 'completed' THEN t.result IS NOT NULL AND t.error IS NULL
     WHEN 'failed' THEN t.error IS NOT NULL ELSE true END"""

SUSPECTS_SQL = f"""
SELECT task_id FROM (
    SELECT e.task_id, e.user_id, {_STEP} AS step, 0 AS needs, -1 AS version,
           e.id * 8 + {_RANK} AS key
    FROM task_events e
    UNION ALL
    SELECT t.id, t.user_id, 0, 64 + {_NEEDS} + CASE WHEN {_FIELDS_OK} THEN 0 ELSE 128 END,
           t.version, NULL
    FROM tasks t
) AS r
GROUP BY task_id, user_id
HAVING NOT coalesce(
       sum(step) = bit_or(step) AND sum(needs) = bit_or(step) + 64 AND sum(version) = 0
   AND mod(min(key), 8) = 1
   AND mod(max(key), 8) = CASE bit_or(step) WHEN 1 THEN 1 WHEN 3 THEN 2 WHEN 7 THEN 3
                                         WHEN 11 THEN 4 END, false)
"""


def suspects(ctx: AuditContext) -> list[uuid.UUID]:
    """Ids of the tasks (or of the task ids of orphaned events) that need a closer look.

    Computed once per audit, by the first check that asks (its duration includes the pass).
    """
    def compute() -> list[uuid.UUID]:
        # Parallel plans are worse here: the planner cannot estimate a UNION's groups.
        ctx.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        ids = {row["task_id"] for row in ctx.rows(SUSPECTS_SQL)}
        return sorted(ids)
    return ctx.memo("taskpass.suspects", compute)


def finding(ctx: AuditContext, query: str) -> Finding:
    """A per-task check: `query` (named params, `%(suspects)s` the suspects' ids) runs only
    when phase 1 flagged something; `details.suspects` says how many tasks it flagged."""
    ids = suspects(ctx)
    if not ids:
        return Finding(0, details={"suspects": 0})
    return ctx.finding(query, {"suspects": ids}, details={"suspects": len(ids)})
