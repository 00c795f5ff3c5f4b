"""`AuditContext`: what a check gets, one connection inside the audit's snapshot and helpers.

Every check runs in the same REPEATABLE READ, READ ONLY transaction (one snapshot for all of
them, and the auditor cannot write), inside a savepoint that is rolled back afterwards, so a
check's `SET LOCAL` (a role, a tenant) or error never leaks into the next one.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import psycopg
from psycopg.rows import dict_row

from checker.audit.options import AuditOptions
from checker.audit.result import Finding

T = TypeVar("T")
Connection = psycopg.Connection[Any]
Params = Mapping[str, Any] | Sequence[Any] | None


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class AuditContext:
    """The connection, the options, whether a history was loaded (into the connection's
    temporary tables, `checker.audit.history_tables`) and a per-audit memo."""

    def __init__(self, conn: Connection, options: AuditOptions, *,
                 has_history: bool = False) -> None:
        self.conn = conn
        self.options = options
        self.has_history = has_history
        self._memo: dict[str, object] = {}

    def rows(self, query: str, params: Params = None) -> list[dict[str, Any]]:
        """All rows of a query as dicts."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def execute(self, query: str, params: Params = None) -> None:
        """Run a statement that returns nothing of interest (SET LOCAL ...)."""
        self.conn.execute(query, params)

    def finding(self, query: str, params: Mapping[str, Any] | None = None, *,
                details: dict[str, Any] | None = None) -> Finding:
        """A finding from a query that selects one row per violation (named params only).

        The count covers every row; the samples are the first `options.samples` of them.
        """
        wrapped = (f"SELECT count(*) OVER () AS _violations, v.* FROM ({query}) AS v "
                   f"LIMIT %(_samples)s")
        found = self.rows(wrapped, {**(params or {}), "_samples": max(self.options.samples, 1)})
        total = int(found[0].pop("_violations")) if found else 0
        for row in found[1:]:
            row.pop("_violations")
        return Finding(total, [jsonable(row) for row in found[: self.options.samples]],
                       details or {})

    def tally(self, query: str, params: Mapping[str, Any] | None = None
              ) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """How many rows of `query` have each `verdict`, and the `sample`s of the first
        `options.samples` rows whose verdict is `bad`, in `ord` order.

        `query` yields one row per thing judged: `verdict` (text), `ord` (its place, any
        sortable value) and `sample` (jsonb, what a violation shows). Only the counts and a
        few samples leave the server, however many rows are judged.
        """
        rows = self.rows(f"""
            SELECT v.verdict, count(*) AS n,
                   jsonb_agg(v.sample ORDER BY v.ord) FILTER (WHERE v.rn <= %(_samples)s)
                       AS samples
            FROM (SELECT q.verdict, q.ord, q.sample,
                         row_number() OVER (PARTITION BY q.verdict ORDER BY q.ord) AS rn
                  FROM ({query}) AS q) AS v
            GROUP BY v.verdict""", {**(params or {}), "_samples": self.options.samples})
        counts = {str(row["verdict"]): int(row["n"]) for row in rows}
        bad = next((row["samples"] or [] for row in rows if row["verdict"] == "bad"), [])
        return counts, list(bad)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """Compute a value shared by several checks once per audit (errors are shared too)."""
        if key not in self._memo:
            try:
                self._memo[key] = compute()
            except Exception as exc:
                self._memo[key] = _Failed(exc)
        value = self._memo[key]
        if isinstance(value, _Failed):
            raise value.exc
        return cast(T, value)


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with UUIDs, timestamps and decimals turned into JSON-ready values."""
    return {key: _value(value) for key, value in row.items()}


def _value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _value(item) for key, item in value.items()}
    return value


def sample(items: Sequence[Mapping[str, Any]], options: AuditOptions) -> list[dict[str, Any]]:
    """The first `options.samples` items, JSON-ready."""
    return [jsonable(item) for item in items[: options.samples]]
