"""Tenant isolation holds against the application and worker roles themselves: raw SQL as
either role cannot switch row-level security off, see rows without the right tenant, take
another role, or change the schema, its policies or its grants.

The services connect as per-database login roles (`<db>_app`, `<db>_worker`: members of
`taskhub_app` / `taskhub_worker` and of nothing else), never as the owner; so SQL the services
never send (an injection) that runs `RESET ROLE` or `SET SESSION AUTHORIZATION DEFAULT`
returns to that login role, which holds its group's privileges only. Where a statement here
runs as a group role by `SET LOCAL ROLE` or `SET SESSION AUTHORIZATION` from the owner's
session (the latter needs the superuser the test servers provide), it is to show what any
member of that role could do; a tenant is entered there with the owner's tag
(`helpers.become_app`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from checker.access import RuntimeAccess
from taskhub import tasks
from taskhub.db import Database
from taskhub.principal import Principal, Worker
from taskhub.settings import APP_ROLE, WORKER_ROLE
from taskhub.tenancy import tenant_tag
from taskhub.uow import UnitOfWork
from tests.integration.helpers import Account, as_app, as_owner, become_app

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
def as_role(engine: Engine, role: str, *, session: bool = False,
            tenant: object | None = None) -> Iterator[Connection]:
    """A transaction (rolled back) as `role`: `SET LOCAL ROLE` from the owner's session (the
    application role in `tenant` if given), or with `session` a session authorised as the
    role itself (superuser needed)."""
    with engine.connect() as conn:
        conn.begin()
        if session:
            conn.exec_driver_sql(f"SET LOCAL SESSION AUTHORIZATION {role}")
        elif role == APP_ROLE:
            become_app(conn, tenant)
        else:
            assert tenant is None, "only the application role acts for a tenant"
            conn.exec_driver_sql(f"SET LOCAL ROLE {role}")
        yield conn


def login_roles(access: RuntimeAccess) -> dict[str, str]:
    """Group role -> the login role of this database that is its member."""
    assert access.app_url.username and access.worker_url.username
    return {APP_ROLE: access.app_url.username, WORKER_ROLE: access.worker_url.username}


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


def rows_in(conn: Connection, table: str) -> int:
    return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def test_row_level_security_is_enabled_and_forced(db_engine: Engine,
                                                  db_access: RuntimeAccess) -> None:
    with as_owner(db_engine) as conn:
        rows = conn.execute(text(
            "SELECT relname, relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) "
            "FROM pg_class WHERE relname = ANY(:tables) AND relkind = 'r'"),
            {"tables": list(ALL_TABLES)}).all()
    forced = {name for name, enabled, force, _owner in rows if enabled and force}
    assert forced == set(ALL_TABLES)
    runtime = {*ROLES, *login_roles(db_access).values()}
    assert not {owner for *_, owner in rows} & runtime  # no runtime role owns a table


def test_the_roles_cannot_bypass_anything(db_engine: Engine, db_access: RuntimeAccess) -> None:
    logins = login_roles(db_access)
    with as_owner(db_engine) as conn:
        flags = {name: powers for name, *powers in conn.execute(text(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, "
            "rolcanlogin FROM pg_roles WHERE rolname = ANY(:roles)"),
            {"roles": [*ROLES, *logins.values()]}).all()}
        owner = conn.execute(text("SELECT tableowner FROM pg_tables "
                                  "WHERE tablename = 'tasks'")).scalar_one()
        everyone = [*ROLES, *logins.values(), owner]
        memberships = {(role, other): conn.execute(
            text("SELECT pg_has_role(:role, :other, 'MEMBER')"),
            {"role": role, "other": other}).scalar_one()
            for role in (*ROLES, *logins.values()) for other in everyone if role != other}
    assert set(flags) == {*ROLES, *logins.values()}
    for name in ROLES:  # no SUPERUSER, BYPASSRLS, CREATEROLE, CREATEDB, REPLICATION, LOGIN
        assert flags[name] == [False] * 6, name
    for name in logins.values():  # the same, but they log in
        assert flags[name] == [False] * 5 + [True], name
    granted = {pair for pair, member in memberships.items() if member}
    assert granted == {(login, group) for group, login in logins.items()}, memberships


@pytest.mark.parametrize("role", ROLES)
def test_row_security_off_is_an_error_not_a_bypass(
        db_engine: Engine, two: tuple[Principal, Principal], role: str) -> None:
    a, _ = two
    tenant = a.user_id if role == APP_ROLE else None
    with as_role(db_engine, role, tenant=tenant) as conn:
        conn.exec_driver_sql("SET LOCAL row_security = off")
        statements = ["SELECT count(*) FROM tasks", "SELECT count(*) FROM task_events",
                      "UPDATE tasks SET title = title", "DELETE FROM task_events"]
        if role == APP_ROLE:
            statements += ["SELECT count(*) FROM users", "SELECT count(*) FROM auth_sessions",
                           "SELECT count(*) FROM password_history",
                           "DELETE FROM password_history"]
        for sql in statements:
            savepoint = conn.begin_nested()
            with pytest.raises(DBAPIError, match="would be affected by row-level security"):
                conn.exec_driver_sql(sql)
            savepoint.rollback()


def test_without_the_right_tenant_nothing_is_visible(
        db_engine: Engine, two: tuple[Principal, Principal]) -> None:
    """The tenant is what `taskhub_enter_tenant` accepted in this transaction: resetting or
    rewriting the settings it recorded (to another tenant's id, too), or the legacy
    `app.user_id`, shows nothing, and never the other tenant's rows."""
    a, b = two
    everything = ("tasks", "task_events", "users", "auth_sessions", "password_history")

    def visible(conn: Connection) -> tuple[int, ...]:
        return tuple(rows_in(conn, table) for table in everything)

    forgeries = [
        ("RESET taskhub.tenant",),
        ("SET LOCAL taskhub.tenant = ''",),
        ("SET LOCAL taskhub.tenant TO DEFAULT",),
        (f"SET LOCAL taskhub.tenant = '{b.user_id}'",),  # a's proof, b's id
        (f"SET LOCAL taskhub.tenant = '{uuid.uuid4()}'",),
        ("SET LOCAL taskhub.tenant = 'not-a-uuid'",),
        ("RESET taskhub.tenant_proof",),
        ("SET LOCAL taskhub.tenant_proof = 'forged'",),
        ("RESET taskhub.tenant", f"SET LOCAL app.user_id = '{a.user_id}'"),
    ]
    with as_app(db_engine, a.user_id) as conn:
        own = visible(conn)
        assert own == (2, 3, 1, 1, 1)
        for statements in forgeries:
            savepoint = conn.begin_nested()
            for sql in statements:
                conn.exec_driver_sql(sql)
            assert visible(conn) == (0,) * len(everything), statements
            savepoint.rollback()  # the settings go back to what the tenant was entered with
            assert visible(conn) == own


def test_a_setting_left_on_a_pooled_connection_does_not_leak(
        db_access: RuntimeAccess, two: tuple[Principal, Principal]) -> None:
    """Session-level SETs (committed, so they outlive their transaction) on the one pooled
    connection of each pool: tenant a with the proof a's transaction was given, the legacy
    `app.user_id`, and `row_security` off. Every unit of work enters its own tenant (or none)
    in a transaction that proof does not cover, and pins `row_security` for itself. (A role
    cannot be left behind: the login roles may not SET ROLE, see below.)"""
    a, b = two
    db = db_access.connect(pool_size=1, max_overflow=0)

    def plant(engine: Engine) -> int:
        with engine.begin() as conn:
            conn.exec_driver_sql("BEGIN")  # the runtime pools autocommit: a real transaction
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            if engine is db.app:  # a proof that is valid, in this transaction only
                conn.execute(text("SELECT public.taskhub_enter_tenant(:u, :tag)"),
                             {"u": a.user_id, "tag": tenant_tag(db.tenant_key, a.user_id, pid)})
            conn.execute(text(
                "SELECT set_config('taskhub.tenant', :u, false), "
                "       set_config('taskhub.tenant_proof', "
                "                  coalesce(current_setting('taskhub.tenant_proof', true), ''), "
                "                  false), "
                "       set_config('app.user_id', :u, false), "
                "       set_config('row_security', 'off', false)"), {"u": str(a.user_id)})
            if engine is db.app:
                tenant = conn.execute(text("SELECT public.taskhub_tenant()")).scalar_one()
                assert tenant == a.user_id  # what was copied worked where it was given
            conn.exec_driver_sql("COMMIT")
        with engine.connect() as conn:  # the leftovers are there, outside any unit
            left = conn.execute(text(
                "SELECT pg_backend_pid(), current_setting('taskhub.tenant'), "
                "current_setting('app.user_id'), current_setting('row_security')")).one()
        assert tuple(left) == (pid, str(a.user_id), str(a.user_id), "off")
        return int(pid)

    units: list[tuple[str, Engine, Callable[[], UnitOfWork]]] = [
        ("anonymous", db.app, lambda: UnitOfWork.anonymous(db)),
        ("tenant b", db.app, lambda: UnitOfWork.tenant(db, b)),
        ("worker", db.worker, lambda: UnitOfWork.worker(db)),
    ]
    seen = {}
    try:
        for name, engine, unit in units:
            pid = plant(engine)
            with unit() as uow:
                assert uow.execute("SELECT pg_backend_pid()").scalar_one() == pid  # the same
                seen[name] = sorted(str(uid) for uid in uow.execute(
                    "SELECT user_id FROM tasks").scalars())
    finally:
        db.dispose()
    assert seen == {"anonymous": [], "tenant b": [str(b.user_id)] * 2,
                    "worker": sorted([str(a.user_id)] * 2 + [str(b.user_id)] * 2)}


@pytest.mark.parametrize("role", ROLES)
def test_no_schema_policy_grant_or_role_change(db_engine: Engine, role: str) -> None:
    statements = [
        *(f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY" for t in ALL_TABLES),
        *(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY" for t in ALL_TABLES),
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


@pytest.mark.parametrize("role", ROLES)
def test_the_login_role_cannot_become_another(db: Database, db_access: RuntimeAccess,
                                              db_engine: Engine, role: str) -> None:
    """The services' own sessions: their login role may take no other role (the owner, a
    superuser, the other runtime roles; on PostgreSQL 16+ not even its own group, a
    membership without SET), and what returns from a role change returns to it."""
    logins = login_roles(db_access)
    with as_owner(db_engine) as conn:
        owner = conn.execute(text("SELECT tableowner FROM pg_tables "
                                  "WHERE tablename = 'tasks'")).scalar_one()
        superusers = list(conn.execute(text("SELECT rolname FROM pg_roles WHERE rolsuper"))
                          .scalars())
        modern = int(conn.execute(text("SHOW server_version_num")).scalar_one()) >= 160000
    others = [r for r in (*ROLES, *logins.values()) if r not in (role, logins[role])]
    targets = dict.fromkeys((owner, *others, *superusers, *([role] if modern else [])))
    engine = db.app if role == APP_ROLE else db.worker
    with engine.connect() as conn:
        conn.begin()
        conn.exec_driver_sql("BEGIN")  # the runtime pools autocommit: a real transaction
        assert conn.exec_driver_sql("SELECT current_user").scalar() == logins[role]
        for target in targets:
            assert refusal(conn, f'SET ROLE "{target}"') == INSUFFICIENT_PRIVILEGE, target
            assert refusal(conn, f"SELECT set_config('role', '{target}', true)") \
                == INSUFFICIENT_PRIVILEGE, target
            assert refusal(conn, f'SET SESSION AUTHORIZATION "{target}"') \
                == INSUFFICIENT_PRIVILEGE, target
        for back in ("RESET ROLE", "SET ROLE NONE", "SET SESSION AUTHORIZATION DEFAULT",
                     "RESET SESSION AUTHORIZATION"):
            conn.exec_driver_sql(back)
            who = conn.exec_driver_sql("SELECT current_user, session_user").one()
            assert tuple(who) == (logins[role], logins[role]), back
        conn.exec_driver_sql("ROLLBACK")
        conn.rollback()


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
