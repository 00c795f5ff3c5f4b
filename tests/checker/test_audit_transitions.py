"""transitions.*: raw writes that skip states, rewrite events or forget the version."""

from __future__ import annotations

import pytest
from sqlalchemy import URL

from checker.audit.synthetic import final_status, task_id
from tests.checker.audit_support import assert_fails_only, audit, owner, sampled, seed

pytestmark = pytest.mark.checker_no_audit  # every test here damages its database on purpose

PENDING, PROCESSING, COMPLETED, FAILED = 10, 1, 3, 8  # task numbers by final status
# Since revision 0008 the schema refuses a single illegal step; the audit must still find one
# (written before, or where the constraint was dropped), so the tests writing one drop it.
ALLOW_ILLEGAL_STEPS = "ALTER TABLE task_events DROP CONSTRAINT ck_task_events_legal_step"


def test_statuses_of_the_sample_tasks() -> None:
    assert [final_status(i) for i in (PENDING, PROCESSING, COMPLETED, FAILED)] == [
        "pending", "processing", "completed", "failed"]


def test_skipped_state(db_url: URL) -> None:
    """pending -> completed directly, with a matching event and version: only the path is
    wrong."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute(ALLOW_ILLEGAL_STEPS)
        conn.execute("UPDATE tasks SET status = 'completed', result = '1', version = 2 "
                     "WHERE id = %s", (task_id(PENDING),))
        conn.execute("INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
                     "SELECT id, user_id, 'pending', 'completed', 'raw' FROM tasks WHERE id = %s",
                     (task_id(PENDING),))
    result = audit(db_url)
    assert_fails_only(result, "transitions.legal_path")
    [row] = result.get("transitions.legal_path").samples
    assert row["task_id"] == str(task_id(PENDING))
    assert (row["event_no"], row["from_status"], row["to_status"]) == (2, "pending", "completed")
    assert row["problem"] == "not a legal transition"


def test_missing_creation_event(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM task_events WHERE task_id = %s AND from_status IS NULL",
                     (task_id(PROCESSING),))
        conn.execute("UPDATE tasks SET version = 1 WHERE id = %s", (task_id(PROCESSING),))
    result = audit(db_url)
    assert_fails_only(result, "transitions.legal_path")
    assert sampled(result, "transitions.legal_path", "problem") == [
        "does not start with its creation (NULL -> pending)"]


def test_broken_chain(db_url: URL) -> None:
    """The claim event rewritten as a second creation: from_status no longer follows on."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute(ALLOW_ILLEGAL_STEPS)
        conn.execute("UPDATE task_events SET from_status = 'processing' WHERE task_id = %s "
                     "AND from_status = 'pending'", (task_id(PROCESSING),))
    result = audit(db_url)
    assert_fails_only(result, "transitions.legal_path")
    assert sampled(result, "transitions.legal_path", "problem") == [
        "from_status is not the previous to_status (pending)"]
    assert sampled(result, "transitions.legal_path", "task_id") == [str(task_id(PROCESSING))]


def test_events_out_of_order(db_url: URL) -> None:
    """The same three events, but the end recorded before the claim (ids give the order)."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("""
            UPDATE task_events SET from_status = CASE from_status WHEN 'pending' THEN 'processing'
                                                                  ELSE 'pending' END,
                                   to_status = CASE to_status WHEN 'processing' THEN 'completed'
                                                              ELSE 'processing' END
            WHERE task_id = %s AND from_status IS NOT NULL""", (task_id(COMPLETED),))
    result = audit(db_url)
    # Now the second event is processing -> completed and the last one pending -> processing:
    # the path breaks at event 2, the task "ends" there, and the status is not the last event's.
    assert_fails_only(result, "transitions.legal_path", "transitions.nothing_after_terminal",
                      "transitions.status_matches_last_event")
    assert sampled(result, "transitions.legal_path", "event_no") == [2]
    assert sampled(result, "transitions.nothing_after_terminal", "to_status") == ["processing"]


def test_task_without_events(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM task_events WHERE task_id = %s", (task_id(PENDING),))
    result = audit(db_url)
    assert_fails_only(result, "transitions.legal_path", "transitions.version_counts_events")
    assert sampled(result, "transitions.legal_path", "problem") == ["no events"]


def test_status_changed_without_event(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("UPDATE tasks SET status = 'processing' WHERE id = %s", (task_id(PENDING),))
    result = audit(db_url)
    assert_fails_only(result, "transitions.status_matches_last_event")
    assert result.get("transitions.status_matches_last_event").samples == [{
        "task_id": str(task_id(PENDING)), "status": "processing", "last_event_to": "pending",
        "last_event_id": result.get("transitions.status_matches_last_event")
        .samples[0]["last_event_id"]}]


@pytest.mark.parametrize(("number", "constraint", "change"), [
    (COMPLETED, "ck_tasks_completed_has_result", "result = NULL"),
    (COMPLETED, None, "error = 'also failed'"),
    (FAILED, "ck_tasks_failed_has_error", "error = NULL"),
])
def test_terminal_fields(db_url: URL, number: int, constraint: str | None, change: str) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        if constraint:
            conn.execute(f"ALTER TABLE tasks DROP CONSTRAINT {constraint}")
        conn.execute(f"UPDATE tasks SET {change} WHERE id = %s", (task_id(number),))
    result = audit(db_url)
    assert_fails_only(result, "transitions.terminal_fields")
    assert sampled(result, "transitions.terminal_fields", "task_id") == [str(task_id(number))]


def test_event_after_terminal_state(db_url: URL) -> None:
    """An extra completed -> completed event (status and version kept in step): only the
    'nothing after terminal' rule is broken."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute(ALLOW_ILLEGAL_STEPS)
        conn.execute("INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
                     "SELECT id, user_id, 'completed', 'completed', 'raw' FROM tasks "
                     "WHERE id = %s", (task_id(COMPLETED),))
        conn.execute("UPDATE tasks SET version = 4 WHERE id = %s", (task_id(COMPLETED),))
    result = audit(db_url)
    assert_fails_only(result, "transitions.nothing_after_terminal")
    [row] = result.get("transitions.nothing_after_terminal").samples
    assert (row["task_id"], row["terminal_status"], row["terminal_event_no"],
            row["events_after"]) == (str(task_id(COMPLETED)), "completed", 3, 1)


def test_reopened_task(db_url: URL) -> None:
    """failed -> pending, as a careless 'retry' would write it."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute(ALLOW_ILLEGAL_STEPS)
        conn.execute("INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
                     "SELECT id, user_id, 'failed', 'pending', 'raw' FROM tasks WHERE id = %s",
                     (task_id(FAILED),))
        conn.execute("UPDATE tasks SET status = 'pending', error = NULL, version = 4 "
                     "WHERE id = %s", (task_id(FAILED),))
    result = audit(db_url)
    assert_fails_only(result, "transitions.nothing_after_terminal")
    assert sampled(result, "transitions.nothing_after_terminal", "to_status") == ["pending"]


@pytest.mark.parametrize("delta", [1, -1])
def test_version_not_event_count(db_url: URL, delta: int) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("UPDATE tasks SET version = version + %s WHERE id = %s",
                     (delta, task_id(COMPLETED)))
    result = audit(db_url)
    assert_fails_only(result, "transitions.version_counts_events")
    assert result.get("transitions.version_counts_events").samples == [
        {"task_id": str(task_id(COMPLETED)), "version": 3 + delta, "events": 3}]


def test_many_violations_are_counted_and_sampled(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("UPDATE tasks SET version = version + 1")
    result = audit(db_url, samples=3)
    assert_fails_only(result, "transitions.version_counts_events")
    check = result.get("transitions.version_counts_events")
    assert check.violations == 60
    assert len(check.samples) == 3
