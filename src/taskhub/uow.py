"""The unit of work: the only way the services touch PostgreSQL.

One `UnitOfWork` is one transaction on one pooled connection, under a non-owner role:

- `tenant(principal)` / `account(user_id)`: `taskhub_app` with `app.user_id` set, so row-level
  security shows only that user's tasks and events (`tenant` also refuses restricted sessions);
- `anonymous()`: `taskhub_app` without a tenant (sees no task at all), for login and token
  checks that look a user up before anyone is known;
- `worker()`: `taskhub_worker`, which may read and move every tenant's tasks.

Both settings are transaction-local (`set_config(..., true)`, what `SET LOCAL` does), so
nothing leaks into the next user of the pooled connection, and both are set in every
transaction, so nothing a session-level SET left on that connection leaks into this one.
The transaction rolls back on exit unless `commit()` was called; after that the unit of
work refuses further statements, which would otherwise run in a fresh transaction as the
connecting (owner) role.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, RootTransaction, TextClause, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from taskhub.errors import PasswordChangeRequired, StorageError
from taskhub.principal import Principal
from taskhub.settings import APP_ROLE, WORKER_ROLE

_SET_CONTEXT = text("SELECT set_config('role', :role, true), set_config('app.user_id', :uid, true)")


@lru_cache(maxsize=256)
def _statement(sql: str) -> TextClause:
    """The parsed statement; the services send a few dozen distinct ones, over and over."""
    return text(sql)


class UnitOfWork:
    """A context manager owning one transaction under one role (and maybe one tenant)."""

    def __init__(self, engine: Engine, role: str, user_id: uuid.UUID | None = None) -> None:
        if role not in (APP_ROLE, WORKER_ROLE):
            raise ValueError(f"unknown role {role!r}")
        if role == WORKER_ROLE and user_id is not None:
            raise ValueError("workers are not tenant-scoped")
        self.engine, self.role, self.user_id = engine, role, user_id
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    @classmethod
    def tenant(cls, engine: Engine, principal: Principal) -> UnitOfWork:
        """Tenant-scoped work for a signed-in user; refuses a temporary-password session."""
        if principal.must_change_password:
            raise PasswordChangeRequired("change the temporary password first")
        return cls(engine, APP_ROLE, principal.user_id)

    @classmethod
    def account(cls, engine: Engine, user_id: uuid.UUID) -> UnitOfWork:
        """Work on one user's own account rows (password, sessions), restricted or not."""
        return cls(engine, APP_ROLE, user_id)

    @classmethod
    def anonymous(cls, engine: Engine) -> UnitOfWork:
        """The application role with no tenant: users and sessions, but no task is visible."""
        return cls(engine, APP_ROLE)

    @classmethod
    def worker(cls, engine: Engine) -> UnitOfWork:
        """The worker role: every tenant's tasks, status changes only."""
        return cls(engine, WORKER_ROLE)

    def __enter__(self) -> UnitOfWork:
        if self._conn is not None:
            raise RuntimeError("a UnitOfWork can be entered only once")
        try:
            self._conn = self.engine.connect()
            self._tx = self._conn.begin()
            # Both settings, every time (app.user_id is '' without a tenant), so whatever a
            # session-level SET may have left on the pooled connection never applies here.
            uid = "" if self.user_id is None else str(self.user_id)
            self._conn.execute(_SET_CONTEXT, {"role": self.role, "uid": uid})
        except SQLAlchemyError as exc:
            self._close()
            raise _storage_error(exc) from None
        return self

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> CursorResult[Any]:
        """Run one SQL statement (named `:params`) inside this unit of work's transaction."""
        if self._tx is None or not self._tx.is_active:
            raise RuntimeError("the unit of work is not open (not entered, or already ended)")
        assert self._conn is not None
        return self._conn.execute(_statement(sql), dict(params or {}))

    def commit(self) -> None:
        """Commit the transaction; the unit of work is finished afterwards."""
        if self._tx is None or not self._tx.is_active:
            raise RuntimeError("nothing to commit")
        try:
            self._tx.commit()
        except SQLAlchemyError as exc:
            self._discard()
            raise _storage_error(exc, during_commit=True) from None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._close()
        if isinstance(exc, SQLAlchemyError):
            raise _storage_error(exc) from None

    def _close(self) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        except SQLAlchemyError:
            self._discard()
        finally:
            if self._conn is not None:
                self._conn.close()
            self._tx = None


    def _discard(self) -> None:
        """Close the connection instead of returning it to the pool.

        After a failed COMMIT or ROLLBACK the server may still hold the transaction open (a
        COMMIT cancelled by `statement_timeout` before it ran leaves it aborted), while
        SQLAlchemy counts it as ended and skips the pool's reset: the next unit of work on
        that connection would run inside it. Closing the session rolls it back.
        """
        if self._conn is not None:
            self._conn.invalidate()


def _storage_error(exc: SQLAlchemyError, *, during_commit: bool = False) -> StorageError:
    """The server's primary message only, and no chained driver exception.

    PostgreSQL's DETAIL and CONTEXT can quote the row or the value that failed (a check
    violation on `users` lists the password hash), and SQLAlchemy's own message carries the
    statement; a traceback or a log line of the StorageError shows neither.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    primary = getattr(getattr(orig, "diag", None), "message_primary", None)
    fallback = str(orig if orig is not None else exc).strip().splitlines() or [type(exc).__name__]
    message = primary if isinstance(primary, str) and primary else fallback[0]
    return StorageError(message, sqlstate=sqlstate_of(exc), during_commit=during_commit)


def sqlstate_of(exc: SQLAlchemyError) -> str | None:
    """The SQLSTATE of a driver error, for services that map specific codes."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None
