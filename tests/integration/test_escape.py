"""Escape attempts: SQL injected into the application's own units of work reaches nothing
beyond that unit's tenant (or, for a worker, beyond the worker's grants).

Every attempt runs inside `UnitOfWork.tenant(...)` as tenant A (the attacker) or inside
`UnitOfWork.worker(...)`, exactly as a service runs its statements, and is committed when it
did not fail. Each must either be refused by PostgreSQL or see only A's own rows; afterwards
B's rows (read by the owner) are exactly as before, none of B's secrets (id, email, password
hash, session and task ids, titles) appears in anything an attempt returned, the runtime roles
are as confined as before, and the per-test audit (grants matrix included) stays clean.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, text

from taskhub import auth, tasks
from taskhub.db import Database
from taskhub.errors import StorageError
from taskhub.principal import Worker
from taskhub.uow import UnitOfWork
from tests.integration.helpers import Account, as_owner

TABLES = ("users", "password_history", "auth_sessions", "tasks", "task_events")


@dataclass(frozen=True)
class Attempt:
    """Statements run in one unit of work; `refused`: PostgreSQL must refuse one of them."""

    name: str
    statements: tuple[str, ...]
    refused: bool = True
    worker: bool = False
    commit: bool = True
    harmless: Callable[[list[tuple[Any, ...]]], bool] | None = None
    """For statements PostgreSQL may answer with a warning: what their rows must show."""


def _t(name: str, *statements: str, refused: bool = True, commit: bool = True,
       harmless: Callable[[list[tuple[Any, ...]]], bool] | None = None) -> Attempt:
    return Attempt(name, statements, refused, False, commit, harmless)


def _w(name: str, *statements: str, refused: bool = True) -> Attempt:
    return Attempt(name, statements, refused, True)


SELECT_ALL = "SELECT t.*, u.email, u.password_hash FROM tasks t JOIN users u ON u.id = t.user_id"
ATTEMPTS = (
    # role switches: the login role is the ceiling
    _t("reset_role", "RESET ROLE", SELECT_ALL, refused=False),
    _t("set_role_owner", "SET ROLE {owner}"),
    _t("set_role_worker", "SET ROLE taskhub_worker"),
    _t("set_config_role_owner", "SELECT set_config('role', '{owner}', true)"),
    _t("set_config_role_none", "SELECT set_config('role', 'none', true)", SELECT_ALL,
       refused=False),
    _t("session_authorization_default", "SET SESSION AUTHORIZATION DEFAULT", SELECT_ALL,
       refused=False),
    _t("session_authorization_owner", "SET SESSION AUTHORIZATION {owner}"),
    _t("do_block_role_switch", "DO $$ BEGIN EXECUTE 'SET ROLE {owner}'; END $$"),
    _t("set_role_pg_read_server_files", "SET ROLE pg_read_server_files"),
    _t("grant_worker_to_self", "GRANT taskhub_worker TO CURRENT_USER"),
    _t("grant_owner_to_self", "GRANT {owner} TO CURRENT_USER"),
    _t("alter_self_superuser", "ALTER ROLE CURRENT_USER SUPERUSER"),
    _t("alter_self_bypassrls", "ALTER ROLE CURRENT_USER BYPASSRLS"),
    _t("create_role", "CREATE ROLE intruder LOGIN SUPERUSER"),
    # forging the tenant
    # (set_config returns what it set: counted, so the victim's id it was given is not "seen")
    _t("legacy_app_user_id", "SELECT count(set_config('app.user_id', :victim, false))",
       SELECT_ALL, refused=False),
    _t("forged_tenant_setting", "SELECT count(set_config('taskhub.tenant', :victim, true))",
       SELECT_ALL, refused=False),
    _t("forged_tenant_with_own_proof",
       "SELECT count(set_config('taskhub.tenant', :victim, false))",
       "SELECT count(set_config('taskhub.tenant_proof', "
       "current_setting('taskhub.tenant_proof'), false))", SELECT_ALL, refused=False),
    _t("enter_victim_bad_tag", "SELECT taskhub_enter_tenant(:victim, '\\x00'::bytea)"),
    _t("enter_victim_random_tag",
       "SELECT taskhub_enter_tenant(:victim, sha256(convert_to(:victim, 'UTF8')))"),
    _t("enter_victim_null_tag", "SELECT taskhub_enter_tenant(:victim, NULL)"),
    _t("row_security_off", "SET row_security = off", SELECT_ALL),
    _t("replication_role", "SET session_replication_role = replica"),
    # every table: other tenants' rows
    _t("select_users", "SELECT * FROM users", refused=False),
    _t("select_victim_by_id", "SELECT email, password_hash FROM users WHERE id = :victim",
       refused=False),
    _t("select_sessions", "SELECT * FROM auth_sessions", refused=False),
    _t("select_history", "SELECT * FROM password_history", refused=False),
    _t("select_tasks", "SELECT * FROM tasks WHERE user_id = :victim", refused=False),
    _t("select_events", "SELECT * FROM task_events", refused=False),
    _t("login_lookup_by_email",
       "SELECT * FROM taskhub_login_lookup(:victim_email, '\\x00'::bytea)"),
    _t("overwrite_victim_hash",
       "UPDATE users SET password_hash = 'stolen' WHERE id = :victim RETURNING id",
       refused=False),
    _t("unrevoke_victim_sessions",
       "UPDATE auth_sessions SET revoked_at = NULL WHERE user_id = :victim RETURNING id",
       refused=False),
    _t("delete_all_users", "DELETE FROM users WHERE id <> :me RETURNING id", refused=False),
    _t("delete_victim_tasks", "DELETE FROM tasks WHERE user_id = :victim RETURNING id",
       refused=False),
    _t("update_victim_tasks", "UPDATE tasks SET title = 'mine' WHERE user_id = :victim "
       "RETURNING id", refused=False),
    _t("steal_task_owner", "UPDATE tasks SET user_id = :me WHERE user_id = :victim"),
    _t("move_user_id", "UPDATE users SET id = :victim WHERE id = :me"),
    _t("plant_task", "INSERT INTO tasks (user_id, title) VALUES (:victim, 'planted')"),
    _t("plant_event", "INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
       "VALUES (:victim_task, :victim, NULL, 'pending', 'x')"),
    _t("plant_session", "INSERT INTO auth_sessions (user_id, expires_at) "
       "VALUES (:victim, now() + interval '1 hour')"),
    _t("plant_history", "INSERT INTO password_history (user_id, password_hash) "
       "VALUES (:victim, 'x')"),
    _t("plant_user", "INSERT INTO users (id, email, password_hash) "
       "VALUES (gen_random_uuid(), 'planted@example.com', 'x')"),
    _t("update_events", "UPDATE task_events SET actor = 'x'"),
    _t("delete_events", "DELETE FROM task_events"),
    _t("truncate_tasks", "TRUNCATE tasks"),
    _t("truncate_users_cascade", "TRUNCATE users CASCADE"),
    _t("lock_tasks", "LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE", "SELECT * FROM tasks",
       refused=False, commit=False),
    # DDL, TEMP, functions
    _t("create_table", "CREATE TABLE public.loot (x text)"),
    _t("create_temp_table", "CREATE TEMP TABLE loot (x text)"),
    _t("shadow_users_in_pg_temp", "CREATE TABLE pg_temp.users (id uuid, email text, "
       "password_hash text)"),
    _t("create_view", "CREATE VIEW public.all_tasks AS SELECT * FROM tasks"),
    _t("create_function", "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
    _t("create_schema", "CREATE SCHEMA loot"),
    _t("create_extension", "CREATE EXTENSION dblink"),
    _t("disable_rls", "ALTER TABLE tasks DISABLE ROW LEVEL SECURITY"),
    _t("no_force_rls", "ALTER TABLE users NO FORCE ROW LEVEL SECURITY"),
    _t("drop_policy", "DROP POLICY tasks_tenant ON tasks"),
    _t("create_policy", "CREATE POLICY leak ON tasks FOR SELECT TO PUBLIC USING (true)"),
    # (a warning, "no privileges were granted"; the audit's grants matrix proves it)
    _t("grant_public", "GRANT SELECT ON tasks TO PUBLIC", refused=False),
    _t("comment_on_table", "COMMENT ON TABLE tasks IS 'mine'"),
    _t("reindex", "REINDEX TABLE tasks"),
    _t("disable_trigger", "ALTER TABLE tasks DISABLE TRIGGER ALL"),
    # the private schema and the key
    _t("read_tenant_key", "SELECT * FROM taskhub_private.tenant_key"),
    _t("make_victim_tag", "SELECT taskhub_private.tenant_tag(:victim)"),
    _t("install_own_key", "SELECT taskhub_private.install_tenant_key('\\x" + "00" * 32 + "')"),
    # the server: files, programs, large objects, catalogs
    _t("copy_to_program", "COPY (SELECT 1) TO PROGRAM 'id'"),
    _t("copy_from_program", "COPY tasks (title) FROM PROGRAM 'id'"),
    _t("copy_to_file", "COPY (SELECT 1) TO '/tmp/taskhub-escape'"),
    _t("copy_table_to_stdout", "COPY tasks TO STDOUT"),
    _t("copy_from_stdin", "COPY tasks (user_id, title) FROM STDIN"),
    _t("copy_from_file", "COPY tasks (title) FROM '/etc/passwd'"),
    _t("pg_read_file", "SELECT pg_read_file('/etc/passwd')"),
    _t("pg_read_binary_file", "SELECT pg_read_binary_file('/etc/passwd')"),
    _t("pg_ls_dir", "SELECT pg_ls_dir('.')"),
    _t("lo_import", "SELECT lo_import('/etc/passwd')"),
    _t("lo_create", "SELECT lo_create(0)"),
    _t("lo_from_bytea", "SELECT lo_from_bytea(0, 'x')"),
    _t("pg_authid", "SELECT rolname, rolpassword FROM pg_authid"),
    _t("pg_shadow", "SELECT * FROM pg_shadow"),
    _t("data_directory", "SELECT current_setting('data_directory')"),
    _t("hba_file", "SHOW hba_file"),
    _t("reload_conf", "SELECT pg_reload_conf()"),
    _t("terminate_other_roles", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
       "WHERE usename IS DISTINCT FROM current_user AND usename IS NOT NULL",
       refused=False, harmless=lambda rows: not any(r[0] for r in rows)),
    _t("pg_stat_activity_queries", "SELECT query FROM pg_stat_activity", refused=False),
    # workers: status columns of tasks and events only
    _w("worker_select_users", "SELECT * FROM users"),
    _w("worker_select_sessions", "SELECT * FROM auth_sessions"),
    _w("worker_select_history", "SELECT * FROM password_history"),
    _w("worker_insert_task", "INSERT INTO tasks (user_id, title) VALUES (:victim, 'planted')"),
    _w("worker_delete_tasks", "DELETE FROM tasks"),
    _w("worker_update_title", "UPDATE tasks SET title = 'mine'"),
    _w("worker_update_owner", "UPDATE tasks SET user_id = :me"),
    _w("worker_delete_events", "DELETE FROM task_events"),
    _w("worker_truncate", "TRUNCATE task_events"),
    _w("worker_enter_tenant", "SELECT taskhub_enter_tenant(:victim, '\\x00'::bytea)"),
    _w("worker_login_lookup", "SELECT * FROM taskhub_login_lookup(:victim_email, NULL)"),
    _w("worker_set_role_app", "SET ROLE taskhub_app"),
    _w("worker_set_role_owner", "SET ROLE {owner}"),
    _w("worker_reset_role", "RESET ROLE", "SELECT * FROM users"),
    _w("worker_create_temp", "CREATE TEMP TABLE loot (x text)"),
    _w("worker_copy_program", "COPY (SELECT 1) TO PROGRAM 'id'"),
    _w("worker_copy_users_out", "COPY users TO STDOUT"),
    _w("worker_read_file", "SELECT pg_read_file('/etc/passwd')"),
    _w("worker_read_key", "SELECT * FROM taskhub_private.tenant_key"),
    _w("worker_create_table", "CREATE TABLE public.loot (x text)"),
    _w("worker_disable_rls", "ALTER TABLE tasks DISABLE ROW LEVEL SECURITY"),
    _w("worker_lo_create", "SELECT lo_create(0)"),
    _w("worker_grant_app_to_self", "GRANT taskhub_app TO CURRENT_USER"),
)


@dataclass(frozen=True)
class World:
    """Tenant A (the attacker) and tenant B (the victim, with something in every table)."""

    a: Account
    b: Account
    params: dict[str, Any]
    secrets: tuple[str, ...]
    owner: str


def _rows_of(engine: Engine, user_id: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `user_id` in every table, as the owner."""
    with as_owner(engine) as conn:
        return {table: sorted(tuple(map(str, row)) for row in conn.execute(text(
                    f"SELECT * FROM {table} WHERE {'id' if table == 'users' else 'user_id'} "
                    "= :u"), {"u": user_id}))
                for table in TABLES}


@pytest.fixture
def world(db: Database, db_engine: Engine, settings: Any,
          make_account: Callable[..., Account]) -> World:
    a, b = make_account(), make_account()
    pending = tasks.create(db, b.principal, "victim's pending secret-title-1")
    started = tasks.start(db, Worker("w"), tasks.create(db, b.principal, "secret-title-2").id)
    tasks.create(db, a.principal, "attacker's own")
    auth.logout(db, b.principal)  # a revoked session of B
    auth.login(db, settings, b.user.email, b.password)  # and a live one
    victim = _rows_of(db_engine, b.user.id)
    secrets = {str(b.user.id), b.user.email, pending.title, started.title}
    secrets |= {value for rows in victim.values() for row in rows for value in row
                if len(value) >= 20}  # ids, hashes, titles (not statuses or booleans)
    params = {"victim": str(b.user.id), "victim_email": b.user.email,
              "victim_task": str(pending.id), "me": str(a.user.id)}
    assert db_engine.url.username is not None
    return World(a, b, params, tuple(sorted(secrets)), db_engine.url.username)


def run(db: Database, world: World, attempt: Attempt) -> tuple[bool, list[tuple[Any, ...]]]:
    """Run the attempt's statements in one unit of work; (refused, rows returned)."""
    seen: list[tuple[Any, ...]] = []
    uow = UnitOfWork.worker(db) if attempt.worker else UnitOfWork.tenant(db, world.a.principal)
    try:
        with uow:
            for statement in attempt.statements:
                result = uow.execute(statement.replace("{owner}", world.owner), world.params)
                if result.returns_rows:
                    seen.extend(tuple(row) for row in result.all())
            if attempt.commit:
                uow.commit()
    except StorageError:
        return True, seen
    return False, seen


def _confinement(engine: Engine) -> list[tuple[Any, ...]]:
    """The runtime login roles' attributes and memberships, and what exists in our schemas."""
    with as_owner(engine) as conn:
        return [tuple(row) for row in conn.execute(text("""
            SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
                   r.rolreplication,
                   ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g
                         ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1)
            FROM pg_roles r WHERE r.rolname LIKE current_database() || '\\_%'
            UNION ALL
            SELECT 'objects', NULL, NULL, NULL, NULL, NULL, ARRAY[
                (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)::text,
                (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace)::text,
                (SELECT count(*) FROM pg_policy)::text,
                (SELECT count(*) FROM pg_largeobject_metadata)::text,
                (SELECT count(*) FROM pg_namespace)::text]
            ORDER BY 1"""))]


def test_there_are_enough_attempts() -> None:
    assert len(ATTEMPTS) >= 50
    assert len({a.name for a in ATTEMPTS}) == len(ATTEMPTS)


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[a.name for a in ATTEMPTS])
def test_escape_attempt(db: Database, db_engine: Engine, world: World, attempt: Attempt) -> None:
    victim_before, confined_before = _rows_of(db_engine, world.b.user.id), _confinement(db_engine)

    refused, seen = run(db, world, attempt)

    if attempt.refused:
        assert refused, f"{attempt.name} was not refused"
    if attempt.harmless is not None:
        assert refused or attempt.harmless(seen), f"{attempt.name} did something: {seen}"
    shown = " ".join(str(value) for row in seen for value in row)
    leaked = [secret for secret in world.secrets if secret in shown]
    assert not leaked, f"{attempt.name} saw the victim's {leaked}"
    assert _rows_of(db_engine, world.b.user.id) == victim_before
    assert _confinement(db_engine) == confined_before
    # The victim's services still work, as themselves only.
    assert {t.user_id for t in tasks.list_tasks(db, world.b.principal)} == {world.b.user.id}


@pytest.mark.checker_no_audit  # without a key the audit cannot impersonate tenants either
def test_without_a_key_no_tenant_can_be_entered_or_forged(
        db: Database, db_engine: Engine, world: World) -> None:
    """Fail closed: a database whose key row is gone admits no tenant, forged or proven."""
    with as_owner(db_engine) as conn:
        conn.execute(text("DELETE FROM taskhub_private.tenant_key"))
    with pytest.raises(StorageError, match="no tenant key"):
        tasks.list_tasks(db, world.b.principal)
    forged = _t("forged_without_key",
                "SELECT count(set_config('taskhub.tenant', :victim, true))",
                "SELECT count(set_config('taskhub.tenant_proof', 'AAAA', true))",
                SELECT_ALL, refused=False)
    with UnitOfWork.anonymous(db) as uow:  # no tenant entered: nothing to refuse
        for statement in forged.statements:
            seen = uow.execute(statement, world.params).all()
        assert seen == []
        assert uow.execute("SELECT taskhub_tenant()").scalar_one() is None
