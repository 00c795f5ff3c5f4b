"""Every data-transforming revision, seeded with realistic and awkward rows at the revision
before it and upgraded to head: every row preserved and transformed exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy import URL

from checker import migrate
from checker.errors import MigrationError
from taskhub.db import libpq_url

NO_MESSAGE = "no error message was recorded before revision 0004"


@pytest.fixture
def db(empty_db_url: URL) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(libpq_url(empty_db_url), autocommit=True, row_factory=dict_row) as conn:
        yield conn


def at(url: URL, revision: str) -> None:
    migrate.upgrade(url, revision)
    assert migrate.current(url) == revision


def add_user(db: psycopg.Connection[dict[str, Any]], email: str, hash_: str = "$argon2id$x"
             ) -> str:
    row = db.execute("INSERT INTO users (email, password_hash) VALUES (%s, %s) RETURNING id",
                     (email, hash_)).fetchone()
    assert row is not None
    return str(row["id"])


def add_task(db: psycopg.Connection[dict[str, Any]], user: str, status: str,
             result: str | None = None, title: str = "t", payload: str = "{}") -> str:
    row = db.execute(
        "INSERT INTO tasks (user_id, title, status, result, payload, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s::json, now() - interval '2 days', now() - interval '1 day') "
        "RETURNING id", (user, title, status, result, payload)).fetchone()
    assert row is not None
    return str(row["id"])


def rows(db: psycopg.Connection[dict[str, Any]], query: str, *args: Any) -> list[dict[str, Any]]:
    return db.execute(query, args).fetchall()


# --- 0002: emails -------------------------------------------------------------------------

EMAILS = {  # as typed before 0002 -> as stored after
    "  Alice@Example.COM ": "alice@example.com",
    "bob@example.com": "bob@example.com",
    "Zoë@Exämple.ORG": "zoë@exämple.org",
    "O'Brien+Tag@EXAMPLE.com": "o'brien+tag@example.com",
    "x'); DROP TABLE users; --@evil.io": "x'); drop table users; --@evil.io",
}


def test_emails_are_normalised_and_every_account_kept(db: psycopg.Connection[dict[str, Any]],
                                                       empty_db_url: URL) -> None:
    at(empty_db_url, "0001")
    ids = {add_user(db, typed, f"hash-{n}"): typed for n, typed in enumerate(EMAILS)}
    before = {r["id"]: r for r in rows(db, "SELECT * FROM users")}
    migrate.upgrade(empty_db_url)
    after = {str(r["id"]): r for r in rows(db, "SELECT * FROM users")}
    assert set(after) == set(ids)
    for user_id, typed in ids.items():
        row = after[user_id]
        assert row["email"] == EMAILS[typed]
        assert row["password_hash"] == before[row["id"]]["password_hash"]
        assert row["created_at"] == row["updated_at"] == row["password_changed_at"]
    with pytest.raises(psycopg.errors.UniqueViolation):
        add_user(db, "ALICE@example.com".lower())


def test_colliding_emails_stop_the_upgrade_and_change_nothing(
        db: psycopg.Connection[dict[str, Any]], empty_db_url: URL) -> None:
    at(empty_db_url, "0001")
    first, second = add_user(db, "Carol@Example.com"), add_user(db, " carol@example.com")
    add_user(db, "dave@example.com")
    snapshot = rows(db, "SELECT * FROM users ORDER BY id")
    with pytest.raises(MigrationError, match="would collide") as stopped:
        migrate.upgrade(empty_db_url)
    assert first in str(stopped.value) and second in str(stopped.value)
    assert "carol@example.com" in str(stopped.value)
    assert migrate.current(empty_db_url) == "0001"
    assert rows(db, "SELECT * FROM users ORDER BY id") == snapshot


# --- 0003: statuses -----------------------------------------------------------------------

STATUSES = {
    "new": "pending", "pending": "pending", "running": "processing",
    "in_progress": "processing", "RUNNING": "processing", "processing": "processing",
    "done": "completed", " Done ": "completed", "completed": "completed",
    "error": "failed", "failed": "failed",
}


def test_every_legacy_status_is_mapped_with_a_consistent_history(
        db: psycopg.Connection[dict[str, Any]], empty_db_url: URL) -> None:
    at(empty_db_url, "0002")
    user = add_user(db, "erin@example.com")
    tasks = {add_task(db, user, legacy, result="r", title=f"t-{legacy}"): legacy
             for legacy in STATUSES}
    migrate.upgrade(empty_db_url)
    after = {str(r["id"]): r for r in rows(db, "SELECT * FROM tasks")}
    assert set(after) == set(tasks)
    for task_id, legacy in tasks.items():
        task = after[task_id]
        assert task["status"] == STATUSES[legacy], legacy
        assert task["title"] == f"t-{legacy}"
        events = rows(db, "SELECT from_status, to_status, actor, at FROM task_events "
                          "WHERE task_id = %s ORDER BY id", task_id)
        path = [(e["from_status"], e["to_status"]) for e in events]
        expected = {
            "pending": [(None, "pending")],
            "processing": [(None, "pending"), ("pending", "processing")],
            "completed": [(None, "pending"), ("pending", "processing"),
                          ("processing", "completed")],
            "failed": [(None, "pending"), ("pending", "processing"), ("processing", "failed")],
        }[task["status"]]
        assert path == expected
        assert task["version"] == len(events)
        assert {e["actor"] for e in events} == {"migration:0005"}
        assert events[0]["at"] == task["created_at"]
        assert all(e["at"] == task["updated_at"] for e in events[1:])


def test_an_unknown_status_stops_the_upgrade_and_changes_nothing(
        db: psycopg.Connection[dict[str, Any]], empty_db_url: URL) -> None:
    at(empty_db_url, "0002")
    user = add_user(db, "frank@example.com")
    add_task(db, user, "done")
    paused = add_task(db, user, "paused")
    snapshot = rows(db, "SELECT * FROM tasks ORDER BY id")
    with pytest.raises(MigrationError, match="unknown task status") as stopped:
        migrate.upgrade(empty_db_url)
    assert "'paused' x1" in str(stopped.value) and paused in str(stopped.value)
    assert migrate.current(empty_db_url) == "0002"
    assert rows(db, "SELECT * FROM tasks ORDER BY id") == snapshot


# --- 0004: results, errors, payloads ------------------------------------------------------

RESULTS = [  # (status, legacy result text) -> (result jsonb, error)
    ("completed", '{"rows": 3, "ok": true}', {"rows": 3, "ok": True}, None),
    ("completed", "[1, 2, 3]", [1, 2, 3], None),
    ("completed", "42", 42, None),
    ("completed", '"quoted"', "quoted", None),
    ("completed", "plain text ✓ — ünïcode", {"legacy_text": "plain text ✓ — ünïcode"}, None),
    ("completed", "{not json", {"legacy_text": "{not json"}, None),
    ("completed", None, None, None),  # JSON null: completed, nothing recorded
    ("failed", "Timeout after 30s", None, "Timeout after 30s"),
    ("failed", "   ", None, NO_MESSAGE),
    ("failed", None, None, NO_MESSAGE),
    ("pending", None, None, None),
    ("processing", "partial", {"legacy_text": "partial"}, None),
]


def test_results_become_json_and_errors_are_split_out(db: psycopg.Connection[dict[str, Any]],
                                                      empty_db_url: URL) -> None:
    at(empty_db_url, "0003")
    user = add_user(db, "grace@example.com")
    ids = [add_task(db, user, status, result, payload=f'{{"n": {i}, "n": {i + 1}}}')
           for i, (status, result, _json, _err) in enumerate(RESULTS)]
    migrate.upgrade(empty_db_url)
    for i, (task_id, (status, legacy, result, error)) in enumerate(zip(ids, RESULTS, strict=True)):
        row = rows(db, "SELECT status, result, result IS NULL AS sql_null, error, payload "
                       "FROM tasks WHERE id = %s", task_id)[0]
        assert row["status"] == status
        assert row["error"] == error, legacy
        if status == "completed" and legacy is None:
            assert not row["sql_null"] and row["result"] is None  # JSON null
        elif result is None:
            assert row["sql_null"], legacy
        else:
            assert row["result"] == result, legacy
        assert row["payload"] == {"n": i + 1}  # jsonb keeps the last duplicate key


def test_results_downgrade_back_to_their_text(db: psycopg.Connection[dict[str, Any]],
                                              empty_db_url: URL) -> None:
    at(empty_db_url, "0003")
    user = add_user(db, "heidi@example.com")
    seeded = {add_task(db, user, status, result): (status, result)
              for status, result, _json, _err in RESULTS}
    migrate.upgrade(empty_db_url, "0004")
    migrate.downgrade(empty_db_url, "0003")
    for task_id, (status, legacy) in seeded.items():
        restored = rows(db, "SELECT result FROM tasks WHERE id = %s", task_id)[0]["result"]
        if legacy is None or (status == "failed" and not legacy.strip()):
            assert restored is None
        elif status == "failed" or legacy.startswith(("plain", "{not", "partial")):
            assert restored == legacy
        else:
            assert json.loads(restored) == json.loads(legacy)


# --- 0006: accounts -----------------------------------------------------------------------

def test_current_hashes_seed_the_password_history(db: psycopg.Connection[dict[str, Any]],
                                                  empty_db_url: URL) -> None:
    at(empty_db_url, "0005")
    users = {add_user(db, f"u{n}@example.com", f"$argon2id$hash{n}"): n for n in range(3)}
    migrate.upgrade(empty_db_url)
    history = rows(db, "SELECT h.user_id, h.password_hash, h.created_at = u.created_at AS same "
                       "FROM password_history h JOIN users u ON u.id = h.user_id")
    assert sorted((str(h["user_id"]), h["password_hash"]) for h in history) == sorted(
        (user, f"$argon2id$hash{n}") for user, n in users.items())
    assert all(h["same"] for h in history)
    flags = rows(db, "SELECT DISTINCT must_change_password, temp_password_expires_at FROM users")
    assert flags == [{"must_change_password": False, "temp_password_expires_at": None}]


# --- 0007: cascades -----------------------------------------------------------------------

def test_deleting_a_user_is_refused_before_0007_and_cascades_after(
        db: psycopg.Connection[dict[str, Any]], empty_db_url: URL) -> None:
    at(empty_db_url, "0006")
    user = add_user(db, "ivan@example.com")
    add_task(db, user, "pending")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("DELETE FROM users WHERE id = %s", (user,))
    migrate.upgrade(empty_db_url)
    db.execute("DELETE FROM users WHERE id = %s", (user,))
    for table in ("tasks", "task_events", "password_history", "auth_sessions"):
        assert rows(db, f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0, table


# --- 0008: legal event steps ------------------------------------------------------------

def test_an_illegal_event_step_stops_the_upgrade_until_it_is_fixed(
        db: psycopg.Connection[dict[str, Any]], empty_db_url: URL) -> None:
    at(empty_db_url, "0007")
    user = add_user(db, "judy@example.com")
    task = rows(db, "INSERT INTO tasks (user_id, title) VALUES (%s, 't') RETURNING id",
                user)[0]["id"]
    [skipped] = rows(db, "INSERT INTO task_events (task_id, user_id, from_status, to_status, "
                         "actor) VALUES (%s, %s, NULL, 'pending', 'legacy'), "
                         "(%s, %s, 'pending', 'completed', 'legacy') RETURNING id",
                     task, user, task, user)[1:]
    snapshot = rows(db, "SELECT * FROM task_events ORDER BY id")
    with pytest.raises(MigrationError,
                       match=r"1 task event\(s\) record an illegal step") as stopped:
        migrate.upgrade(empty_db_url)
    assert f"event {skipped['id']} of task {task}: pending -> completed" in str(stopped.value)
    assert migrate.current(empty_db_url) == "0007"
    assert rows(db, "SELECT * FROM task_events ORDER BY id") == snapshot
    db.execute("DELETE FROM task_events WHERE id = %s", (skipped["id"],))
    migrate.upgrade(empty_db_url)
    with pytest.raises(psycopg.errors.CheckViolation, match="ck_task_events_legal_step"):
        db.execute("INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
                   "VALUES (%s, %s, NULL, 'completed', 'raw')", (task, user))


# --- the whole chain, audited -----------------------------------------------------------

def test_a_legacy_database_upgraded_to_head_passes_the_audit(
        db: psycopg.Connection[dict[str, Any]], empty_db_url: URL) -> None:
    from argon2 import PasswordHasher

    from checker.audit import run_audit

    at(empty_db_url, "0001")
    hashed = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash("legacy pw")
    users = [add_user(db, typed, hashed) for typed in EMAILS]
    for n, legacy in enumerate(STATUSES):
        for user in users:
            add_task(db, user, legacy, result=[None, "txt", '{"a": 1}'][n % 3], title=legacy)
    migrate.upgrade(empty_db_url)
    audit = run_audit(empty_db_url)
    failing = [(c.name, c.status, c.samples) for c in audit.checks if c.status != "pass"]
    assert audit.ok, failing
    assert rows(db, "SELECT count(*) AS n FROM tasks")[0]["n"] == len(STATUSES) * len(users)


# --- 0009: least privilege --------------------------------------------------------------

TABLES = ("users", "password_history", "auth_sessions", "tasks", "task_events")


def _everything(db: psycopg.Connection[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {table: rows(db, f"SELECT * FROM {table} ORDER BY id") for table in TABLES}


def test_least_privilege_keeps_every_row_and_serves_the_old_accounts(
        db: psycopg.Connection[dict[str, Any]], empty_db_url: URL,
        pg_janitor: Any) -> None:
    from argon2 import PasswordHasher

    from taskhub import auth, tasks, tokens
    from taskhub.settings import TEST_ARGON2, Settings

    at(empty_db_url, "0008")
    hashed = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("kept pw 0009")
    owners = [add_user(db, f"{name}@example.com", hashed) for name in ("kim", "lee")]
    for owner in owners:
        db.execute("INSERT INTO password_history (user_id, password_hash) VALUES (%s, %s)",
                   (owner, hashed))
        db.execute("INSERT INTO auth_sessions (user_id, expires_at) "
                   "VALUES (%s, now() + interval '1 hour')", (owner,))
        for path in (("pending",), ("pending", "processing")):
            task = rows(db, "INSERT INTO tasks (user_id, title, status, version) "
                            "VALUES (%s, 'kept', %s, %s) RETURNING id",
                        owner, path[-1], len(path))[0]["id"]
            for before, after in zip((None, *path[:-1]), path, strict=True):
                db.execute("INSERT INTO task_events (task_id, user_id, from_status, to_status, "
                           "actor) VALUES (%s, %s, %s, %s, 'legacy')",
                           (task, owner, before, after))
    before = _everything(db)

    migrate.upgrade(empty_db_url, "0009")
    assert migrate.current(empty_db_url) == "0009"
    assert _everything(db) == before

    assert empty_db_url.database is not None
    service = pg_janitor.runtime_access(empty_db_url.database).connect()
    try:
        settings = Settings(argon2=TEST_ARGON2, jwt_secret="k" * 40)
        kim = tokens.verify(service, settings,
                            auth.login(service, settings, "kim@example.com", "kept pw 0009"))
        assert {str(t.user_id) for t in tasks.list_tasks(service, kim)} == {owners[0]}
    finally:
        service.dispose()

    migrate.downgrade(empty_db_url, "0008")
    after = _everything(db)
    assert {t: len(r) for t, r in after.items()} == {
        t: len(r) + (1 if t == "auth_sessions" else 0) for t, r in before.items()}
    db.execute("BEGIN")
    db.execute("SET LOCAL ROLE taskhub_app")
    db.execute("SELECT set_config('app.user_id', %s, true)", (owners[1],))
    assert {str(r["user_id"]) for r in rows(db, "SELECT user_id FROM tasks")} == {owners[1]}
    db.execute("ROLLBACK")


# --- 0010: email skeletons --------------------------------------------------------------

def test_existing_emails_get_their_skeletons_and_lookalikes_stop_the_upgrade(
        db: psycopg.Connection[dict[str, Any]], empty_db_url: URL) -> None:
    from taskhub.confusables import skeleton

    at(empty_db_url, "0009")
    real = add_user(db, "paypal@example.com")
    fake = add_user(db, "p\u0430yp\u0430l@example.com")
    other = add_user(db, "someone@example.com")
    before = rows(db, "SELECT * FROM users ORDER BY id")
    with pytest.raises(MigrationError, match="revision 0010 stopped: 1 group") as stopped:
        migrate.upgrade(empty_db_url)
    assert f"{real}, {fake}" in str(stopped.value) and other not in str(stopped.value)
    assert migrate.current(empty_db_url) == "0009"
    assert rows(db, "SELECT * FROM users ORDER BY id") == before

    db.execute("DELETE FROM users WHERE id = %s", (fake,))
    migrate.upgrade(empty_db_url)
    assert {r["email"]: r["email_skeleton"] for r in rows(db, "SELECT * FROM users")} == {
        "paypal@example.com": skeleton("paypal@example.com"),
        "someone@example.com": skeleton("someone@example.com")}
    placeholder = rows(db, "INSERT INTO users (email, password_hash) VALUES ('x@y.io', 'h') "
                           "RETURNING email_skeleton")[0]["email_skeleton"]
    assert placeholder.startswith("unset:")
    migrate.downgrade(empty_db_url, "0009")
    assert "email_skeleton" not in rows(db, "SELECT * FROM users LIMIT 1")[0]
