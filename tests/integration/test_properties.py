"""Property-based: every public service function, fed hostile input, returns or raises a
domain error (never a driver error or a crash), stores exactly what it accepted, and leaves a
database the consistency audit passes (the plugin audits each test's database afterwards).

Each test shares one database across its examples; `hostile.outcome` states the rule.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from taskhub import auth, inputs, tasks, tokens, users
from taskhub.db import Database
from taskhub.errors import (
    InvalidInput,
    InvalidToken,
    NotFound,
    PasswordChangeRequired,
    TaskhubError,
)
from taskhub.lifecycle import Status
from taskhub.principal import Principal, Worker
from taskhub.settings import Settings
from tests.integration.forge import hs256
from tests.integration.helpers import Account, password
from tests.integration.hostile import (
    PROPERTY,
    any_id,
    hostile_emails,
    hostile_passwords,
    hostile_text,
    id_picks,
    json_objects,
    json_values,
    outcome,
    round_trips,
)

STRONG = password(1)


def as_uuid(value: object) -> uuid.UUID | None:
    """The UUID a service reads `value` as, if any."""
    try:
        return inputs.uuid_of(value, "id")
    except InvalidInput:
        return None


def test_register_and_login_with_any_email_or_password(db: Database, settings: Settings) -> None:
    serial = iter(range(10**6))

    @PROPERTY
    @given(email=hostile_emails(), secret=hostile_passwords(STRONG))
    def check(email: str, secret: str) -> None:
        user = outcome(lambda: users.register(db, settings, email, STRONG))
        if isinstance(user, users.UserRecord):
            assert user.email == users.normalise_email(email)
            assert isinstance(auth.login(db, settings, email, STRONG), str)
        outcome(lambda: auth.login(db, settings, email, secret))

        plain = f"hostile-password-{next(serial)}@example.com"
        user = outcome(lambda: users.register(db, settings, plain, secret))
        if isinstance(user, TaskhubError):
            assert isinstance(outcome(lambda: auth.login(db, settings, plain, secret)),
                              TaskhubError)
            return
        assert isinstance(auth.login(db, settings, plain, secret), str)
        decomposed = unicodedata.normalize("NFD", secret)  # canonically equivalent spelling
        if len(decomposed.encode()) <= settings.max_password_bytes:
            assert isinstance(auth.login(db, settings, plain, decomposed), str)

    check()


def test_account_changes_with_any_input(db: Database, settings: Settings,
                                        make_account: Callable[..., Account]) -> None:
    account = make_account()
    user_id = account.user.id
    state: dict[str, Any] = {"email": account.user.email, "password": account.password,
                             "token": account.token, "principal": account.principal}

    def sign_in(secret: str) -> Principal:
        token = auth.login(db, settings, state["email"], secret)
        state.update(password=secret, token=token,
                     principal=tokens.verify(db, settings, token))
        return state["principal"]  # type: ignore[no-any-return]

    @PROPERTY
    @given(email=hostile_emails(), old=st.none() | hostile_text(),
           new=hostile_passwords(STRONG),
           target=any_id([user_id]),
           stranger=st.builds(Principal, st.uuids(), st.uuids(), st.booleans()))
    def check(email: str, old: str | None, new: str, target: Any,
              stranger: Principal) -> None:
        principal: Principal = state["principal"]
        record = outcome(lambda: users.update_email(db, principal, email))
        if isinstance(record, users.UserRecord):
            assert record.email == users.normalise_email(email)
            assert users.get(db, principal) == record
            state["email"] = record.email

        current = state["password"] if old is None else old
        if outcome(lambda: auth.change_password(db, settings, principal, current,
                                                new)) is None:
            with pytest.raises(InvalidToken):  # the change ended the session
                tokens.verify(db, settings, state["token"])
            sign_in(new)

        temporary = outcome(lambda: auth.issue_temporary_password(db, settings, target))
        if isinstance(temporary, str):
            assert as_uuid(target) == user_id
            restricted = sign_in(temporary)
            assert restricted.must_change_password
            fresh = f"{STRONG}-{uuid.uuid4().hex}"
            auth.change_password(db, settings, restricted, temporary, fresh)
            sign_in(fresh)
        else:
            assert isinstance(temporary, NotFound | InvalidInput)
            assert (as_uuid(target) is None) == isinstance(temporary, InvalidInput)

        for call in (lambda: users.get(db, stranger),
                     lambda: users.update_email(db, stranger, "x@example.com"),
                     lambda: users.delete(db, stranger)):
            assert isinstance(outcome(call), NotFound | PasswordChangeRequired)
        assert outcome(lambda: auth.logout(db, stranger)) is None

    check()
    assert users.get(db, state["principal"]).id == user_id


def test_token_verification_with_any_input(db: Database, db_engine: Engine, settings: Settings,
                                           make_account: Callable[..., Account]) -> None:
    account = make_account()
    real = jwt.decode(account.token, options={"verify_signature": False})

    @PROPERTY
    @given(raw=hostile_text(), keep=st.just(set(tokens.REQUIRED_CLAIMS))
           | st.sets(st.sampled_from(tokens.REQUIRED_CLAIMS)),
           changed=st.dictionaries(st.sampled_from((*tokens.REQUIRED_CLAIMS, "nbf")),
                                   json_values(max_leaves=3)),
           header=st.one_of(st.just({"alg": "HS256", "typ": "JWT"}),
                            st.dictionaries(hostile_text(1), json_values(max_leaves=3))))
    def check(raw: str, keep: set[str], changed: dict[str, Any],
              header: dict[str, Any]) -> None:
        claims = {**{name: real[name] for name in keep}, **changed}
        for token in (raw, hs256(claims, settings.jwt_secret, header)):
            principal = outcome(partial(tokens.verify, db, settings, token))
            if isinstance(principal, Principal):  # only the real claims can prove anyone
                assert principal == account.principal
            else:
                assert isinstance(principal, InvalidToken)

    check()
    assert tokens.verify(db, settings, account.token) == account.principal


OPERATIONS = ("get", "update", "start", "complete", "fail", "list", "claim", "delete")


def test_tasks_with_any_input(db: Database, make_account: Callable[..., Account]) -> None:
    owner, other = make_account().principal, make_account().principal
    mine: list[uuid.UUID] = []

    @PROPERTY
    @given(title=hostile_text(), payload=st.none() | json_objects(), pick=id_picks(),
           actor=st.sampled_from((owner, other)) | st.builds(Worker, st.just("w1")
                                                              | hostile_text()),
           names=st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=3),
           args=st.fixed_dictionaries({
               "title": st.none() | hostile_text(), "payload": st.none() | json_objects(),
               "result": json_values(), "error": hostile_text(),
               "status": st.none() | st.sampled_from(list(Status)) | hostile_text(),
               "limit": st.integers(-2, 2000) | st.just(10**30),
               "n": st.integers(-2, 3) | st.just(10**30)}))
    def check(title: str, payload: Any, pick: Callable[[list[uuid.UUID]], Any],
              actor: Principal | Worker, names: list[str], args: dict[str, Any]) -> None:
        task = outcome(lambda: tasks.create(db, owner, title, payload))
        if isinstance(task, tasks.TaskRecord):
            assert (task.title, task.status, task.version) == (title.strip(), Status.PENDING, 1)
            assert round_trips(payload or {}, task.payload)
            mine.append(task.id)

        task_id = pick(mine)
        tenant = actor if isinstance(actor, Principal) else owner
        worker = actor if isinstance(actor, Worker) else Worker("w1")
        calls: dict[str, Callable[[], object]] = {
            "get": lambda: tasks.get(db, tenant, task_id),
            "update": lambda: tasks.update(db, tenant, task_id, title=args["title"],
                                           payload=args["payload"]),
            "start": lambda: tasks.start(db, actor, task_id),
            "complete": lambda: tasks.complete(db, actor, task_id, args["result"]),
            "fail": lambda: tasks.fail(db, actor, task_id, args["error"]),
            "list": lambda: tasks.list_tasks(db, tenant, args["status"], args["limit"]),
            "claim": lambda: tasks.claim(db, worker, args["n"]),
            "delete": lambda: tasks.delete(db, tenant, task_id),
        }
        for name in names:
            result = outcome(calls[name])
            if isinstance(result, tasks.TaskRecord):
                assert result.user_id == owner.user_id
                if name == "update" and args["payload"] is not None:
                    assert round_trips(args["payload"], result.payload)
                if name == "complete":
                    assert round_trips(args["result"], result.result)
            known = as_uuid(task_id) in mine
            if actor is other and known and name in ("get", "delete"):
                assert isinstance(result, NotFound)  # another tenant's task stays invisible
            if actor is other and known and name not in ("list", "claim"):
                assert isinstance(result, TaskhubError)
            if name == "delete" and result is None:
                mine.remove(as_uuid(task_id))  # type: ignore[arg-type]

    check()
    assert {t.id for t in tasks.list_tasks(db, owner, None, 1000)} == set(mine)
