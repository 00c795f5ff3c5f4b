"""The unit of work: one transaction, one role, one tenant, rolled back unless committed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from checker.access import RuntimeAccess
from taskhub import tasks
from taskhub.db import Database
from taskhub.errors import PasswordChangeRequired, StorageError
from taskhub.principal import Principal
from taskhub.uow import UnitOfWork
from tests.integration.helpers import Account, as_owner, is_commit

WHO = ("SELECT current_user, session_user, r.rolsuper, "
       "       pg_has_role(current_user, 'taskhub_app', 'MEMBER') AS app, "
       "       pg_has_role(current_user, 'taskhub_worker', 'MEMBER') AS worker, "
       "       pg_has_role(current_user, (SELECT tableowner FROM pg_tables "
       "                                  WHERE tablename = 'tasks'), 'MEMBER') AS owner, "
       "       nullif(current_setting('taskhub.tenant', true), '') AS tenant "
       "FROM pg_roles r WHERE r.rolname = current_user")
TENANT = "SELECT public.taskhub_tenant()"


def test_tenant_runs_as_app_login_with_the_user_id(db: Database, db_access: RuntimeAccess) -> None:
    uid = uuid.uuid4()
    with UnitOfWork.tenant(db, Principal(uid, uuid.uuid4())) as uow:
        row = uow.execute(WHO).one()
        tenant = uow.execute(TENANT).scalar_one()
    assert row.current_user == row.session_user == db_access.app_url.username
    assert (row.app, row.worker, row.owner, row.rolsuper) == (True, False, False, False)
    assert (row.tenant, tenant) == (str(uid), uid)


def test_worker_and_anonymous_roles(db: Database, db_access: RuntimeAccess) -> None:
    with UnitOfWork.worker(db) as uow:
        row = uow.execute(WHO).one()
    assert row.current_user == row.session_user == db_access.worker_url.username
    assert (row.app, row.worker, row.owner, row.rolsuper) == (False, True, False, False)
    assert row.tenant is None
    with UnitOfWork.anonymous(db) as uow:
        row = uow.execute(WHO).one()
        tenant = uow.execute(TENANT).scalar_one()
    assert row.current_user == row.session_user == db_access.app_url.username
    assert (row.app, row.worker, row.owner, row.rolsuper) == (True, False, False, False)
    assert (row.tenant, tenant) == (None, None)


def test_role_and_tenant_do_not_outlive_the_transaction(db: Database) -> None:
    with UnitOfWork.account(db, uuid.uuid4()) as uow:
        pid = uow.execute("SELECT pg_backend_pid()").scalar_one()
    with db.app.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid  # pooled
        row = conn.execute(text(WHO)).one()
        tenant = conn.execute(text(TENANT)).scalar_one()
    assert row.current_user == row.session_user  # the login role, no role taken
    assert (row.tenant, tenant) == (None, None)


@pytest.mark.checker_no_audit  # a placeholder password hash, not an Argon2id one
def test_rolls_back_unless_committed(db: Database, db_engine: Engine) -> None:
    insert = "INSERT INTO users (id, email, password_hash) VALUES (:id, :e, 'x')"
    dropped, raised, kept = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with UnitOfWork.account(db, dropped) as uow:
        uow.execute(insert, {"id": dropped, "e": "dropped@example.com"})
    with pytest.raises(RuntimeError), UnitOfWork.account(db, raised) as uow:
        uow.execute(insert, {"id": raised, "e": "raised@example.com"})
        raise RuntimeError
    with UnitOfWork.account(db, kept) as uow:
        uow.execute(insert, {"id": kept, "e": "kept@example.com"})
        uow.commit()
    with as_owner(db_engine) as conn:
        emails = conn.execute(text("SELECT email FROM users")).scalars().all()
    assert emails == ["kept@example.com"]


def test_no_statement_after_commit(db: Database) -> None:
    """After COMMIT a statement would run outside the unit of work's transaction, on a
    connection already back in the pool: refused."""
    with UnitOfWork.anonymous(db) as uow:
        uow.commit()
        with pytest.raises(RuntimeError, match="not open"):
            uow.execute(WHO)


def test_restricted_principal_gets_no_tenant_unit_of_work(db: Database) -> None:
    with pytest.raises(PasswordChangeRequired):
        UnitOfWork.tenant(db, Principal(uuid.uuid4(), uuid.uuid4(), True))


def test_driver_errors_become_storage_errors(db: Database) -> None:
    with pytest.raises(StorageError) as caught, UnitOfWork.anonymous(db) as uow:
        uow.execute("SELECT 1/0")
    assert caught.value.sqlstate == "22012"
    assert not caught.value.during_commit


@pytest.mark.parametrize("pre_ping", [True, False], ids=["pre-ping", "no-pre-ping"])
def test_a_failed_commit_does_not_leak_its_transaction_to_the_next_unit_of_work(
        db_access: RuntimeAccess, make_account: Callable[..., Account], pre_ping: bool) -> None:
    """A COMMIT that fails with the transaction still open on the server (what a COMMIT
    cancelled by statement_timeout does) must not hand that transaction to the next user of
    the pooled connection: with pre-ping the next checkout would fail, without it the next
    unit of work would run inside the failed one and commit its writes."""
    owner = make_account().principal
    db = db_access.connect(pool_size=1, max_overflow=0, pool_pre_ping=pre_ping)
    failing = [True]

    def commit_fails_in_an_aborted_transaction(conn: Any, cursor: Any, statement: str,
                                               parameters: Any, *rest: Any) -> Any:
        if failing and is_commit(statement):
            failing.clear()
            return "SELECT 1/0", parameters  # a real server error; the transaction stays
        return statement, parameters

    engine: Engine = db.app
    try:
        event.listen(engine, "before_cursor_execute", commit_fails_in_an_aborted_transaction,
                     retval=True)
        try:
            with pytest.raises(StorageError) as failed:
                tasks.create(db, owner, "never committed")
        finally:
            event.remove(engine, "before_cursor_execute", commit_fails_in_an_aborted_transaction)
        assert not failing, "the COMMIT was never sent"
        assert failed.value.during_commit
        tasks.create(db, owner, "committed")
        titles = [task.title for task in tasks.list_tasks(db, owner)]
    finally:
        db.dispose()
    assert titles == ["committed"]


def test_owner_only_tables_stay_closed_to_the_worker(db: Database) -> None:
    with pytest.raises(StorageError) as caught, UnitOfWork.worker(db) as uow:
        uow.execute("SELECT count(*) FROM users")
    assert caught.value.sqlstate == "42501"  # insufficient_privilege
