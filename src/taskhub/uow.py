"""The unit of work: the only way the services touch PostgreSQL.

One `UnitOfWork` is one transaction on one pooled connection of a runtime login role (never
the owner's), so no statement on it can reach more than that role may:

- `tenant(principal)` / `account(user_id)`: the tenant pool (`taskhub_app`), with the tenant
  entered through `taskhub_enter_tenant(user_id, tag)` and a tag only the key's holder can
  compute (`taskhub.tenancy`); row-level security then shows that user's rows and no other
  (`tenant` also refuses restricted sessions);
- `anonymous()`: the tenant pool with no tenant (sees no row of any table), for the one thing
  done before anyone is known: looking up a login by email (`taskhub_login_lookup`);
- `worker()`: the worker pool (`taskhub_worker`), which may read and move every tenant's tasks.

The runtime pools autocommit at the driver: the unit of work sends its own BEGIN, in one
message with the pins, transaction-local, of the settings whose session value could change what
it reads or whether its COMMIT lasts (`search_path` with `pg_temp` last, `row_security`,
`synchronous_commit`); the proof of the tenant is bound to this backend and this transaction,
so nothing a session-level SET left behind means anything. The COMMIT or ROLLBACK that ends it
travels with a reset of the session (`RESET ALL`, the role, cursors, listeners, advisory locks,
sequences' state) in the same round trip, and a guard that fails the unit of work, and discards
its connection, if it left a statement prepared from SQL: nothing one unit of work left on the
connection is there for the next, while the driver's own prepared statements stay (they save
the planning of every statement). After it, the unit of work refuses further statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any

from psycopg import ConnectionInfo
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, CursorResult, RootTransaction, Row, TextClause, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from taskhub.db import Database
from taskhub.errors import PasswordChangeRequired, StorageError
from taskhub.principal import Principal
from taskhub.settings import APP_ROLE, WORKER_ROLE
from taskhub.tenancy import login_tag, tenant_tag

# What a session-level SET, or a role default the role gave itself (`ALTER ROLE CURRENT_USER
# SET ...`, which PostgreSQL lets any role do), could otherwise change: where names resolve,
# whether row-level security applies, and whether an acknowledged COMMIT is durable.
_PINNED = ("pg_catalog.set_config('search_path', 'public, pg_temp', true), "
           "pg_catalog.set_config('row_security', 'on', true), "
           "pg_catalog.set_config('synchronous_commit', 'on', true)")
# The runtime pools are in autocommit mode: the unit of work opens its transaction itself, in
# the same simple-protocol message as the pinned settings (no secret in it), one round trip.
_BEGIN = f"BEGIN; SELECT {_PINNED}"
_ENTER_TENANT = text("SELECT public.taskhub_enter_tenant(:uid, :tag)")  # a bound tag, never
# in the statement's text (pg_stat_activity shows that text to the role's other sessions)
_LOGIN_LOOKUP = text("SELECT id, password_hash FROM public.taskhub_login_lookup(:email, :tag)")
# Ending a unit of work: `taskhub_end_unit()` (revision 0009) fails it if it left a statement
# prepared from SQL (the substitution attack: a PREPARE under the driver's name would run in
# the next unit of work as its tenant), before the COMMIT, so none of its writes are kept; then
# it resets the session as DISCARD ALL would, but for the driver's own prepared statements. One
# call in the same message as the COMMIT (or after the ROLLBACK): no extra round trip.
_COMMIT_AND_RESET = "SELECT public.taskhub_end_unit(); COMMIT"
_ROLLBACK_AND_RESET = "ROLLBACK; SELECT public.taskhub_end_unit()"
INVALID_STATEMENT_NAME = "26000"
"""A prepared statement the driver relies on is gone (deallocated from SQL)."""


@lru_cache(maxsize=256)
def _statement(sql: str) -> TextClause:
    """The parsed statement; the services send a few dozen distinct ones, over and over."""
    return text(sql)


class UnitOfWork:
    """A context manager owning one transaction under one role (and maybe one tenant)."""

    def __init__(self, db: Database, role: str, user_id: uuid.UUID | None = None) -> None:
        if role not in (APP_ROLE, WORKER_ROLE):
            raise ValueError(f"unknown role {role!r}")
        if role == WORKER_ROLE and user_id is not None:
            raise ValueError("workers are not tenant-scoped")
        self.db, self.role, self.user_id = db, role, user_id
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None
        self._entered = False

    @classmethod
    def tenant(cls, db: Database, principal: Principal) -> UnitOfWork:
        """Tenant-scoped work for a signed-in user; refuses a temporary-password session."""
        if principal.must_change_password:
            raise PasswordChangeRequired("change the temporary password first")
        return cls(db, APP_ROLE, principal.user_id)

    @classmethod
    def account(cls, db: Database, user_id: uuid.UUID) -> UnitOfWork:
        """Work on one user's own account rows (password, sessions), restricted or not."""
        return cls(db, APP_ROLE, user_id)

    @classmethod
    def anonymous(cls, db: Database) -> UnitOfWork:
        """The tenant pool with no tenant: no row of any table is visible (login lookups only)."""
        return cls(db, APP_ROLE)

    @classmethod
    def worker(cls, db: Database) -> UnitOfWork:
        """The worker pool: every tenant's tasks, status changes only."""
        return cls(db, WORKER_ROLE)

    def __enter__(self) -> UnitOfWork:
        if self._entered:
            raise RuntimeError("a UnitOfWork can be entered only once")
        self._entered = True
        engine = self.db.worker if self.role == WORKER_ROLE else self.db.app
        try:
            self._conn = engine.connect()
            self._tx = self._conn.begin()  # SQLAlchemy's marker only: the pools autocommit
            self._conn.exec_driver_sql(_BEGIN)
            if self.user_id is not None:
                tag = tenant_tag(self.db.tenant_key, self.user_id, _driver(self._conn).backend_pid)
                self._conn.execute(_ENTER_TENANT, {"uid": self.user_id, "tag": tag})
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

    def lookup_login(self, email: str) -> Row[Any] | None:
        """The id and hash of the user with this normalised email (the one way to a user
        before a tenant is known), or None."""
        if self._tx is None or not self._tx.is_active:
            raise RuntimeError("the unit of work is not open (not entered, or already ended)")
        tag = login_tag(self.db.tenant_key, email, _driver(self._conn).backend_pid)
        assert self._conn is not None
        return self._conn.execute(_LOGIN_LOOKUP, {"email": email, "tag": tag}).one_or_none()

    def commit(self) -> None:
        """Commit the transaction; the unit of work is finished afterwards."""
        if self._tx is None or not self._tx.is_active:
            raise RuntimeError("nothing to commit")
        if _driver(self._conn).transaction_status == TransactionStatus.INERROR:
            # A COMMIT would roll back without an error: refuse to report it as committed.
            self._close()
            raise StorageError("the transaction had failed; nothing was committed")
        try:
            self._end(_COMMIT_AND_RESET)
        except SQLAlchemyError as exc:
            self._discard()
            raise _storage_error(exc, during_commit=True) from None
        finally:
            self._close()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(exc, SQLAlchemyError) and sqlstate_of(exc) == INVALID_STATEMENT_NAME:
            self._discard()  # every later use of that statement on this connection would fail
        self._close()
        if isinstance(exc, SQLAlchemyError):
            raise _storage_error(exc) from None

    def _end(self, statement: str) -> None:
        """End the transaction and reset the session in one round trip; SQLAlchemy's own
        transaction then ends without a statement (psycopg sends nothing when idle)."""
        assert self._conn is not None and self._tx is not None
        self._conn.exec_driver_sql(statement)
        self._tx.rollback()

    def _close(self) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                self._end(_ROLLBACK_AND_RESET)
        except SQLAlchemyError:
            self._discard()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
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


def _driver(conn: Connection | None) -> ConnectionInfo:
    """psycopg's view of the connection (backend pid, transaction status): no round trip."""
    assert conn is not None
    dbapi: Any = conn.connection.dbapi_connection
    info: ConnectionInfo = dbapi.info
    return info


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
