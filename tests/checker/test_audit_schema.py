"""schema.*: each check fires on exactly the catalog damage it guards against."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import URL

from tests.checker.audit_support import assert_fails_only, audit, owner, sampled, seed
from tests.conftest import PrivateServer

pytestmark = pytest.mark.checker_no_audit  # every test here damages its database on purpose

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
    assert_fails_only(result, "schema.row_level_security", "schema.policies_match",
                      "isolation.tenant_sees_own_rows")
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


def test_worker_role_with_bypassrls(private_db_url: URL) -> None:
    """On a server of its own: the group role is cluster-wide, and the other tests'
    databases must never see it changed, not even for the length of this audit."""
    db_url = private_db_url
    seed(db_url)
    try:
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


def test_an_extra_grant_to_another_role(db_url: URL, scratch_role: Callable[..., str]) -> None:
    seed(db_url)
    stranger = scratch_role("NOLOGIN")
    with owner(db_url) as conn:
        conn.execute(f"GRANT SELECT ON tasks TO {stranger}")
        conn.execute(f"GRANT EXECUTE ON FUNCTION taskhub_private.tenant_tag(uuid) TO {stranger}")
    result = audit(db_url)
    assert_fails_only(result, "schema.grants_match_matrix")
    assert {(r["object"], r["grantee"], r["privilege"], r["drift"])
            for r in result.get("schema.grants_match_matrix").samples} == {
        ("table tasks", stranger, "SELECT", "extra"),
        ("function taskhub_private.tenant_tag(uuid)", stranger, "EXECUTE", "extra")}


def test_a_grant_to_public(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("GRANT SELECT ON auth_sessions TO PUBLIC")
    result = audit(db_url)
    assert_fails_only(result, "schema.grants_match_matrix")
    assert result.get("schema.grants_match_matrix").samples == [
        {"object": "table auth_sessions", "grantee": "PUBLIC", "privilege": "SELECT",
         "drift": "extra"}]


def test_an_extra_policy(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("CREATE POLICY tasks_everyone ON tasks FOR SELECT TO taskhub_app "
                     "USING (true)")
    result = audit(db_url)  # every tenant now sees every task
    assert_fails_only(result, "schema.policies_match", "isolation.tenant_sees_own_rows",
                      "isolation.no_tenant_sees_nothing")
    [row] = result.get("schema.policies_match").samples
    assert (row["table"], row["policy"], row["drift"]) == ("tasks", "tasks_everyone", "extra")


@pytest.mark.parametrize(("change", "policy"), [
    ("ALTER POLICY users_tenant ON users USING (true)", "users_tenant"),
    ("ALTER POLICY task_events_worker_read ON task_events TO taskhub_worker, taskhub_app",
     "task_events_worker_read"),
])
def test_a_changed_policy(db_url: URL, change: str, policy: str) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute(change)
    result = audit(db_url, only="schema")
    assert_fails_only(result, "schema.policies_match")
    [row] = result.get("schema.policies_match").samples
    assert (row["policy"], row["drift"]) == (policy, "changed")


def test_a_dropped_worker_policy(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DROP POLICY tasks_worker_update ON tasks")
    result = audit(db_url, only="schema")
    assert_fails_only(result, "schema.policies_match")
    assert result.get("schema.policies_match").samples == [
        {"table": "tasks", "policy": "tasks_worker_update", "drift": "missing"}]


def test_an_extra_member_of_the_app_role(db_url: URL, scratch_role: Callable[..., str]) -> None:
    seed(db_url)
    intruder = scratch_role("LOGIN")
    with owner(db_url) as conn:
        conn.execute(f"GRANT taskhub_app TO {intruder}")
        conn.execute(f"GRANT CONNECT ON DATABASE {db_url.database} TO {intruder}")
    result = audit(db_url, only="schema")
    assert_fails_only(result, "schema.role_memberships", "schema.grants_match_matrix")
    [row] = result.get("schema.role_memberships").samples
    assert (row["group"], row["member"], row["kind"]) == ("taskhub_app", intruder, "member")
    assert row["problem"] == "not this database's login role for the group"


def test_an_empowered_login_role(db_url: URL, db_access: object) -> None:
    seed(db_url)
    login = f"{db_url.database}_worker"
    with owner(db_url) as conn:
        conn.execute(f"ALTER ROLE {login} CREATEDB")
    result = audit(db_url, only="schema")
    assert_fails_only(result, "schema.role_memberships")
    assert result.get("schema.role_memberships").samples == [
        {"group": "taskhub_worker", "member": login, "kind": "login role",
         "problem": "createdb"}]


@pytest.mark.parametrize("parent", ["scratch", "pg_read_all_data"])
def test_the_group_role_belongs_to_another_role(private_db_url: URL, parent: str) -> None:
    """Whatever the other role is (a predefined one reads every table, RLS or not). On a
    server of its own: the group role is cluster-wide."""
    db_url = private_db_url
    seed(db_url)
    patron = f"checker_test_{uuid.uuid4().hex[:12]}" if parent == "scratch" else parent
    try:
        with owner(db_url) as conn:
            if parent == "scratch":
                conn.execute(f"CREATE ROLE {patron} NOLOGIN")
            conn.execute(f"GRANT {patron} TO taskhub_worker")
        result = audit(db_url, only="schema")
    finally:
        with owner(db_url) as conn:
            conn.execute(f"REVOKE {patron} FROM taskhub_worker")
            if parent == "scratch":
                conn.execute(f"DROP ROLE {patron}")
    assert_fails_only(result, "schema.role_memberships")
    assert result.get("schema.role_memberships").samples == [
        {"group": "taskhub_worker", "member": patron, "kind": "group belongs to",
         "problem": f"member of {patron}"}]


def test_a_login_role_that_reaches_the_owner(private_db_url: URL,
                                             private_janitor: PrivateServer) -> None:
    """Through the owner's own unconditional policy it would see every tenant's rows. On a
    server of its own: a member of the owner (the superuser who owns every database) may
    connect to every database, so every other test's audit would see it."""
    db_url = private_db_url
    assert db_url.database is not None
    private_janitor.janitor.runtime_access(db_url.database)
    seed(db_url)
    login = f"{db_url.database}_app"
    with owner(db_url) as conn:
        table_owner = conn.execute("SELECT tableowner FROM pg_tables "
                                   "WHERE tablename = 'tasks'").fetchone()[0]
        conn.execute(f"GRANT {table_owner} TO {login}")
    result = audit(db_url, only="schema")
    assert_fails_only(result, "schema.role_memberships", "schema.roles_confined")
    assert {"group": "taskhub_app", "member": login, "kind": "login role belongs to",
            "problem": f"member of {table_owner}"} in result.get("schema.role_memberships").samples
    assert sampled(result, "schema.roles_confined", "role") == [login]


def test_a_role_that_can_act_as_a_login_role(db_url: URL, db_access: object,
                                             scratch_role: Callable[..., str]) -> None:
    seed(db_url)
    login = f"{db_url.database}_worker"
    intruder = scratch_role("LOGIN")
    with owner(db_url) as conn:
        conn.execute(f"GRANT {login} TO {intruder}")  # inherits its CONNECT too
    result = audit(db_url, only="schema")
    assert_fails_only(result, "schema.role_memberships")
    samples = result.get("schema.role_memberships").samples
    assert {"group": login, "member": intruder, "kind": "member",
            "problem": "not this database's own login role"} in samples


def test_a_role_that_bypasses_rls_may_connect(db_url: URL,
                                              scratch_role: Callable[..., str]) -> None:
    seed(db_url)
    bypass = scratch_role("LOGIN BYPASSRLS")
    with owner(db_url) as conn:
        conn.execute(f"GRANT CONNECT ON DATABASE {db_url.database} TO {bypass}")
    result = audit(db_url, only="schema")
    assert_fails_only(result, "schema.role_memberships", "schema.grants_match_matrix")
    assert result.get("schema.role_memberships").samples == [
        {"group": None, "member": bypass, "kind": "bypassrls",
         "problem": "may connect here and bypasses row-level security"}]


def test_this_databases_login_roles_pass(db_url: URL, db_access: object) -> None:
    seed(db_url)
    assert_fails_only(audit(db_url, only="schema"))


@pytest.fixture
def scratch_role(db_url: URL) -> Iterator[Callable[..., str]]:
    """Create roles for one test (cluster-wide: dropped after, privileges first)."""
    made: list[str] = []

    def make(attributes: str) -> str:
        name = f"checker_test_{uuid.uuid4().hex[:12]}"
        with owner(db_url) as conn:
            conn.execute(f"CREATE ROLE {name} {attributes}")
        made.append(name)
        return name
    yield make
    with owner(db_url) as conn:
        for name in made:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"REVOKE ALL ON DATABASE {db_url.database} FROM {name}")
            conn.execute(f"DROP ROLE {name}")
