"""Tenant isolation holds against the application and worker roles themselves: raw SQL as
either role cannot switch row-level security off, see rows without the right tenant, take
another role, or change the schema, its policies or its grants.

What these tests do not claim: the application connects as the tables' owner and drops to
`taskhub_app` per transaction, so SQL the services never send (an injection) could `RESET
ROLE`; the services bind every value (see test_hostile_input). Where a statement here runs as
a role by `SET SESSION AUTHORIZATION` (which needs the superuser the test servers provide),
it is to show what a session of that role alone could do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import URL, Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from taskhub import tasks
from taskhub.db import Database, make_engine
from taskhub.principal import Principal, Worker
from taskhub.settings import APP_ROLE, WORKER_ROLE
from taskhub.uow import UnitOfWork
from tests.integration.helpers import Account, as_app, as_owner

ROLES = (APP_ROLE, WORKER_ROLE)
TENANT_TABLES = ("tasks", "task_events")
ALL_TABLES = ("users", "password_history", "auth_sessions", *TENANT_TABLES)
INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture
def two(db: Database, make_account: Callable[..., Account]) -> tuple[Principal, Principal]:
    """Tenants a and b, each with a pending task and a processing one."""
    a, b = make_account().principal, make_account().principal
    for who in (a, b):
        tasks.start(db, Worker("w"), tasks.create(db, who, "running").id)
        tasks.create(db, who, "pending")
    return a, b


@contextmanager
def as_role(engine: Engine, role: str, *, session: bool = False) -> Iterator[Connection]:
    """A transaction (rolled back) as `role`: `SET LOCAL ROLE` from the owner's session, or
    with `session` a session authorised as the role itself (superuser needed)."""
    with engine.connect() as conn:
        conn.begin()
        verb = "SESSION AUTHORIZATION" if session else "ROLE"
        conn.exec_driver_sql(f"SET LOCAL {verb} {role}")
        yield conn


def refusal(conn: Connection, sql: str) -> str:
    """The SQLSTATE `sql` fails with (inside a savepoint, so the caller can go on)."""
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(sql)
    except DBAPIError as exc:
        savepoint.rollback()
        return str(getattr(exc.orig, "sqlstate", ""))
    savepoint.rollback()
    who = conn.exec_driver_sql("SELECT current_user").scalar()
    raise AssertionError(f"{sql!r} was allowed as {who}")


def count(conn: Connection, table: str) -> int:
    return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def test_row_level_security_is_enabled_and_forced(db_engine: Engine) -> None:
    with as_owner(db_engine) as conn:
        rows = conn.execute(text(
            "SELECT relname, relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) "
            "FROM pg_class WHERE relname = ANY(:tables) AND relkind = 'r'"),
            {"tables": list(ALL_TABLES)}).all()
    forced = {name for name, enabled, force, _owner in rows if enabled and force}
    assert forced >= set(TENANT_TABLES)
    assert not {owner for *_, owner in rows} & set(ROLES)  # neither role owns a table


def test_the_roles_cannot_bypass_anything(db_engine: Engine) -> None:
    with as_owner(db_engine) as conn:
        flags = conn.execute(text(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin "
            "FROM pg_roles WHERE rolname = ANY(:roles)"),
            {"roles": list(ROLES)}).all()
        owner = conn.execute(text("SELECT tableowner FROM pg_tables "
                                  "WHERE tablename = 'tasks'")).scalar_one()
        memberships = {(role, other): conn.execute(
            text("SELECT pg_has_role(:role, :other, 'MEMBER')"),
            {"role": role, "other": other}).scalar_one()
            for role in ROLES for other in (*ROLES, owner) if role != other}
    assert len(flags) == 2
    for name, *powers in flags:
        assert powers == [False] * 5, name  # no SUPERUSER, BYPASSRLS, CREATEROLE, CREATEDB, LOGIN
    assert not any(memberships.values()), memberships


@pytest.mark.parametrize("role", ROLES)
def test_row_security_off_is_an_error_not_a_bypass(
        db_engine: Engine, two: tuple[Principal, Principal], role: str) -> None:
    a, _ = two
    with as_role(db_engine, role) as conn:
        if role == APP_ROLE:
            conn.execute(text("SELECT set_config('app.user_id', :u, true)"),
                         {"u": str(a.user_id)})
        conn.exec_driver_sql("SET LOCAL row_security = off")
        for sql in ("SELECT count(*) FROM tasks", "SELECT count(*) FROM task_events",
                    "UPDATE tasks SET title = title", "DELETE FROM task_events"):
            savepoint = conn.begin_nested()
            with pytest.raises(DBAPIError, match="would be affected by row-level security"):
                conn.exec_driver_sql(sql)
            savepoint.rollback()


def test_without_the_right_tenant_nothing_is_visible(
        db_engine: Engine, two: tuple[Principal, Principal]) -> None:
    a, _ = two
    with as_app(db_engine, a.user_id) as conn:
        assert (count(conn, "tasks"), count(conn, "task_events")) == (2, 3)
        for reset in ("RESET app.user_id", "SET LOCAL app.user_id = ''",
                      f"SET LOCAL app.user_id = '{uuid.uuid4()}'",
                      "SET LOCAL app.user_id TO DEFAULT"):
            conn.exec_driver_sql(reset)
            assert (count(conn, "tasks"), count(conn, "task_events")) == (0, 0), reset
        conn.exec_driver_sql("SET LOCAL app.user_id = 'not-a-uuid'")
        assert refusal(conn, "SELECT count(*) FROM tasks") == "22P02"  # an error, no rows


def test_a_setting_left_on_a_pooled_connection_does_not_leak(
        db_url: URL, two: tuple[Principal, Principal]) -> None:
    """A session-level SET (committed, so it outlives its transaction) of a tenant and a
    role on the one pooled connection: every unit of work sets both for itself."""
    a, b = two
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT set_config('app.user_id', :u, false), "
                              "set_config('role', :r, false)"),
                         {"u": str(a.user_id), "r": WORKER_ROLE})
        seen = {}
        for name, uow in (("anonymous", UnitOfWork.anonymous(engine)),
                          ("tenant b", UnitOfWork.tenant(engine, b)),
                          ("worker", UnitOfWork.worker(engine))):
            with uow:
                seen[name] = sorted(str(uid) for uid in uow.execute(
                    "SELECT user_id FROM tasks").scalars())
        with engine.connect() as conn:  # the leftovers are still there, outside any unit
            assert conn.exec_driver_sql("SELECT current_user").scalar() == WORKER_ROLE
    finally:
        engine.dispose()
    assert seen == {"anonymous": [], "tenant b": [str(b.user_id)] * 2,
                    "worker": sorted([str(a.user_id)] * 2 + [str(b.user_id)] * 2)}


@pytest.mark.parametrize("role", ROLES)
def test_no_schema_policy_grant_or_role_change(db_engine: Engine, role: str) -> None:
    statements = [
        *(f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY" for t in TENANT_TABLES),
        *(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY" for t in TENANT_TABLES),
        *(f"TRUNCATE {t}" for t in ALL_TABLES),
        "TRUNCATE users CASCADE",
        "DROP POLICY tasks_tenant ON tasks",
        "ALTER POLICY tasks_tenant ON tasks USING (true)",
        "CREATE POLICY everything ON tasks USING (true)",
        "ALTER TABLE tasks DISABLE TRIGGER ALL",
        "ALTER TABLE tasks OWNER TO CURRENT_USER",
        "DROP TABLE task_events",
        "CREATE TABLE planted (id int)",
        f"ALTER ROLE {role} BYPASSRLS",
        f"GRANT {WORKER_ROLE if role == APP_ROLE else APP_ROLE} TO {role}",
        "CREATE ROLE intruder",
        "SET session_replication_role = replica",
        "SELECT pg_read_file('postgresql.conf')",
    ]
    with as_role(db_engine, role) as conn:
        refused = {sql: refusal(conn, sql) for sql in statements}
        # GRANT without the grant option is a warning that grants nothing.
        conn.exec_driver_sql("GRANT ALL ON tasks TO PUBLIC")
        assert not conn.exec_driver_sql(
            "SELECT has_table_privilege('public', 'tasks', 'SELECT')").scalar()
    assert refused == dict.fromkeys(statements, INSUFFICIENT_PRIVILEGE)


@pytest.mark.parametrize("role", ROLES)
def test_a_session_of_the_role_cannot_become_another(db_engine: Engine, role: str) -> None:
    with as_owner(db_engine) as conn:
        owner = conn.execute(text("SELECT tableowner FROM pg_tables "
                                  "WHERE tablename = 'tasks'")).scalar_one()
        superuser = conn.execute(text("SELECT rolsuper FROM pg_roles "
                                      "WHERE rolname = current_user")).scalar_one()
        # Every superuser of the cluster (`postgres` on the embedded server, the image's
        # POSTGRES_USER in a container).
        superusers = list(conn.execute(text("SELECT rolname FROM pg_roles WHERE rolsuper"))
                          .scalars())
    assert superuser, "this test impersonates the role with SET SESSION AUTHORIZATION"
    others = [r for r in ROLES if r != role]
    with as_role(db_engine, role, session=True) as conn:
        for target in dict.fromkeys((owner, *others, *superusers)):
            assert refusal(conn, f'SET ROLE "{target}"') == INSUFFICIENT_PRIVILEGE
            assert refusal(conn, f"SELECT set_config('role', '{target}', true)") \
                == INSUFFICIENT_PRIVILEGE


def test_foreign_keys_do_not_reveal_another_tenants_task(
        db_engine: Engine, two: tuple[Principal, Principal]) -> None:
    """RLS does not cover foreign-key checks; the events' composite key to (task, owner)
    makes another tenant's task id fail exactly like an id that does not exist."""
    a, b = two
    with as_owner(db_engine) as conn:
        theirs = conn.execute(text("SELECT id FROM tasks WHERE user_id = :a LIMIT 1"),
                              {"a": a.user_id}).scalar_one()
    messages = []
    for task_id in (theirs, uuid.uuid4()):
        with as_app(db_engine, b.user_id) as conn, pytest.raises(DBAPIError) as caught:
            conn.execute(text("INSERT INTO task_events (task_id, user_id, to_status, actor) "
                              "VALUES (:t, :b, 'pending', 'x')"), {"t": task_id, "b": b.user_id})
        error = caught.value.orig
        messages.append((error.sqlstate, error.diag.constraint_name,  # type: ignore[union-attr]
                         str(error).replace(str(task_id), "<id>")))
    assert messages[0] == messages[1]
    assert messages[0][0] == "23503"
