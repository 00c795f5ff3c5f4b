"""Nothing persists on a pooled connection: what one unit of work leaves on its session
(settings, cursors, listeners, advisory locks, the tenant settings, role defaults it gave
itself) is gone, or has no effect, for the next one on the same connection; one that leaves a
statement prepared from SQL fails, keeps none of its writes and takes its connection with it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text

from checker.access import RuntimeAccess
from taskhub import auth, tasks
from taskhub.db import Database
from taskhub.errors import InvalidCredentials, StorageError
from taskhub.settings import Settings
from taskhub.uow import UnitOfWork
from tests.integration.helpers import Account, as_owner

LEFT_BEHIND = (
    "DECLARE kept CURSOR WITH HOLD FOR SELECT id FROM public.tasks",
    "SELECT set_config('x.note', 'left by a', false)",
    "SELECT set_config('search_path', 'pg_catalog', false)",
    "SELECT set_config('row_security', 'off', false)",
    "SELECT set_config('synchronous_commit', 'off', false)",
    "SELECT set_config('statement_timeout', '1', false)",
    "SELECT set_config('taskhub.tenant', current_setting('taskhub.tenant'), false)",
    "SELECT set_config('taskhub.tenant_proof', current_setting('taskhub.tenant_proof'), false)",
    "SELECT set_config('app.user_id', current_setting('taskhub.tenant'), false)",
    "LISTEN left_behind",
    "SELECT pg_advisory_lock(42)",
)
SEEN = text("""
    SELECT pg_backend_pid() AS pid, current_setting('x.note', true) AS note,
           current_setting('search_path') AS search_path,
           current_setting('row_security') AS row_security,
           current_setting('synchronous_commit') AS synchronous_commit,
           current_setting('statement_timeout') AS statement_timeout,
           public.taskhub_tenant() AS tenant,
           (SELECT count(*) FROM pg_prepared_statements WHERE from_sql) AS prepared,
           (SELECT count(*) FROM pg_cursors) AS cursors,
           (SELECT count(*) FROM pg_listening_channels()) AS listening,
           (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
              AND pid = pg_backend_pid()) AS advisory_locks,
           (SELECT count(*) FROM tasks) AS tasks_seen""")


@pytest.fixture
def one_connection(db_access: RuntimeAccess) -> Iterator[Database]:
    """A Database whose tenant pool holds exactly one connection: every unit of work reuses it."""
    database = db_access.connect(pool_size=1, max_overflow=0)
    yield database
    database.dispose()


def _seen(db: Database, account: Account) -> dict[str, object]:
    with UnitOfWork.tenant(db, account.principal) as uow:
        return dict(uow.execute(str(SEEN.text)).one()._mapping)


def test_a_later_unit_of_work_sees_nothing_an_earlier_one_left(
        one_connection: Database, make_account: Callable[..., Account]) -> None:
    a, b = make_account(), make_account()
    tasks.create(one_connection, a.principal, "a's")
    tasks.create(one_connection, b.principal, "b's")
    clean = _seen(one_connection, b)
    with UnitOfWork.tenant(one_connection, a.principal) as uow:
        pid = uow.execute("SELECT pg_backend_pid()").scalar_one()
        for statement in LEFT_BEHIND:
            uow.execute(statement)
        uow.commit()

    after = _seen(one_connection, b)

    assert after["pid"] == pid == clean["pid"]  # the same connection, reused
    # A custom setting, once defined, reads '' after RESET ALL (its value is gone).
    assert {**after, "note": None} == {**clean, "note": None}
    assert after["tenant"] == b.user.id and after["tasks_seen"] == 1
    assert (after["note"], after["prepared"], after["cursors"], after["listening"],
            after["advisory_locks"]) in (("", 0, 0, 0, 0), (None, 0, 0, 0, 0))
    assert (after["search_path"], after["row_security"], after["synchronous_commit"]) == (
        "public, pg_temp", "on", "on")


def test_role_defaults_a_role_gives_itself_do_not_apply(
        db: Database, db_engine: Engine, make_account: Callable[..., Account]) -> None:
    """`ALTER ROLE CURRENT_USER SET ...` is allowed to any role and lasts for its new
    connections: the settings that matter are pinned in every transaction all the same."""
    a = make_account()
    with UnitOfWork.tenant(db, a.principal) as uow:
        for setting in ("search_path = 'pg_catalog'", "row_security = off",
                        "synchronous_commit = off"):
            uow.execute(f"ALTER ROLE CURRENT_USER SET {setting}")
        uow.commit()
    db.dispose()  # new connections pick the role defaults up
    try:
        seen = _seen(db, a)
        assert (seen["search_path"], seen["row_security"], seen["synchronous_commit"]) == (
            "public, pg_temp", "on", "on")
        assert seen["tenant"] == a.user.id and seen["tasks_seen"] == 0
    finally:
        with as_owner(db_engine) as conn:
            role = conn.execute(text("SELECT current_database() || '_app'")).scalar_one()
            conn.exec_driver_sql(f'ALTER ROLE "{role}" RESET ALL')


def test_the_temp_table_shadow_attack_is_refused(
        one_connection: Database, settings: Settings,
        make_account: Callable[..., Account]) -> None:
    """The outside review's attack: a committed unit of work created `pg_temp.users` holding
    the victim's row with the attacker's hash, so a later login on that pooled connection
    signed in as the victim. No runtime role may create a temporary table."""
    attacker, victim = make_account(), make_account()
    with pytest.raises(StorageError, match="permission denied"), \
            UnitOfWork.tenant(one_connection, attacker.principal) as uow:
        uow.execute("CREATE TEMP TABLE users (LIKE public.users)")
    with pytest.raises(InvalidCredentials):
        auth.login(one_connection, settings, victim.user.email, attacker.password)


def test_a_prepared_statement_left_from_sql_fails_the_unit_and_its_connection(
        one_connection: Database, db_engine: Engine,
        make_account: Callable[..., Account]) -> None:
    """The substitution attack: deallocate the driver's prepared statements and prepare
    others under their names, so the next unit of work (another tenant) would run them."""
    a, b = make_account(), make_account()
    mine = tasks.create(one_connection, b.principal, "b's")
    for _ in range(6):  # psycopg prepares a statement at its 5th execution (in units that
        tasks.update(one_connection, b.principal, mine.id, title="b's")  # commit: a ROLLBACK
        # makes psycopg forget its statements)
    with UnitOfWork.tenant(one_connection, a.principal) as uow:
        pid = uow.execute("SELECT pg_backend_pid()").scalar_one()
        names = uow.execute("SELECT name FROM pg_prepared_statements "
                            "WHERE NOT from_sql").scalars().all()
        assert names  # the driver's own, the target
        for name in names:
            uow.execute(f'DEALLOCATE "{name}"')
            uow.execute(f'PREPARE "{name}" AS SELECT 1')
        uow.execute("UPDATE tasks SET title = 'a was here' WHERE user_id = :me",
                    {"me": a.user.id})
        with pytest.raises(StorageError, match="left a statement prepared from SQL"):
            uow.commit()

    assert [t.title for t in tasks.list_tasks(one_connection, b.principal)] == ["b's"]
    after = _seen(one_connection, b)
    assert after["pid"] != pid and after["prepared"] == 0  # a new connection, nothing left
    with as_owner(db_engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM tasks WHERE title = 'a was here'")
                            ).scalar_one() == 0


def test_a_driver_statement_deallocated_from_sql_costs_one_unit_only(
        one_connection: Database, make_account: Callable[..., Account]) -> None:
    b = make_account()
    mine = tasks.create(one_connection, b.principal, "b's")
    for _ in range(6):
        tasks.update(one_connection, b.principal, mine.id, title="b's")
    with UnitOfWork.tenant(one_connection, b.principal) as uow:
        # one by one: psycopg notices DEALLOCATE ALL (and forgets its own), not these
        for name in uow.execute("SELECT name FROM pg_prepared_statements").scalars().all():
            uow.execute(f'DEALLOCATE "{name}"')
        uow.commit()
    with pytest.raises(StorageError, match="does not exist"):
        tasks.update(one_connection, b.principal, mine.id, title="b's")
    for _ in range(7):  # a fresh connection: the statement is prepared anew, no error
        assert tasks.update(one_connection, b.principal, mine.id, title="b's").title == "b's"
