"""isolation.*: leaky policies, events that change owner, and what clients saw."""

from __future__ import annotations

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
    failing,
    full_history,
    owner,
    sampled,
    seed,
)

pytestmark = pytest.mark.checker_no_audit  # every test here damages its database on purpose

A, B = str(user_id(1)), str(user_id(2))
A_TASK, B_TASK = str(task_id(1)), str(task_id(2))  # task i belongs to user ((i - 1) % 6) + 1


def test_task_numbers_and_owners() -> None:
    assert (str(task_owner(1, SMALL)), str(task_owner(2, SMALL))) == (A, B)


def test_permissive_policy_leaks_everything(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:  # policies are OR-ed: one USING (true) undoes the others
        conn.execute("CREATE POLICY leak ON tasks FOR SELECT TO taskhub_app USING (true)")
    result = audit(db_url)
    # The policy's text gives it away too; the isolation checks prove what it does.
    assert_fails_only(result, "isolation.tenant_sees_own_rows",
                      "isolation.no_tenant_sees_nothing", "schema.policies_match")
    row = result.get("isolation.tenant_sees_own_rows").samples[0]
    assert (row["visible_tasks"], row["owned_tasks"], row["foreign_tasks"]) == (60, 10, 50)
    assert row["foreign_task_events"] == 0
    assert all(row[f"foreign_{t}"] == 0 for t in ("users", "password_history", "auth_sessions"))
    assert result.get("isolation.tenant_sees_own_rows").details["tenants_checked"] == 6


def test_policy_leaking_one_task_to_every_tenant(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:  # to any proven tenant, and to no one without a tenant
        conn.execute(f"""
            CREATE POLICY leak_one ON tasks FOR SELECT TO taskhub_app
            USING (id = '{A_TASK}' AND (SELECT public.taskhub_tenant()) IS NOT NULL)""")
    result = audit(db_url)
    assert_fails_only(result, "isolation.tenant_sees_own_rows", "schema.policies_match")
    check = result.get("isolation.tenant_sees_own_rows")
    assert check.violations == 5  # every tenant but its owner
    assert A not in sampled(result, "isolation.tenant_sees_own_rows", "tenant")
    assert set(sampled(result, "isolation.tenant_sees_own_rows", "foreign_tasks")) == {1}


def test_policy_open_when_no_tenant_is_set(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("CREATE POLICY unset ON task_events FOR SELECT TO taskhub_app USING ("
                     "(SELECT public.taskhub_tenant()) IS NULL)")
    result = audit(db_url)
    assert_fails_only(result, "isolation.no_tenant_sees_nothing", "schema.policies_match")
    check = result.get("isolation.no_tenant_sees_nothing")
    assert check.violations == 4  # no tenant, and each forged setting: none proves a tenant
    assert [(row["setting"], row["task_events"]) for row in check.samples] == [
        *[("taskhub.tenant", 156)] * 3, ("app.user_id", 156)]  # every event
    assert check.samples[0]["value"] == "(empty)"
    assert all(row[table] == 0 for row in check.samples
               for table in ("users", "password_history", "auth_sessions", "tasks"))


def test_events_reassigned_to_another_owner(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("SET session_replication_role = replica")  # skip the composite FK
        conn.execute("UPDATE task_events SET user_id = %s WHERE task_id = %s", (B, A_TASK))
    result = audit(db_url)
    assert_fails_only(result, "isolation.event_owner_matches_task")
    check = result.get("isolation.event_owner_matches_task")
    assert check.violations == 2  # task 1 is processing: creation and claim
    assert {(r["task_id"], r["event_owner"], r["task_owner"]) for r in check.samples} == {
        (A_TASK, B, A)}


def _read(tenant: str, seen: list[str], owners: list[str] | None = None) -> HistoryRecord:
    t = time.time()
    return HistoryRecord("client-1", tenant, "task.list", {}, t, t, "ok",
                         {"task_ids": seen, "owner_ids": owners if owners is not None else []})


def test_observed_rows_clean(db_url: URL) -> None:
    seed(db_url)
    history = [*full_history(), _read(A, [A_TASK], [A])]
    result = audit(db_url, history)
    assert_fails_only(result)
    assert result.get("isolation.observed_rows_owned").details["unverifiable"] == 0


def test_client_saw_another_tenants_task(db_url: URL) -> None:
    seed(db_url)
    history = [*full_history(), _read(A, [A_TASK, B_TASK])]
    result = audit(db_url, history)
    assert_fails_only(result, "isolation.observed_rows_owned")
    [row] = result.get("isolation.observed_rows_owned").samples
    assert (row["tenant"], row["task_id"], row["owner"]) == (A, B_TASK, B)


def test_client_saw_another_owner_id(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, [*full_history(), _read(A, [], [A, B])])
    assert_fails_only(result, "isolation.observed_rows_owned")
    assert sampled(result, "isolation.observed_rows_owned", "owner") == [B]


def test_deleted_task_owner_comes_from_its_creation(db_url: URL) -> None:
    """Task 2 (B's) is gone from the database; the history's create still names its owner."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (B_TASK,))
    delete = HistoryRecord("client-2", B, "task.delete", {"task_id": B_TASK}, time.time(),
                           time.time(), "ok")
    unknown_task = str(uuid.uuid4())
    result = audit(db_url, [*full_history(), delete, _read(A, [B_TASK, unknown_task])])
    assert_fails_only(result, "isolation.observed_rows_owned")
    assert sampled(result, "isolation.observed_rows_owned", "owner") == [B]
    assert result.get("isolation.observed_rows_owned").details["unverifiable"] == 1


def _probe(outcome: str, observed: dict[str, list[str]] | None = None) -> HistoryRecord:
    t = time.time()
    return HistoryRecord("attacker", A, "probe.cross_tenant",
                         {"target_task_id": B_TASK, "target_tenant": B, "action": "read"},
                         t, t, outcome, observed or {},  # type: ignore[arg-type]
                         None if outcome == "ok" else "not found")


@pytest.mark.parametrize(("probe", "violations"), [
    (_probe("fail"), 0),
    (_probe("fail", {"task_ids": []}), 0),
    (_probe("unknown"), 0),
    (_probe("ok"), 1),
    (_probe("fail", {"task_ids": [B_TASK]}), 1),
    (_probe("unknown", {"owner_ids": [B]}), 1),
], ids=["denied", "denied-empty-list", "unknown", "succeeded", "failed-but-saw",
        "unknown-but-saw"])
def test_cross_tenant_probes(db_url: URL, probe: HistoryRecord, violations: int) -> None:
    seed(db_url)
    result = audit(db_url, [*full_history(), probe])
    check = result.get("isolation.cross_tenant_denied")
    assert check.violations == violations, result.summary()
    assert failing(result) == ({"isolation.cross_tenant_denied"} if violations else set())
    assert check.details == {"probes": 1, "unknown": int(probe.outcome == "unknown")}
    if violations:
        assert sampled(result, "isolation.cross_tenant_denied", "tenant") == [A]
