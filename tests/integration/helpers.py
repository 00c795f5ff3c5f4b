"""Helpers shared by the integration tests (plain functions; the fixtures are in conftest)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from checker.audit import run_audit
from taskhub.db import Database
from taskhub.principal import Principal
from taskhub.settings import APP_ROLE
from taskhub.users import UserRecord


def password(n: int) -> str:
    """The n-th strong test password (zxcvbn score 4)."""
    return f"violet-harbor-{n}-quietly-tangerine"


@dataclass(frozen=True)
class Account:
    """A registered user, their password, and the token and principal of a fresh login."""

    user: UserRecord
    password: str
    token: str
    principal: Principal


@contextmanager
def as_owner(engine: Engine) -> Iterator[Connection]:
    """A committed transaction as the connecting (owner) role: what tests use to look behind
    the services' back or to arrange state the services would refuse to create."""
    with engine.begin() as conn:
        yield conn


def become_app(conn: Connection, user_id: object | None) -> None:
    """Inside an open transaction of an owner connection: enter tenant `user_id` (if given)
    and take the application role for the rest of the transaction.

    The tenant is entered the way the services enter it, `taskhub_enter_tenant` with a valid
    tag, the tag made by the owner's `taskhub_private.tenant_tag` (the test holds no key);
    so this comes first: `taskhub_app` may not call into `taskhub_private`.
    """
    if user_id is not None:
        conn.execute(text("SELECT public.taskhub_enter_tenant(CAST(:uid AS uuid), "
                          "taskhub_private.tenant_tag(CAST(:uid AS uuid)))"),
                     {"uid": str(user_id)})
    conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")


@contextmanager
def as_app(engine: Engine, user_id: object | None) -> Iterator[Connection]:
    """Raw SQL as the application role, in tenant `user_id` if given (rolled back at the
    end); `engine` is the owner's."""
    with engine.connect() as conn:  # closing rolls the transaction back
        conn.begin()
        become_app(conn, user_id)
        yield conn


def engines_of(target: Database | Engine) -> tuple[Engine, ...]:
    """The engines a service call on `target` may use (both pools of a Database), for event
    hooks that watch or break what the services send."""
    return (target.app, target.worker) if isinstance(target, Database) else (target,)


def count(engine: Engine, sql: str, **params: object) -> int:
    """`SELECT count(*) ...` (or any one-integer query) as the owner, behind the services."""
    with as_owner(engine) as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def lifecycle_violations(engine: Engine) -> list[str]:
    """The audit's own transitions checks on this database (legal paths, status = the last
    event's, version = the event count, terminal fields, nothing after a terminal state): a
    line per check that did not pass, none when the lifecycle is sound."""
    result = run_audit(engine.url, only="transitions")
    return [f"{check.name}: {check.status}, {check.violations} violations, e.g. "
            f"{check.samples[:1] or check.error}" for check in result.failed]


def wait_for_lock_waiters(engine: Engine, n: int, timeout: float = 10.0) -> None:
    """Return once `n` sessions of this database wait on a lock (AssertionError otherwise)."""
    deadline = time.monotonic() + timeout
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock'")
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(query).scalar_one() >= n:
                return
        time.sleep(0.01)
    raise AssertionError(f"{n} sessions never queued on a lock")


_COMMIT = re.compile(r"(?:^|;)\s*COMMIT\b", re.IGNORECASE)


def is_commit(statement: str) -> bool:
    """Whether `statement` is (or, as the unit of work sends it, holds) the COMMIT."""
    return bool(_COMMIT.search(statement))
