"""A smoke test of a migrated database: tenant isolation holds under the application role.

Runs in one transaction that is rolled back, so the database is left exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from sqlalchemy import URL

from checker.access import IMPERSONATE
from taskhub.db import libpq_url
from taskhub.settings import APP_ROLE


@dataclass(frozen=True)
class SmokeResult:
    """What the smoke test saw; `ok` when every expectation held."""

    server_version: str
    revision: str | None
    own_tasks_seen: int
    foreign_tasks_seen: int
    unset_tenant_seen: int

    @property
    def ok(self) -> bool:
        """One own task visible, none of the other tenant's, none without a tenant."""
        return (self.own_tasks_seen, self.foreign_tasks_seen, self.unset_tenant_seen) == (1, 0, 0)


def run_smoke(url: URL) -> SmokeResult:
    """Create two tenants with one task each and count what tenant A sees as the app role."""
    with psycopg.connect(libpq_url(url)) as conn:
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        a, b = (conn.execute(
            "INSERT INTO users (email, password_hash) VALUES (%s, 'smoke') RETURNING id",
            (email,)).fetchone()[0] for email in ("smoke-a@example.com", "smoke-b@example.com"))  # type: ignore[index]
        for owner in (a, b):
            conn.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'smoke')", (owner,))
        conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
        seen_unset = _count(conn)
        conn.execute("SET LOCAL ROLE NONE")  # the owner computes tenant a's tag, as the app does
        conn.execute(IMPERSONATE, {"tenant": a})
        conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
        own = _count(conn, "WHERE user_id = %s", a)
        foreign = _count(conn, "WHERE user_id = %s", b)
        conn.rollback()
    return SmokeResult(version, str(row[0]) if row else None, own, foreign, seen_unset)


def _count(conn: psycopg.Connection[tuple[object, ...]], where: str = "", *args: object) -> int:
    row = conn.execute(f"SELECT count(*) FROM tasks {where}", args).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]
