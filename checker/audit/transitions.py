"""transitions.*: every task's events are a legal path its row agrees with.

Legal: (none) -> pending -> processing -> completed | failed. Event ids order a task's events
(each change commits after the one before it). These exact queries read only the tasks the
shared pass (`taskpass`) flagged, which on a clean database is none.
"""

from __future__ import annotations

from checker.audit import taskpass
from checker.audit.check import Family
from checker.audit.context import AuditContext
from checker.audit.result import Finding

family = Family("transitions")

# Every event of a suspect task with its place in the task's history.
_EVENTS = """
WITH ev AS (
    SELECT e.id, e.task_id, e.from_status, e.to_status,
           row_number() OVER w AS n,
           lag(e.to_status) OVER w AS prev_to,
           count(*) OVER (PARTITION BY e.task_id) AS total,
           min(e.n_terminal) OVER (PARTITION BY e.task_id) AS terminal_n
    FROM (SELECT e.*, CASE WHEN e.to_status IN ('completed', 'failed')
                           THEN row_number() OVER (PARTITION BY e.task_id ORDER BY e.id) END
                      AS n_terminal
          FROM task_events e WHERE e.task_id = ANY (%(suspects)s)) AS e
    WINDOW w AS (PARTITION BY e.task_id ORDER BY e.id)
)"""


@family.check("legal_path",
              "each task's events, up to its first terminal one, are a legal path from its "
              "creation: NULL->pending first, then each from_status = the previous to_status, "
              "each step pending->processing or processing->completed|failed")
def legal_path(ctx: AuditContext) -> Finding:
    """One violation per task, sampled with its first illegal event (or 'no events')."""
    return taskpass.finding(ctx, _EVENTS + """,
    bad AS (
        SELECT DISTINCT ON (ev.task_id) ev.task_id, ev.n AS event_no, ev.id AS event_id,
               ev.from_status, ev.to_status,
               CASE WHEN ev.n = 1 THEN 'does not start with its creation (NULL -> pending)'
                    WHEN ev.from_status IS DISTINCT FROM ev.prev_to
                    THEN 'from_status is not the previous to_status (' || ev.prev_to || ')'
                    ELSE 'not a legal transition' END AS problem
        FROM ev
        WHERE ev.n <= coalesce(ev.terminal_n, ev.total) AND CASE
              WHEN ev.n = 1 THEN ev.from_status IS NOT NULL OR ev.to_status <> 'pending'
              ELSE ev.from_status IS DISTINCT FROM ev.prev_to
                   OR (ev.from_status, ev.to_status) NOT IN (('pending', 'processing'),
                       ('processing', 'completed'), ('processing', 'failed')) END
        ORDER BY ev.task_id, ev.n
    )
    SELECT t.id AS task_id, t.status, coalesce(b.problem, 'no events') AS problem,
           b.event_no, b.event_id, b.from_status, b.to_status
    FROM tasks t LEFT JOIN bad b ON b.task_id = t.id
    WHERE t.id = ANY (%(suspects)s)
      AND (b.task_id IS NOT NULL OR NOT EXISTS (SELECT FROM ev WHERE ev.task_id = t.id))""")


@family.check("status_matches_last_event",
              "each task's status is the to_status of its last event")
def status_matches_last_event(ctx: AuditContext) -> Finding:
    """One violation per task (with events) whose status differs from its last event's."""
    return taskpass.finding(ctx, _EVENTS + """
    SELECT t.id AS task_id, t.status, ev.to_status AS last_event_to, ev.id AS last_event_id
    FROM tasks t JOIN ev ON ev.task_id = t.id AND ev.n = ev.total
    WHERE t.status IS DISTINCT FROM ev.to_status""")


@family.check("terminal_fields",
              "completed tasks have a result and no error; failed tasks have an error")
def terminal_fields(ctx: AuditContext) -> Finding:
    """One violation per terminal task whose result/error does not fit its status."""
    return taskpass.finding(ctx, """
    SELECT t.id AS task_id, t.status, t.result IS NOT NULL AS has_result, t.error
    FROM tasks t
    WHERE t.id = ANY (%(suspects)s)
      AND ((t.status = 'completed' AND (t.result IS NULL OR t.error IS NOT NULL))
           OR (t.status = 'failed' AND t.error IS NULL))""")


@family.check("nothing_after_terminal",
              "no task has an event after its first completed or failed event")
def nothing_after_terminal(ctx: AuditContext) -> Finding:
    """One violation per task with events after a terminal one, sampled with the first."""
    return taskpass.finding(ctx, _EVENTS + """
    SELECT DISTINCT ON (ev.task_id) ev.task_id, ev.prev_to AS terminal_status,
           ev.terminal_n AS terminal_event_no, ev.total - ev.terminal_n AS events_after,
           ev.id AS first_after_id, ev.from_status, ev.to_status
    FROM ev WHERE ev.n > ev.terminal_n
    ORDER BY ev.task_id, ev.n""")


@family.check("version_counts_events",
              "each task's version equals its number of events (the creation counts as 1)")
def version_counts_events(ctx: AuditContext) -> Finding:
    """One violation per task whose version is not its event count."""
    return taskpass.finding(ctx, """
    SELECT t.id AS task_id, t.version, count(e.id) AS events
    FROM tasks t LEFT JOIN task_events e ON e.task_id = t.id
    WHERE t.id = ANY (%(suspects)s)
    GROUP BY t.id, t.version
    HAVING t.version <> count(e.id)""")
