"""Failure injection for atomicity tests, from outside the services (no test hooks in taskhub).

- `after_write(db, n, action)`: SQLAlchemy's `after_cursor_execute` event runs `action`
  right after the n-th write statement a service sends on `db` (both pools of a Database, or
  one engine); `raise_driver_error` and
  `terminate_backend(...)` are the two actions (a driver error; the server ending the session).
- `Rejection`: a temporary CHECK constraint or trigger that makes one later statement fail
  with a constraint violation.
- `snapshot(engine)`: every row of every taskhub table, to compare before and after.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Engine, event, text

from taskhub.db import Database
from tests.integration.helpers import engines_of

TABLES = ("users", "password_history", "auth_sessions", "tasks", "task_events")
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b|^\s*WITH\b.*\b(INSERT|UPDATE|DELETE)\b",
                    re.IGNORECASE | re.DOTALL)

Action = Callable[[Any], None]
"""Called with the DB-API (psycopg) cursor of the statement that just ran."""


def is_write(statement: str) -> bool:
    """Whether a statement writes rows (INSERT/UPDATE/DELETE, also inside a WITH)."""
    return bool(_WRITE.match(statement))


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every taskhub table (read as the owner, a superuser: no RLS)."""
    with engine.connect() as conn:
        return {table: [tuple(row) for row in conn.execute(
                    text(f"SELECT * FROM {table} ORDER BY id"))]
                for table in TABLES}


@contextmanager
def after_write(target: Database | Engine, n: int | None = None,
                action: Action | None = None) -> Iterator[list[str]]:
    """Run `action` once, right after the n-th write statement on `target` has executed
    (counted over both pools of a Database).

    Yields the list of write statements that completed (without n: just counts them).
    """
    writes: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                 executemany: bool) -> None:
        if is_write(statement):
            writes.append(statement)
            if action is not None and len(writes) == n:
                action(cursor)

    engines = engines_of(target)
    for engine in engines:
        event.listen(engine, "after_cursor_execute", listener)
    try:
        yield writes
    finally:
        for engine in engines:
            event.remove(engine, "after_cursor_execute", listener)


def raise_driver_error(cursor: Any) -> None:
    """Fail as the driver does when the connection breaks: a psycopg OperationalError."""
    raise psycopg.OperationalError("injected fault: the connection failed after a write")


def terminate_backend(admin_url: str) -> Action:
    """Have another connection end this statement's session (`pg_terminate_backend`) and wait
    until its backend is gone; the service's next statement or COMMIT meets a dead session."""
    def kill(cursor: Any) -> None:
        pid = cursor.connection.info.backend_pid
        with psycopg.connect(admin_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
            deadline = time.monotonic() + 10
            while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                (pid,)).fetchone():  # (its own timeout polls every 100 ms)
                assert time.monotonic() < deadline, f"backend {pid} outlived its termination"
                time.sleep(0.001)
    return kill


@dataclass(frozen=True)
class Rejection:
    """DDL that makes a table refuse a kind of write, its undo, and the SQLSTATE it raises."""

    install: tuple[str, ...]
    remove: tuple[str, ...]
    sqlstate: str

    @classmethod
    def check(cls, table: str, condition: str = "false") -> Rejection:
        """A CHECK constraint NOT VALID: existing rows stay, every new row version must pass."""
        return cls((f"ALTER TABLE {table} ADD CONSTRAINT injected_fault CHECK ({condition}) "
                    "NOT VALID",),
                   (f"ALTER TABLE {table} DROP CONSTRAINT injected_fault",), "23514")

    @classmethod
    def deletes(cls, table: str) -> Rejection:
        """A trigger refusing every row delete (also deletes cascaded from a parent)."""
        return cls(("CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION 'injected fault: this delete is refused' "
                    "USING ERRCODE = 'restrict_violation'; END $$",
                    f"CREATE TRIGGER injected_fault BEFORE DELETE ON {table} FOR EACH ROW "
                    "EXECUTE FUNCTION injected_fault()"),
                   (f"DROP TRIGGER injected_fault ON {table}", "DROP FUNCTION injected_fault()"),
                   "23001")

    @contextmanager
    def active(self, engine: Engine) -> Iterator[None]:
        """Installed for the duration of the block, as the owner."""
        with engine.begin() as conn:
            for ddl in self.install:
                conn.exec_driver_sql(ddl)
        try:
            yield
        finally:
            with engine.begin() as conn:
                for ddl in self.remove:
                    conn.exec_driver_sql(ddl)
