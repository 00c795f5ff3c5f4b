"""orphans.*: no row outlives what it belongs to (what ON DELETE CASCADE promises)."""

from __future__ import annotations

from checker.audit import taskpass
from checker.audit.check import Family
from checker.audit.context import AuditContext
from checker.audit.result import Finding

family = Family("orphans")


@family.check("tasks_without_user", "every task belongs to an existing user")
def tasks_without_user(ctx: AuditContext) -> Finding:
    """One violation per task whose user_id names no user."""
    return ctx.finding("""
        SELECT t.id AS task_id, t.user_id, t.status FROM tasks t
        WHERE NOT EXISTS (SELECT FROM users u WHERE u.id = t.user_id)""")


@family.check("events_without_task", "every task event belongs to an existing task")
def events_without_task(ctx: AuditContext) -> Finding:
    """One violation per event whose task_id names no task (checked among the suspects)."""
    return taskpass.finding(ctx, """
        SELECT e.id AS event_id, e.task_id, e.user_id, e.from_status, e.to_status
        FROM task_events e
        WHERE e.task_id = ANY (%(suspects)s)
          AND NOT EXISTS (SELECT FROM tasks t WHERE t.id = e.task_id)
        ORDER BY e.id""")


@family.check("sessions_without_user", "every auth session belongs to an existing user")
def sessions_without_user(ctx: AuditContext) -> Finding:
    """One violation per session whose user_id names no user."""
    return ctx.finding("""
        SELECT s.id AS session_id, s.user_id FROM auth_sessions s
        WHERE NOT EXISTS (SELECT FROM users u WHERE u.id = s.user_id)""")


@family.check("password_history_without_user",
              "every password history entry belongs to an existing user")
def password_history_without_user(ctx: AuditContext) -> Finding:
    """One violation per password_history row whose user_id names no user."""
    return ctx.finding("""
        SELECT h.id AS history_id, h.user_id FROM password_history h
        WHERE NOT EXISTS (SELECT FROM users u WHERE u.id = h.user_id)""")
