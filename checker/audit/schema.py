"""schema.*: the database still enforces what the data layer relies on (catalog queries)."""

from __future__ import annotations

from typing import Any

from checker import grants
from checker.access import SUFFIXES, role_name
from checker.audit.check import Family
from checker.audit.context import AuditContext, sample
from checker.audit.result import Finding
from taskhub.lifecycle import Status
from taskhub.settings import APP_ROLE, WORKER_ROLE

family = Family("schema")

TABLES = ("users", "password_history", "auth_sessions", "tasks", "task_events")
ROLES = (APP_ROLE, WORKER_ROLE)
STATUSES = tuple(status.value for status in Status)
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
              "taskhub_app and taskhub_worker exist, and they and this database's login roles "
              "are neither superuser nor BYPASSRLS, and neither own (nor inherit the owner of) "
              "any taskhub table")
def roles_confined(ctx: AuditContext) -> Finding:
    """One violation per role that is missing or could bypass row-level security (a login
    role that does not exist is not a violation: a database may have none)."""
    return ctx.finding("""
        WITH ours AS (SELECT c.oid, c.relname, c.relowner FROM pg_class c
                      WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(%(tables)s::text[]) AS t))
        SELECT x.role, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
               (SELECT string_agg(o.relname, ', ' ORDER BY o.relname) FROM ours o
                WHERE pg_has_role(r.oid, o.relowner, 'USAGE')) AS owns
        FROM (SELECT unnest(%(roles)s::text[]) AS role, true AS required
              UNION ALL SELECT unnest(%(logins)s::text[]), false) AS x
        LEFT JOIN pg_roles r ON r.rolname = x.role
        WHERE (r.oid IS NULL AND x.required) OR r.rolsuper OR r.rolbypassrls
           OR EXISTS (SELECT FROM ours o WHERE pg_has_role(r.oid, o.relowner, 'USAGE'))""",
        {"roles": list(ROLES), "tables": list(TABLES), "logins": _login_roles(ctx)})


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
              "the privileges of every role but an object's owner, PUBLIC included, on every "
              "taskhub table, column, sequence, schema and function and on the database are "
              "exactly the documented grants matrix (nothing missing, nothing extra; this "
              "database's own login roles hold CONNECT)")
def grants_match_matrix(ctx: AuditContext) -> Finding:
    """One violation per (object, grantee, privilege) missing from or added to the matrix."""
    actual = {(r["object"], r["grantee"], r["privilege"])
              for r in ctx.rows(grants.ACTUAL, {"login_roles": _login_roles(ctx),
                                         "grantees": list(grants.GRANTEES)})}
    wanted = grants.expected()
    drift = [{"object": o, "grantee": g, "privilege": p, "drift": "extra"}
             for o, g, p in sorted(actual - wanted)]
    drift += [{"object": o, "grantee": g, "privilege": p, "drift": "missing"}
              for o, g, p in sorted(wanted - actual)]
    return Finding(len(drift), sample(drift, ctx.options))


def _login_roles(ctx: AuditContext) -> list[str]:
    """This database's runtime login roles' names (`checker.access`)."""
    [row] = ctx.rows("SELECT current_database() AS name")
    return [role_name(str(row["name"]), suffix) for suffix in SUFFIXES]


def expected_policies(owner: str) -> dict[tuple[str, str], tuple[str, tuple[str, ...],
                                                                 str | None, str | None]]:
    """(table, policy) -> (command, roles, USING, WITH CHECK) as revisions 0007 and 0009 left
    them, every one permissive; `owner`: the tables' owner (its own unconditional policy)."""
    policies: dict[tuple[str, str], tuple[str, tuple[str, ...], str | None, str | None]] = {}
    for table in TABLES:
        column = "id" if table == "users" else "user_id"
        tenant = f"({column} = ( SELECT taskhub_tenant() AS taskhub_tenant))"
        policies[(table, f"{table}_owner")] = ("*", (owner,), "true", "true")
        policies[(table, f"{table}_tenant")] = ("*", (APP_ROLE,), tenant, tenant)
    policies[("tasks", "tasks_worker_read")] = ("r", (WORKER_ROLE,), "true", None)
    policies[("tasks", "tasks_worker_update")] = ("w", (WORKER_ROLE,), "true", "true")
    policies[("task_events", "task_events_worker_read")] = ("r", (WORKER_ROLE,), "true", None)
    policies[("task_events", "task_events_worker_insert")] = ("a", (WORKER_ROLE,), None, "true")
    return policies


def _normalised(expression: str | None) -> str | None:
    """An expression as pg_get_expr gives it (under the audit's pinned search_path, which
    leaves public's names unqualified), whatever the spacing."""
    return None if expression is None else "".join(expression.split())


@family.check("policies_match",
              "the row-level security policies on the taskhub tables are exactly the "
              "documented ones (names, commands, roles, expressions, all permissive): none "
              "added, changed or dropped")
def policies_match(ctx: AuditContext) -> Finding:
    """One violation per policy missing, extra, or different from its definition."""
    rows = ctx.rows("""
        SELECT c.relname AS "table", p.polname AS policy, p.polcmd AS command,
               p.polpermissive AS permissive, pg_get_userbyid(c.relowner) AS owner,
               ARRAY(SELECT CASE g WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g) END
                     FROM unnest(p.polroles) AS g ORDER BY 1) AS roles,
               pg_get_expr(p.polqual, p.polrelid) AS using,
               pg_get_expr(p.polwithcheck, p.polrelid) AS check
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(%(tables)s::text[]) AS t)""",
        {"tables": list(TABLES)})
    [owner] = ctx.rows("SELECT pg_get_userbyid(relowner) AS name FROM pg_class "
                       "WHERE oid = to_regclass('tasks')") or [{"name": "?"}]
    wanted = expected_policies(str(owner["name"]))
    bad: list[dict[str, Any]] = []
    for row in rows:
        key = (row["table"], row["policy"])
        found = (row["command"], tuple(row["roles"]), _normalised(row["using"]),
                 _normalised(row["check"]))
        spec = wanted.pop(key, None)
        if spec is None:
            bad.append({**row, "drift": "extra"})
        elif not row["permissive"] or found != (spec[0], tuple(sorted(spec[1])),
                                                _normalised(spec[2]), _normalised(spec[3])):
            bad.append({**row, "drift": "changed"})
    bad += [{"table": table, "policy": name, "drift": "missing"} for table, name in wanted]
    return Finding(len(bad), sample(bad, ctx.options))


@family.check("role_memberships",
              "this database's login roles (<database>_app, <database>_worker) belong to their "
              "group only and have no other power (superuser, BYPASSRLS, CREATEROLE, CREATEDB, "
              "REPLICATION, ADMIN); the groups taskhub_app and taskhub_worker belong to no "
              "role; no other role that may connect here can act as a login role or a group; "
              "no role that may connect here, superusers aside, has BYPASSRLS")
def role_memberships(ctx: AuditContext) -> Finding:
    """One violation per membership or power beyond the design.

    Memberships are followed transitively (`pg_has_role ... MEMBER`). Superusers and the
    database's and the tables' owners are not counted as members: they reach everything
    anyway (PostgreSQL 16 makes a role's creator its admin member).
    """
    return ctx.finding("""
        WITH design AS (
            SELECT x.grp, current_database() || '_' || x.suffix AS login
            FROM unnest(%(groups)s::text[], %(suffixes)s::text[]) AS x (grp, suffix)),
        owners AS (SELECT datdba AS oid FROM pg_database WHERE datname = current_database()
                   UNION SELECT relowner FROM pg_class
                   WHERE oid IN (SELECT to_regclass(t) FROM unnest(%(tables)s::text[]) AS t)),
        powers AS (SELECT r.oid, concat_ws(', ',
                       CASE WHEN r.rolsuper THEN 'superuser' END,
                       CASE WHEN r.rolbypassrls THEN 'bypassrls' END,
                       CASE WHEN r.rolcreaterole THEN 'createrole' END,
                       CASE WHEN r.rolcreatedb THEN 'createdb' END,
                       CASE WHEN r.rolreplication THEN 'replication' END,
                       CASE WHEN NOT r.rolcanlogin THEN 'cannot log in' END) AS power
                   FROM pg_roles r),
        acting AS (SELECT r.* FROM pg_roles r
                   WHERE has_database_privilege(r.oid, current_database(), 'CONNECT')
                     AND NOT r.rolsuper AND r.oid NOT IN (SELECT oid FROM owners))
        -- a login role's own powers, and its admin option on its group
        SELECT d.grp AS "group", l.rolname AS member, 'login role' AS kind,
               concat_ws(', ', nullif(p.power, ''),
                         CASE WHEN EXISTS (SELECT FROM pg_auth_members a
                                           JOIN pg_roles g ON g.oid = a.roleid
                                           WHERE a.member = l.oid AND g.rolname = d.grp
                                             AND a.admin_option) THEN 'admin of the group' END)
                   AS problem
        FROM design d JOIN pg_roles l ON l.rolname = d.login JOIN powers p ON p.oid = l.oid
        WHERE p.power <> '' OR EXISTS (SELECT FROM pg_auth_members a
                                       JOIN pg_roles g ON g.oid = a.roleid
                                       WHERE a.member = l.oid AND g.rolname = d.grp
                                         AND a.admin_option)
        UNION ALL
        -- what a login role can reach beyond its group
        SELECT d.grp, l.rolname, 'login role belongs to', 'member of ' || r.rolname
        FROM design d JOIN pg_roles l ON l.rolname = d.login
        JOIN pg_roles r ON r.oid <> l.oid AND r.rolname <> d.grp
                       AND pg_has_role(l.oid, r.oid, 'MEMBER')
        UNION ALL
        -- what a group can reach
        SELECT g.rolname, r.rolname, 'group belongs to', 'member of ' || r.rolname
        FROM pg_roles g JOIN pg_roles r ON r.oid <> g.oid AND pg_has_role(g.oid, r.oid, 'MEMBER')
        WHERE g.rolname = ANY (%(groups)s)
        UNION ALL
        -- who else, able to connect here, can act as a group or a login role
        SELECT t.rolname, m.rolname, 'member',
               'not this database''s ' || CASE WHEN t.rolname = ANY (%(groups)s)
                                              THEN 'login role for the group'
                                              ELSE 'own login role' END
        FROM design d
        JOIN pg_roles t ON t.rolname IN (d.grp, d.login)
        JOIN acting m ON m.oid <> t.oid AND m.rolname <> d.login
                     AND pg_has_role(m.oid, t.oid, 'MEMBER')
        UNION ALL
        SELECT NULL, r.rolname, 'bypassrls', 'may connect here and bypasses row-level security'
        FROM acting r WHERE r.rolbypassrls
        ORDER BY 1, 2""",
        {"groups": list(SUFFIXES.values()), "suffixes": list(SUFFIXES), "tables": list(TABLES)})
