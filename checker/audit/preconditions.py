"""What must hold before any check's verdict means anything: the database is a taskhub database
at the revision the checks are written for, and the audit's connection sees every row.

A check that counts violations over rows it cannot see passes for the wrong reason (a role
under row-level security sees no orphan, no illegal path, no foreign tenant); a database
without taskhub's schema gives a page of errors and, worse, a few passes. Both are refused
before the first check, in one line.
"""

from __future__ import annotations

from typing import Any

import psycopg

from checker import migrate
from checker.audit.schema import TABLES
from checker.errors import CheckerError, InfrastructureError


class NotAtHead(CheckerError):
    """Not a taskhub database, or not at the revision the audit checks (exit 1)."""


class PartialView(InfrastructureError):
    """The audit's connection cannot see every row of every taskhub table (exit 3)."""


def require_head(conn: psycopg.Connection[Any]) -> str:
    """The database's revision, when it is the repository's head; NotAtHead otherwise."""
    expected = migrate.head()
    row = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    if not (row and row[0]):
        raise NotAtHead(f"not a taskhub database: no alembic_version table (found revision: "
                        f"none; the audit checks revision {expected})")
    try:
        with conn.transaction():
            found = [str(r[0]) for r in conn.execute("SELECT version_num FROM alembic_version")]
    except psycopg.errors.InsufficientPrivilege:
        raise PartialView("the audit's connection cannot read alembic_version: connect as the "
                          "database owner or a superuser") from None
    if found != [expected]:
        shown = ", ".join(found) or "none"
        raise NotAtHead(f"the database is at revision {shown}, the audit checks revision "
                        f"{expected}: migrate it first (checker db upgrade --dsn ...)")
    return expected


_VIEW = """
SELECT t.name AS "table",
       r.rolsuper OR r.rolbypassrls
       OR NOT c.relrowsecurity
       OR (pg_has_role(current_user, c.relowner, 'USAGE') AND NOT c.relforcerowsecurity)
       OR (EXISTS (SELECT FROM pg_policy p
                   WHERE p.polrelid = c.oid AND p.polpermissive AND p.polcmd IN ('r', '*')
                     AND pg_get_expr(p.polqual, p.polrelid) = 'true'
                     AND (0 = ANY (p.polroles) OR EXISTS (
                          SELECT FROM unnest(p.polroles) AS g (oid)
                          WHERE pg_has_role(current_user, g.oid, 'USAGE'))))
           AND NOT EXISTS (SELECT FROM pg_policy p
                           WHERE p.polrelid = c.oid AND NOT p.polpermissive
                             AND p.polcmd IN ('r', '*')
                             AND (0 = ANY (p.polroles) OR EXISTS (
                                  SELECT FROM unnest(p.polroles) AS g (oid)
                                  WHERE pg_has_role(current_user, g.oid, 'USAGE'))))) AS sees_all
FROM unnest(%(tables)s::text[]) AS t (name)
JOIN pg_class c ON c.oid = to_regclass(t.name)
JOIN pg_roles r ON r.rolname = current_user
"""


def require_full_view(conn: psycopg.Connection[Any]) -> None:
    """PartialView unless the connection's role sees every row of every taskhub table: a
    superuser, a BYPASSRLS role, an owner of a table whose row-level security is not forced,
    or a role with an unconditional policy (and no restrictive one) on it. (With
    `row_security` off, a role subject to it gets errors, not fewer rows.)"""
    row = conn.execute("SELECT current_user").fetchone()
    role = str(row[0]) if row else "?"
    hidden = [str(r[0]) for r in conn.execute(_VIEW, {"tables": list(TABLES)}) if not r[1]]
    if hidden:
        raise PartialView(
            f"the audit's connection (role {role}) cannot see every row: row-level security "
            f"hides rows of {', '.join(hidden)}; connect as the database owner or a superuser")
