"""Hostile and malformed input, case by case: huge passwords refused before any Argon2 or
database work, Unicode forms that must (or must not) match, SQL metacharacters stored and read
back verbatim, NUL and lone surrogates refused with a domain error, ids that are not UUIDs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, text

from taskhub import auth, tasks, users
from taskhub.db import Database
from taskhub.errors import (
    InputTooLarge,
    InvalidCredentials,
    InvalidInput,
    WeakPassword,
)
from taskhub.principal import Worker
from taskhub.settings import Settings
from tests.integration.faults import snapshot
from tests.integration.helpers import Account, as_owner, password
from tests.integration.hostile import SQL_METACHARACTERS
from tests.integration.spies import spy_on_argon2, statements

MEGABYTE = "\u00e9" * 500_000  # 1 MB of UTF-8, 500k characters


@pytest.fixture
def account(make_account: Callable[..., Account]) -> Account:
    return make_account()


def test_a_megabyte_password_costs_no_argon2_and_no_database(db: Database,
        db_engine: Engine, settings: Settings, account: Account,
        monkeypatch: pytest.MonkeyPatch) -> None:
    argon2 = spy_on_argon2(monkeypatch)
    before = snapshot(db_engine)
    attempts: list[Callable[[], object]] = [
        lambda: users.register(db, settings, "new@example.com", MEGABYTE),
        lambda: auth.login(db, settings, account.user.email, MEGABYTE),
        lambda: auth.login(db, settings, "nobody@example.com", MEGABYTE),
        lambda: auth.change_password(db, settings, account.principal, account.password,
                                     MEGABYTE),
    ]
    with statements(db) as sent:
        for attempt in attempts:
            with pytest.raises(InputTooLarge, match="longer than 1024 bytes"):
                attempt()
    assert sent == [] and argon2.calls == []
    assert snapshot(db_engine) == before


def test_a_megabyte_old_password_is_refused_before_verification(db: Database,
        db_engine: Engine, settings: Settings, account: Account,
        monkeypatch: pytest.MonkeyPatch) -> None:
    argon2 = spy_on_argon2(monkeypatch)
    before = snapshot(db_engine)
    with pytest.raises(InputTooLarge):
        auth.change_password(db, settings, account.principal, MEGABYTE, password(9))
    assert argon2.calls == [] and snapshot(db_engine) == before


def test_megabyte_email_title_and_error(db: Database, db_engine: Engine, settings: Settings,
                                        account: Account) -> None:
    huge = "a" * 1_000_000
    before = snapshot(db_engine)
    with pytest.raises(InputTooLarge):
        users.register(db, settings, huge + "@example.com", password(5))
    with pytest.raises(InputTooLarge):
        users.update_email(db, account.principal, huge + "@example.com")
    with pytest.raises(InvalidCredentials):  # an unknown email, like any other
        auth.login(db, settings, huge + "@example.com", account.password)
    with pytest.raises(InputTooLarge):
        tasks.create(db, account.principal, huge)
    task = tasks.start(db, Worker("w"), tasks.create(db, account.principal, "t").id)
    with pytest.raises(InputTooLarge, match="error longer than"):
        tasks.fail(db, Worker("w"), task.id, huge)
    with pytest.raises(InputTooLarge):
        tasks.complete(db, Worker("w"), task.id, {"log": huge})
    with as_owner(db_engine) as conn:
        assert conn.execute(text("SELECT status FROM tasks WHERE id = :t"),
                            {"t": task.id}).scalar_one() == "processing"
    assert snapshot(db_engine)["users"] == before["users"]


def test_empty_email_and_password(db: Database, settings: Settings,
                                  account: Account) -> None:
    with pytest.raises(WeakPassword, match="empty"):
        users.register(db, settings, "empty@example.com", "")
    for email, secret in (("", account.password), (account.user.email, ""), ("", "")):
        with pytest.raises(InvalidCredentials):
            auth.login(db, settings, email, secret)
    with pytest.raises(WeakPassword):
        auth.change_password(db, settings, account.principal, account.password, "")


@pytest.mark.parametrize(("registered", "typed"), [
    ("caf\u00e9-harbor-quietly-tangerine", "cafe\u0301-harbor-quietly-tangerine"),  # NFC/NFD
    ("cafe\u0301-harbor-quietly-tangerine", "caf\u00e9-harbor-quietly-tangerine"),
    ("harbor-2024-quietly-tangerine", "harbor-\uff12\uff10\uff12\uff14-quietly-tangerine"),
    ("harbor-\uff12\uff10\uff12\uff14-quietly-tangerine", "harbor-2024-quietly-tangerine"),
    ("\ufb01ne-harbor-quietly-tangerine", "fine-harbor-quietly-tangerine"),  # ligature
    ("\u212bngstrom-harbor-quietly", "\u00c5ngstrom-harbor-quietly"),  # angstrom sign
])
def test_nfkc_equivalent_passwords_log_in(db: Database, settings: Settings,
                                          registered: str, typed: str) -> None:
    users.register(db, settings, "nfkc@example.com", registered)
    auth.login(db, settings, "nfkc@example.com", typed)
    auth.login(db, settings, "nfkc@example.com", registered)


@pytest.mark.parametrize("lookalike", [
    "c\u0430fe-harbor-quietly-tangerine",  # Cyrillic a: looks the same, is not NFKC-equal
    "CAFE-harbor-quietly-tangerine",  # case is not folded
    "cafe-harbor-quietly-tangerine\u200b",  # a zero-width space survives NFKC
])
def test_lookalikes_that_nfkc_keeps_apart_do_not(db: Database, settings: Settings,
                                                 lookalike: str) -> None:
    users.register(db, settings, "apart@example.com", "cafe-harbor-quietly-tangerine")
    with pytest.raises(InvalidCredentials):
        auth.login(db, settings, "apart@example.com", lookalike)


def test_email_is_nfkc_normalised(db: Database, settings: Settings) -> None:
    user = users.register(db, settings, "\uff21lice\uff20Example.com", password(3))
    assert user.email == "alice@example.com"
    auth.login(db, settings, "ALICE@example.com", password(3))


def test_sql_metacharacters_are_stored_verbatim(db: Database, db_engine: Engine, settings: Settings,
                                                account: Account) -> None:
    """Every text field takes them as data (bound parameters, never SQL): stored and read
    back exactly, and nothing else in the database changes."""
    for n, meta in enumerate(SQL_METACHARACTERS):
        local = "".join(c for c in meta if not c.isspace() and c != "@")
        user = users.register(db, settings, f"{local}{n}@example.com", password(7))
        assert user.email == f"{local}{n}@example.com".lower()
        auth.login(db, settings, user.email, password(7))

        task = tasks.create(db, account.principal, f"t{meta}", {meta: meta, "k": [meta]})
        assert (task.title, task.payload) == (f"t{meta}", {meta: meta, "k": [meta]})
        assert tasks.update(db, account.principal, task.id,
                            title=f"{meta}u").title == f"{meta}u"
        tasks.start(db, Worker(f"w{meta}"), task.id)
        done = tasks.complete(db, Worker(f"w{meta}"), task.id, {meta: [meta]})
        assert done.result == {meta: [meta]}
        assert tasks.get(db, account.principal, task.id) == done
        other = tasks.start(db, Worker("w"),
                            tasks.create(db, account.principal, "f").id)
        assert tasks.fail(db, Worker("w"), other.id, f"boom {meta}").error \
            == f"boom {meta}"
        with as_owner(db_engine) as conn:
            assert conn.execute(text("SELECT actor FROM task_events WHERE task_id = :t "
                                     "ORDER BY id DESC LIMIT 1"),
                                {"t": task.id}).scalar_one() == f"worker:w{meta}"
    with as_owner(db_engine) as conn:
        counts = conn.execute(text("SELECT (SELECT count(*) FROM users), "
                                   "(SELECT count(*) FROM tasks)")).one()
    assert tuple(counts) == (len(SQL_METACHARACTERS) + 1, 2 * len(SQL_METACHARACTERS))


UNSTORABLE = {"NUL": "a\x00b", "lone surrogate": "a\ud800b"}


@pytest.mark.parametrize("kind", UNSTORABLE)
def test_unstorable_text_is_refused_everywhere(db: Database, db_engine: Engine, settings: Settings,
                                               account: Account, kind: str) -> None:
    bad = UNSTORABLE[kind]
    pending = tasks.create(db, account.principal, "pending")
    running = tasks.start(db, Worker("w"),
                          tasks.create(db, account.principal, "running").id)
    me = account.principal
    attempts: dict[str, Callable[[], object]] = {
        "register email": lambda: users.register(db, settings, f"{bad}@x.org",
                                                 password(8)),
        "update email": lambda: users.update_email(db, me, f"{bad}@x.org"),
        "create title": lambda: tasks.create(db, me, bad),
        "payload key": lambda: tasks.create(db, me, "t", {bad: 1}),
        "payload value": lambda: tasks.create(db, me, "t", {"k": [bad]}),
        "update title": lambda: tasks.update(db, me, pending.id, title=bad),
        "update payload": lambda: tasks.update(db, me, pending.id, payload={"k": bad}),
        "worker name": lambda: tasks.start(db, Worker(bad), pending.id),
        "claim by": lambda: tasks.claim(db, Worker(bad), 1),
        "error": lambda: tasks.fail(db, Worker("w"), running.id, bad),
        "result": lambda: tasks.complete(db, Worker("w"), running.id, bad),
        "list status": lambda: tasks.list_tasks(db, me, bad),
    }
    before = snapshot(db_engine)
    with statements(db) as sent:
        for name, attempt in attempts.items():
            with pytest.raises(InvalidInput) as caught:
                attempt()
            assert "NUL" in str(caught.value) or "surrogate" in str(caught.value) \
                or name in ("register email", "update email", "list status"), name
    assert sent == []  # refused before the database
    assert snapshot(db_engine) == before
    if kind == "NUL":  # a password may hold NUL (Argon2 takes its length; see unit tests)
        users.register(db, settings, "nul@example.com", f"{password(8)}{bad}")
        with pytest.raises(InvalidCredentials):
            auth.login(db, settings, "nul@example.com", password(8) + "a")
        auth.login(db, settings, "nul@example.com", f"{password(8)}{bad}")
    else:
        with pytest.raises(InvalidInput, match="surrogate"):
            users.register(db, settings, "surrogate@example.com", password(8) + bad)
        with pytest.raises(InvalidInput, match="surrogate"):
            auth.login(db, settings, account.user.email, bad)


@pytest.mark.parametrize("email", ["a\x01b@example.com", "ab@exa\x7fmple.com",
                                   "a\u0085b@example.com", "\x1b[31m@example.com"])
def test_control_characters_in_emails_refused(db: Database, settings: Settings,
                                              email: str) -> None:
    with pytest.raises(InvalidInput, match="local@domain"):
        users.register(db, settings, email, password(4))


BAD_IDS: list[Any] = ["not-a-uuid", "", "'; DROP TABLE tasks; --", "\x00", "1" * 10_000, 5,
                      None, b"0123456789abcdef", ["x"]]


def test_ids_that_are_not_uuids(db: Database, db_engine: Engine, settings: Settings,
                                account: Account) -> None:
    me, worker = account.principal, Worker("w")
    attempts: list[Callable[[Any], object]] = [
        lambda bad: tasks.get(db, me, bad),
        lambda bad: tasks.update(db, me, bad, title="x"),
        lambda bad: tasks.delete(db, me, bad),
        lambda bad: tasks.start(db, worker, bad),
        lambda bad: tasks.complete(db, worker, bad, 1),
        lambda bad: tasks.fail(db, me, bad, "e"),
        lambda bad: auth.issue_temporary_password(db, settings, bad),
    ]
    with statements(db) as sent:
        for bad in BAD_IDS:
            for attempt in attempts:
                with pytest.raises(InvalidInput, match="must be a UUID"):
                    attempt(bad)
    assert sent == []


def test_ids_as_strings_work(db: Database, settings: Settings, account: Account) -> None:
    me, task = account.principal, tasks.create(db, account.principal, "by string")
    assert tasks.get(db, me, str(task.id)) == task
    assert tasks.update(db, me, task.id.urn, title="renamed").title == "renamed"
    assert tasks.start(db, Worker("w"), str(task.id).upper()).status == "processing"
    tasks.complete(db, Worker("w"), task.id.hex, {"ok": True})
    tasks.delete(db, me, f"{{{task.id}}}")
    temporary = auth.issue_temporary_password(db, settings, str(account.user.id))
    assert auth.login(db, settings, account.user.email, temporary)


@pytest.mark.parametrize(("limit", "n"), [(0, 0), (-1, -1), (1001, 1001), (True, True),
                                          (10**30, 10**30), (1.5, 1.5), ("5", "5")])
def test_counts_out_of_range(db: Database, account: Account, limit: Any, n: Any) -> None:
    with pytest.raises(InvalidInput, match="between 1 and 1000"):
        tasks.list_tasks(db, account.principal, None, limit)
    with pytest.raises(InvalidInput, match="between 1 and 1000"):
        tasks.claim(db, Worker("w"), n)


@pytest.mark.parametrize("name", ["", "   ", "w" * 201])
def test_worker_names(db: Database, account: Account, name: str) -> None:
    task = tasks.create(db, account.principal, "t")
    with pytest.raises(InvalidInput, match="worker name"):
        tasks.start(db, Worker(name), task.id)


def test_payload_nesting_and_jsonb_quirks(db: Database, account: Account) -> None:
    me = account.principal
    deep: Any = "bottom"
    for _ in range(5000):  # json.dumps alone would raise RecursionError here
        deep = [deep]
    with pytest.raises(InputTooLarge, match="nested deeper"):
        tasks.create(db, me, "deep", {"k": deep})
    with pytest.raises(InvalidInput, match="lone surrogate"):  # jsonb would merge the pair
        tasks.create(db, me, "pair", {"k": "\ud83d\ude00"})
    kept = tasks.create(db, me, "astral", {"k": "\U0001f600", "\\u0000": "\\"})
    assert kept.payload == {"k": "\U0001f600", "\\u0000": "\\"}

