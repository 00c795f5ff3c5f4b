"""`run_audit`: every selected check against one snapshot of a database, one result each."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import psycopg
from sqlalchemy import URL

from checker.audit import history_tables, preconditions, registry
from checker.audit.check import Check
from checker.audit.context import AuditContext
from checker.audit.options import AuditOptions
from checker.audit.result import AuditResult, CheckResult
from checker.errors import InfrastructureError, UsageError, first_line
from checker.history import HistoryRecord, iter_history
from taskhub.db import libpq_url


def run_audit(url: str | URL, history: Iterable[HistoryRecord] | str | Path | None = None,
              only: str | Iterable[str] | None = None, *,
              options: AuditOptions | None = None) -> AuditResult:
    """Run the checks (all, or the families/names in `only`) and return every verdict.

    `history` is records or a JSONL file, streamed into temporary tables on the audit's
    connection (`history_tables`: the checker holds one record at a time); without one the
    checks that need it are skipped. A check that raises becomes status 'error' and the
    others still run. Raises UsageError for an unknown `only` or a bad history file,
    InfrastructureError when the database cannot be reached, the role may not create the
    history's temporary tables, or the connection cannot see every row (`PartialView`), and
    `NotAtHead` for a database that is not a taskhub database at the head revision.
    """
    options = options or AuditOptions()
    records = iter_history(history) if isinstance(history, str | Path) else history
    checks = registry.select(only, with_history=records is not None)
    try:
        conninfo = libpq_url(url)
    except ValueError as exc:
        raise UsageError(f"bad database URL: {exc}") from None
    began = time.perf_counter()
    try:
        conn = psycopg.connect(conninfo, connect_timeout=10, application_name="checker-audit")
    except psycopg.OperationalError as exc:
        raise InfrastructureError(f"cannot connect to the database: {first_line(exc)}") \
            from None
    with conn:
        # Before anything resolves a name (a statement, not a function: the database's own
        # default path could lead a call to a look-alike). See below.
        conn.execute(f"SET search_path = {HISTORY_PATH}")
        conn.commit()
        if records is not None:  # before the snapshot: a read-only transaction cannot CREATE
            history_tables.load(conn, records)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        # A check waits at most lock_timeout behind DDL (then errors), never for ever.
        # Names resolve in the catalogs and taskhub's schema only: a schema named after the
        # auditing role ("$user", first in the default path) holding look-alike tables, or a
        # function shadowing taskhub's, would otherwise be what the audit reads.
        conn.execute(f"SELECT set_config('search_path', '{AUDIT_PATH}', true), "
                     "set_config('work_mem', %s, true), set_config('jit', 'off', true), "
                     "set_config('lock_timeout', %s, true)",
                     (options.work_mem, f"{int(options.lock_timeout * 1000)}ms"))
        preconditions.require_full_view(conn)
        preconditions.require_head(conn)
        history_failed = None
        if records is not None and any(check.needs_history for check in checks):
            history_failed = _prepare(conn, options)
        ctx = AuditContext(conn, options, has_history=records is not None)
        results = tuple(_run_one(ctx, check, history_failed) for check in checks)
        conn.rollback()
    return AuditResult(results, time.perf_counter() - began)


AUDIT_PATH = "pg_catalog, public, pg_temp"
"""The search path of the database's own checks (taskhub's schema is `public`)."""
HISTORY_PATH = "pg_catalog, pg_temp"
"""The search path of everything that reads the history's tables: the catalogs and the
audit's own temporary tables only. An exact-signature function in `public` (say
`public.unnest(uuid[])`) would win over pg_catalog's polymorphic one even behind it in the
path, and could hide violations or empty the history's tables; taskhub's tables are named
`public.` there instead."""


def _prepare(conn: psycopg.Connection[tuple[object, ...]], options: AuditOptions) -> str | None:
    """`history_tables.prepare` in a savepoint, on the history's search path; the error (one
    line) that the checks reading the history then report, if it failed (a lock timeout,
    temporary space), while the database's own checks still run."""
    conn.execute("SAVEPOINT audit_prepare")
    try:
        conn.execute(f"SET LOCAL search_path = {HISTORY_PATH}")
        history_tables.prepare(conn, options.clock_skew)
        conn.execute(f"SET LOCAL search_path = {AUDIT_PATH}")
    except psycopg.Error as exc:
        conn.execute("ROLLBACK TO SAVEPOINT audit_prepare")
        return f"the history's tables could not be prepared: {first_line(exc)}"
    conn.execute("RELEASE SAVEPOINT audit_prepare")
    return None


def _run_one(ctx: AuditContext, check: Check, history_failed: str | None = None
             ) -> CheckResult:
    """One check inside a savepoint that is always rolled back (its SET LOCALs included);
    a check of the history runs on `HISTORY_PATH`."""
    began = time.perf_counter()
    if check.needs_history and history_failed is not None:
        return CheckResult(check.name, "error", 0, [], check.statement, 0.0,
                           error=history_failed)
    ctx.conn.execute("SAVEPOINT audit_check")
    try:
        if check.needs_history:
            ctx.conn.execute(f"SET LOCAL search_path = {HISTORY_PATH}")
        finding = check.run(ctx)
    except Exception as exc:
        ctx.conn.execute("ROLLBACK TO SAVEPOINT audit_check")
        return CheckResult(check.name, "error", 0, [], check.statement,
                           time.perf_counter() - began,
                           error=f"{type(exc).__name__}: {first_line(exc)}")
    ctx.conn.execute("ROLLBACK TO SAVEPOINT audit_check")
    return CheckResult(check.name, "fail" if finding.violations else "pass", finding.violations,
                       finding.samples, check.statement, time.perf_counter() - began,
                       finding.details)
