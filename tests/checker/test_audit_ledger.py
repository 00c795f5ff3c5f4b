"""ledger.*: the database against the history of what clients were told."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
from sqlalchemy import URL

from checker.audit.synthetic import task_id, task_owner, user_id
from checker.history import HistoryRecord
from tests.checker.audit_support import (
    SMALL,
    assert_fails_only,
    audit,
    full_history,
    owner,
    sampled,
    seed,
    transition,
)

pytestmark = pytest.mark.checker_no_audit  # every test here damages its database on purpose

PENDING, PROCESSING, COMPLETED = 10, 1, 3
LEDGER = ("ledger.acknowledged_creates_persist", "ledger.acknowledged_transitions_persist",
          "ledger.acknowledged_deletes_persist", "ledger.no_phantom_tasks",
          "ledger.single_winner")


def owner_of(i: int) -> str:
    return str(task_owner(i, SMALL))


def record(op: str, tenant: str | None, outcome: str = "ok", **args: str) -> HistoryRecord:
    t = time.time()
    return HistoryRecord("client-9", tenant, op, dict(args), t, t,
                         outcome, error=None if outcome == "ok" else "boom")  # type: ignore[arg-type]


def without_create(history: list[HistoryRecord], i: int) -> list[HistoryRecord]:
    return [r for r in history
            if not (r.op == "task.create" and r.observed.get("task_id") == str(task_id(i)))]


def test_a_matching_history_passes(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, full_history())
    assert_fails_only(result)
    assert {c.name for c in result.checks} >= set(LEDGER)
    assert result.get("ledger.acknowledged_creates_persist").details == {
        "acknowledged": 60, "explained_by_delete": 0, "unknown": 0}
    assert result.get("ledger.acknowledged_transitions_persist").details["acknowledged"] == 96
    assert result.get("ledger.no_phantom_tasks").details["scope"] == "every task"


def test_without_history_the_ledger_is_skipped(db_url: URL) -> None:
    seed(db_url)
    assert not any(c.family == "ledger" for c in audit(db_url).checks)


def test_acknowledged_task_lost(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (task_id(COMPLETED),))
    result = audit(db_url, full_history())
    # Its creation and both of its acknowledged transitions are gone.
    assert_fails_only(result, "ledger.acknowledged_creates_persist",
                      "ledger.acknowledged_transitions_persist")
    assert result.get("ledger.acknowledged_creates_persist").samples == [{
        **result.get("ledger.acknowledged_creates_persist").samples[0],
        "task_id": str(task_id(COMPLETED)), "problem": "missing", "tenant": owner_of(COMPLETED)}]
    assert result.get("ledger.acknowledged_transitions_persist").violations == 2
    assert set(sampled(result, "ledger.acknowledged_transitions_persist", "task_id")) == {
        str(task_id(COMPLETED))}


@pytest.mark.parametrize("outcome", ["ok", "unknown"])
def test_absence_explained_by_a_task_delete(db_url: URL, outcome: str) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (task_id(COMPLETED),))
    delete = record("task.delete", owner_of(COMPLETED), outcome, task_id=str(task_id(COMPLETED)))
    result = audit(db_url, [*full_history(), delete])
    assert_fails_only(result)
    assert result.get("ledger.acknowledged_creates_persist").details["explained_by_delete"] == 1
    assert result.get("ledger.acknowledged_transitions_persist").details[
        "explained_by_delete"] == 2


def test_a_failed_delete_explains_nothing(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (task_id(PENDING),))
    delete = record("task.delete", owner_of(PENDING), "fail", task_id=str(task_id(PENDING)))
    result = audit(db_url, [*full_history(), delete])
    assert_fails_only(result, "ledger.acknowledged_creates_persist")
    assert sampled(result, "ledger.acknowledged_creates_persist", "task_id") == [
        str(task_id(PENDING))]


def test_absence_explained_by_deleting_the_owner(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (user_id(1),))  # cascades 10 tasks
    result = audit(db_url, [*full_history(), record("user.delete", str(user_id(1)))])
    assert_fails_only(result)
    assert result.get("ledger.acknowledged_creates_persist").details["explained_by_delete"] == 10


def test_created_task_has_another_owner(db_url: URL) -> None:
    seed(db_url)
    other = owner_of(COMPLETED + 1)
    history = [dataclasses.replace(r, tenant=other)
               if r.op == "task.create" and r.observed["task_id"] == str(task_id(COMPLETED))
               else r for r in full_history()]
    result = audit(db_url, history)
    # The client of `other` was told it created (and so saw) a task the database gives to
    # someone else: a ledger and an isolation violation at once.
    assert_fails_only(result, "ledger.acknowledged_creates_persist",
                      "isolation.observed_rows_owned")
    assert sampled(result, "ledger.acknowledged_creates_persist", "problem") == [
        f"owned by {owner_of(COMPLETED)}"]


def test_acknowledged_transition_never_happened(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, [*full_history(), transition(PENDING, "pending", "processing")])
    assert_fails_only(result, "ledger.acknowledged_transitions_persist")
    [row] = result.get("ledger.acknowledged_transitions_persist").samples
    assert (row["task_id"], row["transition"], row["task_exists"]) == (
        str(task_id(PENDING)), "pending->processing", True)


def test_acknowledged_claim_rolled_back_behind_the_clients_back(db_url: URL) -> None:
    """The database is self-consistent again (pending, version 1, creation event only), but
    the worker was told it claimed the task."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM task_events WHERE task_id = %s AND from_status = 'pending'",
                     (task_id(PROCESSING),))
        conn.execute("UPDATE tasks SET status = 'pending', version = 1 WHERE id = %s",
                     (task_id(PROCESSING),))
    result = audit(db_url, full_history())
    assert_fails_only(result, "ledger.acknowledged_transitions_persist")
    assert sampled(result, "ledger.acknowledged_transitions_persist", "transition") == [
        "pending->processing"]


@pytest.mark.parametrize("outcome", ["unknown", "fail"])
def test_unacknowledged_transitions_are_accepted_either_way(db_url: URL, outcome: str) -> None:
    seed(db_url)
    happened = transition(PROCESSING, "pending", "processing", outcome=outcome,
                          process="worker-2")
    did_not = transition(PENDING, "pending", "processing", outcome=outcome)
    result = audit(db_url, [*full_history(), happened, did_not])
    assert_fails_only(result)
    unknown = 2 if outcome == "unknown" else 0
    assert result.get("ledger.acknowledged_transitions_persist").details["unknown"] == unknown
    assert result.get("ledger.single_winner").details["unknown"] == unknown


def test_acknowledged_delete_did_not_happen(db_url: URL) -> None:
    seed(db_url)
    history = [*full_history(),
               record("task.delete", owner_of(PENDING), task_id=str(task_id(PENDING))),
               record("user.delete", str(user_id(2)))]
    result = audit(db_url, history)
    assert_fails_only(result, "ledger.acknowledged_deletes_persist")
    check = result.get("ledger.acknowledged_deletes_persist")
    assert check.violations == 2
    assert (check.samples[0]["task_id"], check.samples[1]["user_id"]) == (
        str(task_id(PENDING)), str(user_id(2)))


def test_phantom_task_in_a_complete_history(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, without_create(full_history(), 5))
    assert_fails_only(result, "ledger.no_phantom_tasks")
    assert sampled(result, "ledger.no_phantom_tasks", "task_id") == [str(task_id(5))]


def test_phantom_explained_by_an_unknown_create_of_its_owner(db_url: URL) -> None:
    seed(db_url)
    lost_reply = record("task.create", owner_of(5), "unknown", title="task 5")
    result = audit(db_url, [*without_create(full_history(), 5), lost_reply])
    assert_fails_only(result)
    assert result.get("ledger.no_phantom_tasks").details["explained_by_unknown_creates"] == 1
    # The same unknown create by another tenant explains nothing.
    stranger = dataclasses.replace(lost_reply, tenant=owner_of(6))
    result = audit(db_url, [*without_create(full_history(), 5), stranger])
    assert_fails_only(result, "ledger.no_phantom_tasks")


def test_seeded_rows_before_the_run_are_not_phantoms(db_url: URL) -> None:
    seed(db_url)  # created an hour "ago"; the run starts now, without claiming completeness
    start = HistoryRecord.run_start("runner", time.time() - 5, complete=False)
    result = audit(db_url, [start])
    assert_fails_only(result)
    assert result.get("ledger.no_phantom_tasks").details["unnamed"] == 0
    with owner(db_url) as conn:  # ... but a task created during the run with no client is
        conn.execute("INSERT INTO tasks (id, user_id, title) VALUES (%s, %s, 'phantom')",
                     (ghost := uuid.uuid4(), user_id(3)))
        conn.execute("INSERT INTO task_events (task_id, user_id, to_status, actor) "
                     "VALUES (%s, %s, 'pending', 'nobody')", (ghost, user_id(3)))
    result = audit(db_url, [start])
    assert_fails_only(result, "ledger.no_phantom_tasks")
    assert sampled(result, "ledger.no_phantom_tasks", "task_id") == [str(ghost)]


def test_no_run_start_means_no_phantom_scope(db_url: URL) -> None:
    seed(db_url)
    history = [r for r in without_create(full_history(), 5) if r.op != "run.start"]
    result = audit(db_url, history)
    assert_fails_only(result)
    assert result.get("ledger.no_phantom_tasks").details["scope"].startswith("none")


@pytest.mark.parametrize(("extra", "also_failing"), [
    (("pending", "processing"), ()),
    (("processing", "failed"), ("ledger.acknowledged_transitions_persist",)),
], ids=["double-claim", "completed-and-failed"])
def test_two_winners(db_url: URL, extra: tuple[str, str], also_failing: tuple[str, ...]) -> None:
    """Task 3 was claimed and completed; another worker is also told it won one of those."""
    seed(db_url)
    result = audit(db_url, [*full_history(), transition(COMPLETED, *extra, process="worker-2")])
    # A second winner of processing -> failed also has no event to show for it.
    assert_fails_only(result, "ledger.single_winner", *also_failing)
    [row] = result.get("ledger.single_winner").samples
    assert (row["task_id"], row["from_status"]) == (str(task_id(COMPLETED)), extra[0])
    assert {w["process"] for w in row["winners"]} == {"worker-1", "worker-2"}


def test_a_loser_with_unknown_outcome_is_no_winner(db_url: URL) -> None:
    seed(db_url)
    loser = transition(COMPLETED, "pending", "processing", outcome="unknown", process="w-2")
    result = audit(db_url, [*full_history(), loser])
    assert_fails_only(result)
