"""Runtime login roles: confined, per database, never printed, gone with their database (and
swept when a killed run left them)."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL

from checker import access
from checker.access import RuntimeAccess
from checker.janitor import DatabaseJanitor
from taskhub.db import libpq_url
from tests.support import eventually

INSUFFICIENT_PRIVILEGE = "42501"


def _admin(janitor: DatabaseJanitor) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(janitor.server_url), autocommit=True)


def _roles(janitor: DatabaseJanitor, database: str) -> list[tuple[object, ...]]:
    with _admin(janitor) as conn:
        return conn.execute("""
            SELECT r.rolname, r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolcreatedb,
                   r.rolbypassrls, r.rolreplication, r.rolinherit,
                   ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g
                         ON g.oid = m.roleid WHERE m.member = r.oid),
                   left(a.rolpassword, 19)
            FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid
            WHERE r.rolname IN (%s, %s) ORDER BY 1""",
            (f"{database}_app", f"{database}_worker")).fetchall()


def test_each_database_gets_two_confined_login_roles(pg_janitor: DatabaseJanitor,
                                                     db_url: URL, db_access: RuntimeAccess) -> None:
    name = db_url.database
    assert _roles(pg_janitor, str(name)) == [
        (f"{name}_app", True, False, False, False, False, False, True, ["taskhub_app"],
         "SCRAM-SHA-256$4096:"),
        (f"{name}_worker", True, False, False, False, False, False, True, ["taskhub_worker"],
         "SCRAM-SHA-256$4096:")]
    for url in (db_access.app_url, db_access.worker_url):
        with psycopg.connect(libpq_url(url)) as conn:
            row = conn.execute("SELECT current_user, session_user, "
                               "has_database_privilege(current_database(), 'TEMPORARY'), "
                               "has_database_privilege(current_database(), 'CREATE')").fetchone()
            assert row == (url.username, url.username, False, False)


def test_the_group_membership_grants_nothing_to_switch_to(db_access: RuntimeAccess) -> None:
    """On PostgreSQL 16+ the membership has no SET option, so not even the group can be taken;
    before 16 (no membership options) it can, and the group holds exactly what the login role
    already inherits: the same privilege on everything, and no way further."""
    with psycopg.connect(libpq_url(db_access.app_url)) as conn:
        probe = ("SELECT has_table_privilege('tasks', 'DELETE'), "
                 "has_table_privilege('auth_sessions', 'DELETE'), "
                 "has_function_privilege('taskhub_enter_tenant(uuid, bytea)', 'EXECUTE')")
        inherited = conn.execute(probe).fetchone()
        if conn.info.server_version >= 160000:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SET ROLE taskhub_app")
            return
        conn.execute("SET ROLE taskhub_app")
        assert conn.execute(probe).fetchone() == inherited == (True, False, True)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET ROLE taskhub_worker")


def test_a_runtime_role_cannot_connect_to_another_database(
        pg_janitor: DatabaseJanitor, pg_template: str, db_access: RuntimeAccess) -> None:
    with pg_janitor.ephemeral(template=pg_template) as other:
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(libpq_url(db_access.app_url.set(database=other.database)),
                            connect_timeout=10)
        postgres = db_access.worker_url.set(database="postgres")
        with psycopg.connect(libpq_url(postgres)) as conn:  # PUBLIC may; it holds nothing of ours
            assert conn.execute("SELECT to_regclass('tasks')").fetchone() == (None,)


def test_passwords_and_key_are_never_in_a_repr(db_access: RuntimeAccess) -> None:
    database = db_access.connect()
    try:
        shown = repr(db_access) + repr(database) + str(database.app.url)
    finally:
        database.dispose()
    for secret in (db_access.app_url.password, db_access.worker_url.password,
                   db_access.tenant_key.hex()):
        assert secret and str(secret) not in shown


def test_roles_go_with_their_database(pg_janitor: DatabaseJanitor, pg_template: str) -> None:
    url = pg_janitor.create(template=pg_template)
    assert url.database is not None
    pg_janitor.runtime_access(url.database)
    assert len(_roles(pg_janitor, url.database)) == 2
    pg_janitor.drop(url.database)
    assert _roles(pg_janitor, url.database) == []


def test_roles_whose_database_is_gone_are_swept(pg_janitor: DatabaseJanitor,
                                               db_access: RuntimeAccess) -> None:
    """What a run killed between its DROP DATABASE and DROP ROLE leaves; the live roles of a
    database that still exists are kept."""
    orphan = DatabaseJanitor.new_name() + "_app"
    with _admin(pg_janitor) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(orphan)))
        assert orphan in access.orphaned_roles(conn, "checker_")
    pg_janitor.sweep_stale()  # (another session's sweep may have been first: fine)
    with _admin(pg_janitor) as conn:
        left = {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}
    assert orphan not in left
    assert {db_access.app_url.username, db_access.worker_url.username} <= left


def test_a_sigkilled_run_on_a_dsn_server_leaves_no_database_and_no_role(
        pg_janitor: DatabaseJanitor) -> None:
    """`checker db up --dsn` creates a database and its two roles; killed outright, its
    reaper drops all three."""
    dsn = libpq_url(pg_janitor.server_url)
    proc = subprocess.Popen([sys.executable, "-m", "checker", "db", "up", "--dsn", dsn],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        name = proc.stdout.readline().strip().rsplit("/", 1)[-1]
        assert name.startswith("checker_"), name
        assert len(_roles(pg_janitor, name)) == 2
        proc.kill()
        proc.wait(timeout=30)

        def gone() -> bool:
            with _admin(pg_janitor) as conn:
                db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (name,)).fetchone()
            return db is None and _roles(pg_janitor, name) == []

        assert eventually(gone)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
