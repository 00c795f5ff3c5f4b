"""Adopting databases that predate Alembic: a known state is recognised, stamped and upgraded
with its data carried forward; anything else is refused with a diff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import URL

from checker import migrate
from checker.adopt import UnrecognisedSchema, adopt, recognise
from checker.errors import UsageError
from taskhub.db import libpq_url

LEGACY_SQL = (Path(__file__).parent / "legacy_schema.sql").read_text()


def _legacy(url: URL, extra: str = "") -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(LEGACY_SQL + extra)  # type: ignore[arg-type]
        user = conn.execute("INSERT INTO users (email, password_hash) "
                            "VALUES (' Judy@Example.com', '$argon2id$h') RETURNING id").fetchone()
        assert user is not None
        conn.execute("INSERT INTO tasks (user_id, title, status, result) VALUES "
                     "(%s, 'a', 'new', NULL), (%s, 'b', 'done', '{\"n\": 1}'), "
                     "(%s, 'c', 'error', 'disk full')", (user[0], user[0], user[0]))


def test_a_hand_made_legacy_database_is_recognised_and_upgraded(empty_db_url: URL) -> None:
    _legacy(empty_db_url)
    assert recognise(empty_db_url) == "0001"
    adoption = adopt(empty_db_url)
    assert (adoption.recognised, adoption.upgraded_to) == ("0001", migrate.head())
    assert migrate.current(empty_db_url) == migrate.head()
    with psycopg.connect(libpq_url(empty_db_url)) as conn:
        assert conn.execute("SELECT email FROM users").fetchall() == [("judy@example.com",)]
        assert conn.execute("SELECT title, status, result, error, version FROM tasks "
                            "ORDER BY title").fetchall() == [
            ("a", "pending", None, None, 1),
            ("b", "completed", {"n": 1}, None, 3),
            ("c", "failed", None, "disk full", 3)]
        assert conn.execute("SELECT count(*) FROM task_events").fetchone() == (7,)


def test_an_intermediate_state_is_recognised(empty_db_url: URL) -> None:
    migrate.upgrade(empty_db_url, "0004")
    with psycopg.connect(libpq_url(empty_db_url), autocommit=True) as conn:
        conn.execute("DROP TABLE alembic_version")
    assert recognise(empty_db_url) == "0004"


def test_an_unrecognised_schema_is_refused_with_a_diff(empty_db_url: URL) -> None:
    _legacy(empty_db_url,
            "ALTER TABLE tasks ADD COLUMN priority int; DROP INDEX tasks_user_id_idx;")
    with pytest.raises(UnrecognisedSchema, match="closest is 0001") as refused:
        adopt(empty_db_url)
    message = str(refused.value)
    assert "+ column tasks.priority integer" in message
    assert "- index CREATE INDEX tasks_user_id_idx" in message
    assert migrate.current(empty_db_url) is None  # nothing stamped, nothing changed


def test_versioned_and_empty_databases_are_not_adopted(db_url: URL, empty_db_url: URL) -> None:
    with pytest.raises(UsageError, match="already versioned"):
        adopt(db_url)
    with pytest.raises(UnrecognisedSchema, match="no tables"):
        adopt(empty_db_url)


def test_adopt_command_exit_codes(empty_db_url: URL) -> None:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "checker", "db", "adopt", "--dsn",
                               libpq_url(empty_db_url)], capture_output=True, text=True,
                              timeout=120, check=False)

    with psycopg.connect(libpq_url(empty_db_url), autocommit=True) as conn:
        conn.execute(LEGACY_SQL.encode())
        conn.execute("INSERT INTO users (email, password_hash) VALUES ('A@x.io', 'h'), "
                     "('a@x.io ', 'h')")
    failed = run()
    assert failed.returncode == 1, failed.stderr
    assert "would collide" in failed.stderr and "Traceback" not in failed.stderr
    assert migrate.current(empty_db_url) == "0001"  # stamped as recognised, data untouched
