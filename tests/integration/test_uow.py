"""The unit of work: one transaction, one role, one tenant, rolled back unless committed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import URL, Engine, text

from taskhub import tasks
from taskhub.db import Database, make_engine
from taskhub.errors import PasswordChangeRequired, StorageError
from taskhub.principal import Principal
from taskhub.settings import APP_ROLE, WORKER_ROLE
from taskhub.uow import UnitOfWork
from tests.integration.helpers import Account, as_owner

WHO = "SELECT current_user, current_setting('app.user_id', true) AS tenant"


def test_tenant_runs_as_app_role_with_the_user_id(db: Database, db_engine: Engine) -> None:
    uid = uuid.uuid4()
    with UnitOfWork.tenant(db, Principal(uid, uuid.uuid4())) as uow:
        row = uow.execute(WHO).one()
    assert (row.current_user, row.tenant) == (APP_ROLE, str(uid))


def test_worker_and_anonymous_roles(db: Database, db_engine: Engine) -> None:
    with UnitOfWork.worker(db) as uow:
        assert uow.execute(WHO).one().current_user == WORKER_ROLE
    with UnitOfWork.anonymous(db) as uow:
        row = uow.execute(WHO).one()
    assert row.current_user == APP_ROLE
    assert not row.tenant


def test_role_and_tenant_do_not_outlive_the_transaction(db: Database, db_engine: Engine) -> None:
    with UnitOfWork.account(db, uuid.uuid4()) as uow:
        pid = uow.execute("SELECT pg_backend_pid()").scalar_one()
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid  # pooled
        row = conn.execute(text(WHO)).one()
    assert row.current_user != APP_ROLE
    assert not row.tenant


@pytest.mark.no_audit  # a placeholder password hash, not an Argon2id one
def test_rolls_back_unless_committed(db: Database, db_engine: Engine) -> None:
    insert = "INSERT INTO users (email, password_hash) VALUES (:e, 'x')"
    with UnitOfWork.anonymous(db) as uow:
        uow.execute(insert, {"e": "dropped@example.com"})
    with pytest.raises(RuntimeError), UnitOfWork.anonymous(db) as uow:
        uow.execute(insert, {"e": "raised@example.com"})
        raise RuntimeError
    with UnitOfWork.anonymous(db) as uow:
        uow.execute(insert, {"e": "kept@example.com"})
        uow.commit()
    with as_owner(db_engine) as conn:
        emails = conn.execute(text("SELECT email FROM users")).scalars().all()
    assert emails == ["kept@example.com"]


def test_no_statement_after_commit(db: Database, db_engine: Engine) -> None:
    """After COMMIT a statement would open a new transaction as the owner: refused."""
    with UnitOfWork.anonymous(db) as uow:
        uow.commit()
        with pytest.raises(RuntimeError, match="not open"):
            uow.execute(WHO)


def test_restricted_principal_gets_no_tenant_unit_of_work(db: Database, db_engine: Engine) -> None:
    with pytest.raises(PasswordChangeRequired):
        UnitOfWork.tenant(db, Principal(uuid.uuid4(), uuid.uuid4(), True))


def test_driver_errors_become_storage_errors(db: Database, db_engine: Engine) -> None:
    with pytest.raises(StorageError) as caught, UnitOfWork.anonymous(db) as uow:
        uow.execute("SELECT 1/0")
    assert caught.value.sqlstate == "22012"
    assert not caught.value.during_commit


@pytest.mark.parametrize("pre_ping", [True, False], ids=["pre-ping", "no-pre-ping"])
def test_a_failed_commit_does_not_leak_its_transaction_to_the_next_unit_of_work(
        db_url: URL, make_account: Callable[..., Account], monkeypatch: pytest.MonkeyPatch,
        pre_ping: bool) -> None:
    """A COMMIT that fails with the transaction still open on the server (what a COMMIT
    cancelled by statement_timeout does) must not hand that transaction to the next user of
    the pooled connection: with pre-ping the next checkout would fail, without it the next
    unit of work would run inside the failed one and commit its writes."""
    owner = make_account().principal
    engine = make_engine(db_url, pool_size=1, max_overflow=0, pool_pre_ping=pre_ping)

    def commit_fails_in_an_aborted_transaction(dbapi_connection: Any) -> None:
        dbapi_connection.execute("SELECT 1/0")  # a real server error; the transaction stays

    try:
        with monkeypatch.context() as patch:
            patch.setattr(engine.dialect, "do_commit", commit_fails_in_an_aborted_transaction)
            with pytest.raises(StorageError) as failed:
                tasks.create(engine, owner, "never committed")
        assert failed.value.during_commit
        tasks.create(engine, owner, "committed")
        titles = [task.title for task in tasks.list_tasks(engine, owner)]
    finally:
        engine.dispose()
    assert titles == ["committed"]


def test_owner_only_tables_stay_closed_to_the_worker(db: Database, db_engine: Engine) -> None:
    with pytest.raises(StorageError) as caught, UnitOfWork.worker(db) as uow:
        uow.execute("SELECT count(*) FROM users")
    assert caught.value.sqlstate == "42501"  # insufficient_privilege
