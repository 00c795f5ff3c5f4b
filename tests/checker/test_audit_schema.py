"""schema.*: each check fires on exactly the catalog damage it guards against."""

from __future__ import annotations

import pytest
from sqlalchemy import URL

from tests.checker.audit_support import assert_fails_only, audit, owner, sampled, seed

pytestmark = pytest.mark.no_audit  # every test here damages its database on purpose

# (constraint, table, columns, referenced table and columns)
FOREIGN_KEYS = [
    ("fk_tasks_user_id_users", "tasks", "user_id", "users (id)"),
    ("fk_password_history_user_id_users", "password_history", "user_id", "users (id)"),
    ("fk_auth_sessions_user_id_users", "auth_sessions", "user_id", "users (id)"),
    ("fk_task_events_task_id_user_id_tasks", "task_events", "task_id, user_id",
     "tasks (id, user_id)"),
]


@pytest.mark.parametrize(("name", "table", "columns", "target"), FOREIGN_KEYS,
                         ids=[fk[1] for fk in FOREIGN_KEYS])
@pytest.mark.parametrize("replacement", ["ON DELETE NO ACTION", "ON DELETE CASCADE NOT VALID",
                                         None])
def test_cascade_foreign_keys(db_url: URL, name: str, table: str, columns: str, target: str,
                              replacement: str | None) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        if replacement:
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({columns}) "
                         f"REFERENCES {target} {replacement}")
    result = audit(db_url)
    assert_fails_only(result, "schema.cascade_foreign_keys")
    assert sampled(result, "schema.cascade_foreign_keys", "table") == [table]
    found = sampled(result, "schema.cascade_foreign_keys", "found")[0]
    assert found == (f"{name} {replacement}" if replacement else "no foreign key")


def test_rls_disabled_on_tasks(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("ALTER TABLE tasks DISABLE ROW LEVEL SECURITY")
    result = audit(db_url)
    # Without RLS every tenant (and no tenant at all) sees every task.
    assert_fails_only(result, "schema.row_level_security", "isolation.tenant_sees_own_rows",
                      "isolation.no_tenant_sees_nothing")
    assert result.get("schema.row_level_security").samples == [
        {"table": "tasks", "enabled": False, "forced": True, "app_policies": 1}]


def test_rls_not_forced_on_task_events(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("ALTER TABLE task_events NO FORCE ROW LEVEL SECURITY")
    result = audit(db_url)
    # Only the owner escapes a policy that is not forced: the app role is still confined.
    assert_fails_only(result, "schema.row_level_security")
    assert sampled(result, "schema.row_level_security", "forced") == [False]
    assert sampled(result, "schema.row_level_security", "table") == ["task_events"]


def test_tenant_policy_dropped(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DROP POLICY tasks_tenant ON tasks")
    result = audit(db_url)
    # RLS with no policy for the role denies everything: tenants no longer see their tasks.
    assert_fails_only(result, "schema.row_level_security", "isolation.tenant_sees_own_rows")
    assert sampled(result, "schema.row_level_security", "app_policies") == [0]


def test_app_role_owns_a_table(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:  # ownership is local to this database, unlike role attributes
        conn.execute("ALTER TABLE task_events OWNER TO taskhub_app")
    result = audit(db_url)  # an owner holds every privilege: the grants matrix drifts too
    assert_fails_only(result, "schema.roles_confined", "schema.grants_match_matrix")
    assert result.get("schema.roles_confined").samples == [
        {"role": "taskhub_app", "superuser": False, "bypassrls": False, "owns": "task_events"}]
    drift = result.get("schema.grants_match_matrix").samples
    assert {(row["grantee"], row["drift"]) for row in drift} == {("taskhub_app", "extra")}
    assert ("table task_events", "DELETE") in {(row["object"], row["privilege"]) for row in drift}


def test_worker_role_with_bypassrls(db_url: URL) -> None:
    seed(db_url)
    try:  # roles are cluster-wide: restore before any other test's database is audited
        with owner(db_url) as conn:
            conn.execute("ALTER ROLE taskhub_worker BYPASSRLS")
        result = audit(db_url)
    finally:
        with owner(db_url) as conn:
            conn.execute("ALTER ROLE taskhub_worker NOBYPASSRLS")
    assert_fails_only(result, "schema.roles_confined")
    assert sampled(result, "schema.roles_confined", "role") == ["taskhub_worker"]
    assert sampled(result, "schema.roles_confined", "bypassrls") == [True]


@pytest.mark.parametrize("replacement", [
    None, "CHECK (status IN ('pending', 'processing', 'completed'))"])
def test_status_constraint(db_url: URL, replacement: str | None) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("ALTER TABLE tasks DROP CONSTRAINT ck_tasks_status_known")
        if replacement:
            conn.execute(f"ALTER TABLE tasks ADD CONSTRAINT ck_tasks_status_known {replacement} "
                         f"NOT VALID")
    result = audit(db_url)
    assert_fails_only(result, "schema.status_constraints")
    assert result.get("schema.status_constraints").samples[0]["table"] == "tasks"


def test_foreign_key_triggers_disabled(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("ALTER TABLE auth_sessions DISABLE TRIGGER ALL")
    result = audit(db_url)
    assert_fails_only(result, "schema.triggers_enabled")
    check = result.get("schema.triggers_enabled")
    assert check.violations == 2  # the foreign key's insert and update checks
    assert {row["table"] for row in check.samples} == {"auth_sessions"}
    assert all(row["internal"] and row["state"] == "disabled" for row in check.samples)


@pytest.mark.parametrize(("action", "state"), [("DISABLE TRIGGER", "disabled"),
                                               ("ENABLE REPLICA TRIGGER", "replica only")])
def test_user_trigger_disabled(db_url: URL, action: str, state: str) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER tasks_touch BEFORE UPDATE ON tasks "
                     "FOR EACH ROW EXECUTE FUNCTION touch()")
        conn.execute(f"ALTER TABLE tasks {action} tasks_touch")
    result = audit(db_url)
    assert_fails_only(result, "schema.triggers_enabled")
    assert result.get("schema.triggers_enabled").samples == [
        {"table": "tasks", "trigger": "tasks_touch", "internal": False, "state": state}]
