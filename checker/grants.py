"""The grants matrix: every privilege a taskhub role (or PUBLIC) holds in a taskhub database.

Revision 0009 creates exactly this (its own frozen copy, as migrations must); the audit's
`schema.grants_match_matrix` and the README's table are this one. Objects: the five tables,
their identity sequences, the schemas, the taskhub functions and the database itself. A
column list means the privilege holds on those columns only (UPDATE of one column list).
"""

from __future__ import annotations

from taskhub.settings import APP_ROLE, WORKER_ROLE

PUBLIC = "PUBLIC"
GRANTEES = (APP_ROLE, WORKER_ROLE, PUBLIC)

_USER_COLUMNS = ("email", "password_hash", "must_change_password", "temp_password_expires_at",
                 "password_changed_at", "updated_at", "email_skeleton")
_TASK_STATUS_COLUMNS = ("status", "result", "error", "version", "updated_at")

MATRIX: dict[str, dict[str, tuple[str, ...]]] = {
    # object -> grantee -> privileges; "UPDATE(a, b)" = UPDATE on columns a and b only
    "table users": {APP_ROLE: ("SELECT", "INSERT", "DELETE",
                               f"UPDATE({', '.join(_USER_COLUMNS)})")},
    "table password_history": {APP_ROLE: ("SELECT", "INSERT", "DELETE",
                                          "UPDATE(password_hash)")},
    "table auth_sessions": {APP_ROLE: ("SELECT", "INSERT", "UPDATE(revoked_at)")},
    "table tasks": {
        APP_ROLE: ("SELECT", "INSERT", "DELETE",
                   f"UPDATE({', '.join(('title', 'payload', *_TASK_STATUS_COLUMNS))})"),
        WORKER_ROLE: ("SELECT", f"UPDATE({', '.join(_TASK_STATUS_COLUMNS)})"),
    },
    "table task_events": {APP_ROLE: ("SELECT", "INSERT"), WORKER_ROLE: ("SELECT", "INSERT")},
    "sequence password_history_id_seq": {},
    "sequence task_events_id_seq": {},
    "table alembic_version": {},
    "schema public": {APP_ROLE: ("USAGE",), WORKER_ROLE: ("USAGE",), PUBLIC: ("USAGE",)},
    "schema taskhub_private": {},
    "function taskhub_enter_tenant(uuid,bytea)": {APP_ROLE: ("EXECUTE",)},
    "function taskhub_tenant()": {APP_ROLE: ("EXECUTE",)},
    "function taskhub_login_lookup(text,bytea)": {APP_ROLE: ("EXECUTE",)},
    "function taskhub_end_unit()": {APP_ROLE: ("EXECUTE",), WORKER_ROLE: ("EXECUTE",)},
    "function taskhub_private.hmac(text)": {},
    "function taskhub_private.proof(text)": {},
    "function taskhub_private.tenant_tag(uuid)": {},
    "function taskhub_private.install_tenant_key(bytea)": {},
    "table taskhub_private.tenant_key": {},
    # CONNECT goes to each database's own login roles (checker.access), never to PUBLIC.
    "database": {},
}


def expected() -> set[tuple[str, str, str]]:
    """The matrix as (object, grantee, privilege) triples, column lists expanded."""
    triples = set()
    for obj, grants in MATRIX.items():
        for grantee, privileges in grants.items():
            for privilege in privileges:
                name, _, columns = privilege.partition("(")
                if not columns:
                    triples.add((obj, grantee, name))
                for column in columns.rstrip(")").split(", ") if columns else ():
                    triples.add((f"{obj}.{column}", grantee, name))
    return triples


# Every privilege any role other than an object's owner (or PUBLIC) holds on the objects
# above (and any other object in the two schemas), as (object, grantee, privilege), read from
# the catalogs' ACLs (defaults included: an object with no ACL holds its kind's default, e.g.
# EXECUTE to PUBLIC for functions). An owner's own privileges count only when it is one of
# the matrix's grantees (a runtime role that owns a table holds everything on it).
# `%(login_roles)s`: this database's own login roles, whose CONNECT is theirs by design
# (checker.access) and not reported.
ACTUAL = """
WITH grantee AS (
    SELECT oid, rolname AS name FROM pg_roles
    UNION ALL SELECT 0, 'PUBLIC'),
ours AS (SELECT oid, nspname FROM pg_namespace WHERE nspname IN ('public', 'taskhub_private')),
rel AS (
    SELECT c.oid, c.relowner AS owner,
           CASE c.relkind WHEN 'S' THEN 'sequence ' ELSE 'table ' END
                  || CASE n.nspname WHEN 'public' THEN '' ELSE n.nspname || '.' END
                  || c.relname AS object,
           coalesce(c.relacl, acldefault(
               CASE c.relkind WHEN 'S' THEN 's'::"char" ELSE 'r'::"char" END, c.relowner)) AS acl
    FROM pg_class c JOIN ours n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')),
fn AS (
    SELECT p.oid, p.proowner AS owner,
           'function ' || CASE n.nspname WHEN 'public' THEN '' ELSE n.nspname || '.' END
                  || p.proname || '(' || coalesce((SELECT string_agg(format_type(t, NULL), ','
                                                     ORDER BY i)
                                         FROM unnest(p.proargtypes) WITH ORDINALITY AS a (t, i)),
                                        '') || ')' AS object,
           coalesce(p.proacl, acldefault('f'::"char", p.proowner)) AS acl
    FROM pg_proc p JOIN ours n ON n.oid = p.pronamespace
    WHERE n.nspname = 'taskhub_private' OR p.proname LIKE 'taskhub\\_%%'),
objects AS (
    SELECT object, owner, acl FROM rel
    UNION ALL
    SELECT rel.object || '.' || a.attname, rel.owner, a.attacl
    FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attacl IS NOT NULL
    UNION ALL SELECT object, owner, acl FROM fn
    UNION ALL SELECT 'schema ' || n.nspname, s.nspowner,
                     coalesce(s.nspacl, acldefault('n'::"char", s.nspowner))
    FROM ours n JOIN pg_namespace s ON s.oid = n.oid
    UNION ALL SELECT 'database', d.datdba, coalesce(d.datacl, acldefault('d'::"char", d.datdba))
    FROM pg_database d WHERE d.datname = current_database())
SELECT o.object, g.name AS grantee, x.privilege_type AS privilege
FROM objects o, aclexplode(o.acl) x JOIN grantee g ON g.oid = x.grantee
WHERE (x.grantee <> o.owner OR g.name = ANY (%(grantees)s))
  AND NOT (o.object = 'database' AND x.privilege_type = 'CONNECT'
           AND g.name = ANY (%(login_roles)s))
"""
