"""The history as temporary tables on the audit's connection: streamed (the checker holds one
record at a time), out of reach of look-alike tables, and refused in one line where the role
may not create temporary tables."""

from __future__ import annotations

import secrets
import time
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql
from sqlalchemy import URL

from checker.audit.synthetic import task_id, task_owner
from checker.errors import InfrastructureError, UsageError
from checker.history import HistoryRecord, write_history
from tests.checker.audit_support import (
    SMALL,
    assert_fails_only,
    audit,
    full_history,
    owner,
    seed,
)

pytestmark = pytest.mark.checker_no_audit  # the tests here damage their database on purpose

CREATES = "ledger.acknowledged_creates_persist"
TRANSITIONS = "ledger.acknowledged_transitions_persist"


def test_the_audit_holds_one_record_at_a_time(db_url: URL) -> None:
    """However long the history, no record the audit has read stays alive: each is gone by
    the time the next is asked for (CPython frees what nothing references at once)."""
    seed(db_url)
    alive = peak = 0

    def gone(_ref: object) -> None:
        nonlocal alive
        alive -= 1

    refs = []

    def stream() -> Iterator[HistoryRecord]:
        nonlocal alive, peak
        tenant, at = str(task_owner(1, SMALL)), time.time() - 3600
        for n in range(3000):
            record = HistoryRecord("client-1", tenant, "task.read",
                                   {"task_id": str(task_id(1 + n % SMALL.tasks))}, at, at,
                                   "ok", {"task_ids": [str(uuid.uuid4())]})
            refs.append(weakref.ref(record, gone))
            alive += 1
            peak = max(peak, alive)
            yield record

    result = audit(db_url, stream(), only="ledger,isolation")
    assert len(refs) == 3000 and alive == 0
    assert peak <= 2, f"{peak} records were alive at once"
    assert result.get("isolation.observed_rows_owned").details["records"] == 3000


def test_a_look_alike_table_in_public_is_not_what_the_audit_reads(db_url: URL) -> None:
    """The audit's tables are always named `pg_temp.`: a table of the same name in `public`
    (first in the audit's search path) claiming a lost task was deleted explains neither
    its creation nor its transitions."""
    seed(db_url)
    lost = str(task_id(7))
    with owner(db_url) as conn:
        conn.execute("DELETE FROM task_events WHERE task_id = %s", (lost,))
        conn.execute("DELETE FROM tasks WHERE id = %s", (lost,))
        conn.execute("CREATE TABLE public.audit_deleted_tasks AS SELECT %s::uuid AS id",
                      (lost,))
        conn.execute("CREATE TABLE public.audit_records (seq bigint)")
    result = audit(db_url, full_history())
    assert_fails_only(result, CREATES, TRANSITIONS)
    assert result.get(CREATES).samples[0]["task_id"] == lost


def test_a_role_that_may_not_create_temporary_tables_is_told_so(db_url: URL) -> None:
    role, password = f"checker_no_temp_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    database = sql.Identifier(str(db_url.database))
    with owner(db_url) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            database, sql.Identifier(role)))
    try:
        with pytest.raises(InfrastructureError) as caught:
            audit(db_url.set(username=role, password=password), full_history())
        message = str(caught.value)
        assert "TEMPORARY" in message and "\n" not in message
    finally:
        with owner(db_url) as conn:
            conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                database, sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_malformed_line_mid_stream_stops_the_audit_and_the_next_starts_clean(
        db_url: URL, tmp_path: Path) -> None:
    """A bad record after good ones stops the audit with the line named; the tables went
    with the connection, so the next audit on the same database passes."""
    seed(db_url)
    path = tmp_path / "history.jsonl"
    write_history(path, full_history())
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:5], '{"op": 1}', *lines[5:]]) + "\n")
    with pytest.raises(UsageError, match=r"history.jsonl:6: malformed history record"):
        audit(db_url, path)
    write_history(path, full_history())
    assert audit(db_url, path).ok


def test_a_look_alike_function_in_public_changes_no_verdict(db_url: URL) -> None:
    """An exact-signature `public.unnest(uuid[])` would win over pg_catalog's polymorphic
    one even behind it in the search path; the history's checks run without `public` in
    theirs. Here it would hide the other tenant's row a client saw."""
    seed(db_url)
    tenant, other = str(task_owner(1, SMALL)), str(task_owner(2, SMALL))
    with owner(db_url) as conn:
        conn.execute("CREATE FUNCTION public.unnest(uuid[]) RETURNS SETOF uuid "
                     "LANGUAGE sql AS 'SELECT NULL::uuid WHERE false'")
    at = time.time() - 3600
    leak = HistoryRecord("client-1", tenant, "task.list", {}, at, at, "ok",
                         {"task_ids": [], "owner_ids": [other]})
    result = audit(db_url, [*full_history(), leak])
    assert_fails_only(result, "isolation.observed_rows_owned")
    assert result.get("isolation.observed_rows_owned").samples[0]["owner"] == other


def test_a_record_the_database_cannot_hold_is_named(db_url: URL) -> None:
    """A NUL in a text field is valid JSON but no PostgreSQL text: the audit says which
    record, in one line, instead of failing somewhere in its COPY."""
    seed(db_url)
    at = time.time() - 3600
    bad = HistoryRecord("client-1", None, "task.claim", {"n": 1}, at, at, "fail", {},
                        "boom\x00")
    with pytest.raises(UsageError) as caught:
        audit(db_url, [*full_history(), bad])
    assert "cannot be audited" in str(caught.value) and "task.claim" in str(caught.value)
