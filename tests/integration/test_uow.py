"""The unit of work: one transaction, one role, one tenant, rolled back unless committed."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, text

from taskhub.errors import PasswordChangeRequired, StorageError
from taskhub.principal import Principal
from taskhub.settings import APP_ROLE, WORKER_ROLE
from taskhub.uow import UnitOfWork
from tests.integration.helpers import as_owner

WHO = "SELECT current_user, current_setting('app.user_id', true) AS tenant"


def test_tenant_runs_as_app_role_with_the_user_id(db_engine: Engine) -> None:
    uid = uuid.uuid4()
    with UnitOfWork.tenant(db_engine, Principal(uid, uuid.uuid4())) as uow:
        row = uow.execute(WHO).one()
    assert (row.current_user, row.tenant) == (APP_ROLE, str(uid))


def test_worker_and_anonymous_roles(db_engine: Engine) -> None:
    with UnitOfWork.worker(db_engine) as uow:
        assert uow.execute(WHO).one().current_user == WORKER_ROLE
    with UnitOfWork.anonymous(db_engine) as uow:
        row = uow.execute(WHO).one()
    assert row.current_user == APP_ROLE
    assert not row.tenant


def test_role_and_tenant_do_not_outlive_the_transaction(db_engine: Engine) -> None:
    with UnitOfWork.account(db_engine, uuid.uuid4()) as uow:
        pid = uow.execute("SELECT pg_backend_pid()").scalar_one()
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid  # pooled
        row = conn.execute(text(WHO)).one()
    assert row.current_user != APP_ROLE
    assert not row.tenant


@pytest.mark.no_audit  # a placeholder password hash, not an Argon2id one
def test_rolls_back_unless_committed(db_engine: Engine) -> None:
    insert = "INSERT INTO users (email, password_hash) VALUES (:e, 'x')"
    with UnitOfWork.anonymous(db_engine) as uow:
        uow.execute(insert, {"e": "dropped@example.com"})
    with pytest.raises(RuntimeError), UnitOfWork.anonymous(db_engine) as uow:
        uow.execute(insert, {"e": "raised@example.com"})
        raise RuntimeError
    with UnitOfWork.anonymous(db_engine) as uow:
        uow.execute(insert, {"e": "kept@example.com"})
        uow.commit()
    with as_owner(db_engine) as conn:
        emails = conn.execute(text("SELECT email FROM users")).scalars().all()
    assert emails == ["kept@example.com"]


def test_no_statement_after_commit(db_engine: Engine) -> None:
    """After COMMIT a statement would open a new transaction as the owner: refused."""
    with UnitOfWork.anonymous(db_engine) as uow:
        uow.commit()
        with pytest.raises(RuntimeError, match="not open"):
            uow.execute(WHO)


def test_restricted_principal_gets_no_tenant_unit_of_work(db_engine: Engine) -> None:
    with pytest.raises(PasswordChangeRequired):
        UnitOfWork.tenant(db_engine, Principal(uuid.uuid4(), uuid.uuid4(), True))


def test_driver_errors_become_storage_errors(db_engine: Engine) -> None:
    with pytest.raises(StorageError) as caught, UnitOfWork.anonymous(db_engine) as uow:
        uow.execute("SELECT 1/0")
    assert caught.value.sqlstate == "22012"
    assert not caught.value.during_commit


def test_owner_only_tables_stay_closed_to_the_worker(db_engine: Engine) -> None:
    with pytest.raises(StorageError) as caught, UnitOfWork.worker(db_engine) as uow:
        uow.execute("SELECT count(*) FROM users")
    assert caught.value.sqlstate == "42501"  # insufficient_privilege
