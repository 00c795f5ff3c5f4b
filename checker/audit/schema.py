"""schema.*: the database still enforces what the data layer relies on (catalog queries)."""

from __future__ import annotations

from checker import grants
from checker.audit.check import Family
from checker.audit.context import AuditContext, sample
from checker.audit.result import Finding
from taskhub.settings import APP_ROLE, WORKER_ROLE

family = Family("schema")

TABLES = ("users", "password_history", "auth_sessions", "tasks", "task_events")
ROLES = (APP_ROLE, WORKER_ROLE)
STATUSES = ("pending", "processing", "completed", "failed")
# (child table, a column of the foreign key, parent table)
CASCADES = (("tasks", "user_id", "users"), ("password_history", "user_id", "users"),
            ("auth_sessions", "user_id", "users"), ("task_events", "task_id", "tasks"))


@family.check("cascade_foreign_keys",
              "tasks, password_history and auth_sessions reference users, and task_events "
              "references tasks, through validated foreign keys with ON DELETE CASCADE")
def cascade_foreign_keys(ctx: AuditContext) -> Finding:
    """One violation per expected foreign key that is missing, not cascading or not valid."""
    return ctx.finding("""
        SELECT x.child AS "table", x.col AS "column", x.parent AS "references",
               coalesce(string_agg(c.conname || ' ON DELETE ' || CASE c.confdeltype
                   WHEN 'c' THEN 'CASCADE' WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'
                   WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END
                   || CASE WHEN c.convalidated THEN '' ELSE ' NOT VALID' END, ', '),
                   'no foreign key') AS found
        FROM unnest(%(child)s::text[], %(col)s::text[], %(parent)s::text[])
             AS x (child, col, parent)
        LEFT JOIN pg_constraint c
               ON c.contype = 'f' AND c.conrelid = to_regclass(x.child)
              AND c.confrelid = to_regclass(x.parent)
              AND (SELECT attnum FROM pg_attribute
                   WHERE attrelid = c.conrelid AND attname = x.col) = ANY (c.conkey)
        GROUP BY x.child, x.col, x.parent
        HAVING NOT coalesce(bool_or(c.confdeltype = 'c' AND c.convalidated), false)""",
        {"child": [c[0] for c in CASCADES], "col": [c[1] for c in CASCADES],
         "parent": [c[2] for c in CASCADES]})


@family.check("row_level_security",
              "row-level security is enabled and forced on every taskhub table (users, "
              "password_history, auth_sessions, tasks, task_events), each with a policy for "
              "the application role")
def row_level_security(ctx: AuditContext) -> Finding:
    """One violation per tenant table that is not enabled, forced and under a policy."""
    return ctx.finding("""
        SELECT t.name AS "table", c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid
                  AND (0 = ANY (p.polroles) OR r.oid = ANY (p.polroles))) AS app_policies
        FROM unnest(%(tables)s::text[]) AS t (name)
        LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
        LEFT JOIN pg_roles r ON r.rolname = %(app)s
        WHERE c.oid IS NULL OR NOT c.relrowsecurity OR NOT c.relforcerowsecurity
           OR NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid
                          AND (0 = ANY (p.polroles) OR r.oid = ANY (p.polroles)))""",
        {"tables": list(TABLES), "app": APP_ROLE})


@family.check("roles_confined",
              "taskhub_app and taskhub_worker exist, are neither superuser nor BYPASSRLS, and "
              "neither own (nor inherit the owner of) any taskhub table")
def roles_confined(ctx: AuditContext) -> Finding:
    """One violation per role that is missing or could bypass row-level security."""
    return ctx.finding("""
        WITH ours AS (SELECT c.oid, c.relname, c.relowner FROM pg_class c
                      WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(%(tables)s::text[]) AS t))
        SELECT x.role, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
               (SELECT string_agg(o.relname, ', ' ORDER BY o.relname) FROM ours o
                WHERE pg_has_role(r.oid, o.relowner, 'USAGE')) AS owns
        FROM unnest(%(roles)s::text[]) AS x (role)
        LEFT JOIN pg_roles r ON r.rolname = x.role
        WHERE r.oid IS NULL OR r.rolsuper OR r.rolbypassrls
           OR EXISTS (SELECT FROM ours o WHERE pg_has_role(r.oid, o.relowner, 'USAGE'))""",
        {"roles": list(ROLES), "tables": list(TABLES)})


@family.check("status_constraints",
              "validated CHECK constraints restrict tasks.status and task_events.to_status to "
              "the four known statuses")
def status_constraints(ctx: AuditContext) -> Finding:
    """One violation per status column without a valid CHECK naming every known status."""
    return ctx.finding("""
        SELECT x.tbl AS "table", x.col AS "column",
               string_agg(pg_get_constraintdef(c.oid), '; ') AS found
        FROM (VALUES ('tasks', 'status'), ('task_events', 'to_status')) AS x (tbl, col)
        LEFT JOIN pg_attribute a ON a.attrelid = to_regclass(x.tbl) AND a.attname = x.col
        LEFT JOIN pg_constraint c ON c.conrelid = a.attrelid AND c.contype = 'c'
              AND c.conkey = ARRAY[a.attnum]
        GROUP BY x.tbl, x.col
        HAVING NOT coalesce(bool_or(c.convalidated AND (
                   SELECT bool_and(strpos(pg_get_constraintdef(c.oid), quote_literal(s)) > 0)
                   FROM unnest(%(statuses)s::text[]) AS s)), false)""",
        {"statuses": list(STATUSES)})


@family.check("triggers_enabled",
              "no trigger on a taskhub table (foreign-key triggers included) is disabled or "
              "set to fire only in replica mode")
def triggers_enabled(ctx: AuditContext) -> Finding:
    """One violation per disabled ('D') or replica-only ('R') trigger."""
    return ctx.finding("""
        SELECT t.tgrelid::regclass::text AS "table", t.tgname AS "trigger",
               t.tgisinternal AS internal,
               CASE t.tgenabled WHEN 'D' THEN 'disabled' ELSE 'replica only' END AS state
        FROM pg_trigger t
        WHERE t.tgrelid IN (SELECT to_regclass(x) FROM unnest(%(tables)s::text[]) AS x)
          AND t.tgenabled IN ('D', 'R')
        ORDER BY 1, 2""",
        {"tables": list(TABLES)})


@family.check("grants_match_matrix",
              "the privileges of taskhub_app, taskhub_worker and PUBLIC on every taskhub table, "
              "column, sequence, schema and function and on the database are exactly the "
              "documented grants matrix (nothing missing, nothing extra)")
def grants_match_matrix(ctx: AuditContext) -> Finding:
    """One violation per (object, grantee, privilege) missing from or added to the matrix."""
    actual = {(r["object"], r["grantee"], r["privilege"])
              for r in ctx.rows(grants.ACTUAL, {"roles": [APP_ROLE, WORKER_ROLE]})}
    wanted = grants.expected()
    drift = [{"object": o, "grantee": g, "privilege": p, "drift": "extra"}
             for o, g, p in sorted(actual - wanted)]
    drift += [{"object": o, "grantee": g, "privilege": p, "drift": "missing"}
              for o, g, p in sorted(wanted - actual)]
    return Finding(len(drift), sample(drift, ctx.options))
