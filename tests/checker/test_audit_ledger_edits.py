"""ledger.acknowledged_edits_persist: a task's title and payload are registers; the database
must hold a value some write may have left there last."""

from __future__ import annotations

import time
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import URL

from checker.audit.synthetic import task_id, task_owner
from checker.history import HistoryRecord, digest
from tests.checker.audit_support import SMALL, assert_fails_only, audit, full_history, owner, seed

pytestmark = pytest.mark.checker_no_audit  # every test here damages its database on purpose

CHECK = "ledger.acknowledged_edits_persist"
TASK = 4  # a completed task of SMALL: created at the history's start, then moved twice
NOW = time.time() - 3600  # after full_history()'s creates (two hours ago)


def edit(at: float, outcome: str = "ok", *, title: str | None = None,
         payload: dict[str, Any] | None = None, duration: float = 0.01,
         task: int = TASK) -> HistoryRecord:
    """A tenant's task.update of `task` from `at` to `at + duration`."""
    wrote = {name: digest(value) for name, value in (("title", title), ("payload", payload))
             if value is not None}
    return HistoryRecord("tab-1", str(task_owner(task, SMALL)), "task.update",
                         {"task_id": str(task_id(task)), "wrote": wrote}, at, at + duration,
                         outcome, error=None if outcome == "ok" else "boom")  # type: ignore[arg-type]


def store(url: URL, *, title: str | None = None, payload: dict[str, Any] | None = None,
          task: int = TASK) -> None:
    """What the database holds, set behind the application's back."""
    with owner(url) as conn:
        if title is not None:
            conn.execute("UPDATE tasks SET title = %s WHERE id = %s", (title, task_id(task)))
        if payload is not None:
            conn.execute("UPDATE tasks SET payload = %s WHERE id = %s",
                         (Jsonb(payload), task_id(task)))


def the_history(*edits: HistoryRecord) -> list[HistoryRecord]:
    return [*full_history(), *edits]


def test_the_created_values_pass(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, full_history())
    assert_fails_only(result)
    assert result.get(CHECK).details == {"fields_checked": 120, "fields_unchecked": 0,
                                         "writes": 120}


def test_the_last_acknowledged_edit_passes(db_url: URL) -> None:
    seed(db_url)
    store(db_url, title="second", payload={"v": 2})
    history = the_history(edit(NOW, title="first", payload={"v": 1}),
                          edit(NOW + 1, title="second"), edit(NOW + 2, payload={"v": 2}))
    assert_fails_only(audit(db_url, history))


def test_an_acknowledged_edit_reverted(db_url: URL) -> None:
    seed(db_url)
    store(db_url, title="first")  # the second edit, acknowledged, is lost
    result = audit(db_url, the_history(edit(NOW, title="first"), edit(NOW + 1, title="second")))
    assert_fails_only(result, CHECK)
    [row] = result.get(CHECK).samples
    assert (row["task_id"], row["field"]) == (str(task_id(TASK)), "title")
    assert row["last_acknowledged"]["start"] == NOW + 1


def test_an_edit_lost_reverts_to_the_created_value(db_url: URL) -> None:
    """The database still holds what the create wrote: the acknowledged edit vanished."""
    seed(db_url)
    result = audit(db_url, the_history(edit(NOW, payload={"v": 1})))
    assert_fails_only(result, CHECK)
    assert [r["field"] for r in result.get(CHECK).samples] == ["payload"]


def test_the_other_field_is_its_own_register(db_url: URL) -> None:
    """A title edit says nothing about the payload, which keeps its created value."""
    seed(db_url)
    store(db_url, title="renamed")
    assert_fails_only(audit(db_url, the_history(edit(NOW, title="renamed"))))


@pytest.mark.parametrize("stored", ["first", "second"])
def test_overlapping_edits_may_land_in_either_order(db_url: URL, stored: str) -> None:
    seed(db_url)
    store(db_url, title=stored)
    history = the_history(edit(NOW, title="first", duration=2),
                          edit(NOW + 1, title="second", duration=2))
    assert_fails_only(audit(db_url, history))


@pytest.mark.parametrize("stored", ["acked", "maybe"])
def test_an_unknown_edit_may_or_may_not_have_landed(db_url: URL, stored: str) -> None:
    seed(db_url)
    store(db_url, title=stored)
    history = the_history(edit(NOW, title="acked"), edit(NOW + 1, "unknown", title="maybe"))
    assert_fails_only(audit(db_url, history))


def test_an_unknown_edit_superseded_by_an_acknowledged_one_explains_nothing(
        db_url: URL) -> None:
    seed(db_url)
    store(db_url, title="maybe")
    history = the_history(edit(NOW, "unknown", title="maybe"), edit(NOW + 1, title="acked"))
    assert_fails_only(audit(db_url, history), CHECK)


def test_a_failed_edit_must_not_land(db_url: URL) -> None:
    seed(db_url)
    store(db_url, title="refused")
    history = the_history(edit(NOW, title="acked"), edit(NOW + 1, "fail", title="refused"))
    assert_fails_only(audit(db_url, history), CHECK)


def test_clock_disagreement_is_tolerated_when_asked(db_url: URL) -> None:
    """Two processes on hosts whose clocks disagree by up to 0.5 s: an edit that returned
    0.2 s before another began (by their clocks) may still have been the later one."""
    seed(db_url)
    store(db_url, title="first")
    history = the_history(edit(NOW, title="first"), edit(NOW + 0.21, title="second"))
    assert_fails_only(audit(db_url, history), CHECK)
    assert_fails_only(audit(db_url, history, history_skew=0.5))


def test_a_seeded_task_with_only_unknown_edits_is_not_checked(db_url: URL) -> None:
    """No create in the history and no acknowledged edit: its value is not the history's
    to know, whatever it is."""
    seed(db_url)
    store(db_url, title="anything")
    history = [r for r in full_history()
               if not (r.op == "task.create" and r.observed["task_id"] == str(task_id(TASK)))]
    result = audit(db_url, [*history, edit(NOW, "unknown", title="maybe")], only=CHECK)
    assert result.ok
    assert result.get(CHECK).details["fields_unchecked"] == 1


def test_a_deleted_task_is_not_an_edit_violation(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (task_id(TASK),))
    result = audit(db_url, the_history(edit(NOW, title="gone")), only=CHECK)
    assert result.ok


def test_an_edited_seeded_task_gone_without_a_delete(db_url: URL) -> None:
    """No create in the history (a seeded task), an acknowledged edit, then no row and no
    delete: nothing else would notice."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (task_id(TASK),))
    history = [r for r in full_history()
               if not (r.op == "task.create" and r.observed["task_id"] == str(task_id(TASK)))]
    result = audit(db_url, [*history, edit(NOW, title="edited")], only=CHECK)
    assert not result.ok
    assert result.get(CHECK).samples == [
        {"task_id": str(task_id(TASK)), "problem": "edited, then missing without a delete"}]
    deleted = HistoryRecord("tab-1", str(task_owner(TASK, SMALL)), "task.delete",
                            {"task_id": str(task_id(TASK))}, NOW + 1, NOW + 1.01, "unknown",
                            error="boom")
    assert audit(db_url, [*history, edit(NOW, title="edited"), deleted], only=CHECK).ok


def test_an_acknowledged_edit_that_recorded_nothing_is_not_a_pass(db_url: URL) -> None:
    seed(db_url)
    blind = HistoryRecord("tab-1", str(task_owner(TASK, SMALL)), "task.update",
                          {"task_id": str(task_id(TASK))}, NOW, NOW + 0.01, "ok")
    result = audit(db_url, the_history(blind), only=CHECK)
    assert [r["problem"] for r in result.get(CHECK).samples] == [
        "acknowledged edit without args.wrote"]
