"""The janitor creates, clones and drops databases; each test's database is its own; databases
left by dead processes are swept."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import URL, Engine, text

from checker.janitor import DatabaseJanitor
from taskhub.db import libpq_url


def _databases(janitor: DatabaseJanitor) -> set[str]:
    with psycopg.connect(libpq_url(janitor.server_url)) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


class TestPerTestDatabasesAreIsolated:
    """Two tests in order: what the first writes, the second never sees."""

    urls: list[str] = []  # noqa: RUF012 - shared on purpose between the two tests

    @pytest.mark.checker_no_audit  # a placeholder password hash, not an Argon2id one
    def test_first_writes(self, db_engine: Engine, db_url: URL) -> None:
        self.urls.append(str(db_url))
        with db_engine.begin() as conn:
            conn.execute(text("INSERT INTO users (email, password_hash) VALUES ('a@x.io', 'h')"))

    def test_second_sees_a_fresh_database(self, db_engine: Engine, db_url: URL) -> None:
        assert str(db_url) not in self.urls
        with db_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def test_ephemeral_database_is_dropped_even_after_an_exception(pg_janitor: DatabaseJanitor,
                                                                pg_template: str) -> None:
    with pytest.raises(RuntimeError), pg_janitor.ephemeral(template=pg_template) as url:
        assert url.database in _databases(pg_janitor)
        psycopg.connect(libpq_url(url)).close()
        raise RuntimeError
    assert url.database not in _databases(pg_janitor)


def test_drop_disconnects_whoever_is_still_connected(pg_janitor: DatabaseJanitor) -> None:
    url = pg_janitor.create()
    assert url.database is not None
    lingering = psycopg.connect(libpq_url(url))
    pg_janitor.drop(url.database)
    assert url.database not in _databases(pg_janitor)
    lingering.close()


def test_databases_of_dead_owners_are_swept(pg_janitor: DatabaseJanitor) -> None:
    dead, mine = pg_janitor.create(), pg_janitor.create()
    with psycopg.connect(libpq_url(pg_janitor.server_url), autocommit=True) as conn:
        conn.execute(f'COMMENT ON DATABASE "{dead.database}" IS '
                     f"'taskhub-checker owner={__import__('socket').gethostname()}:{2**22 + 99}'")
    try:
        pg_janitor.sweep_stale()  # (another session's sweep may have been first: fine)
        assert dead.database not in _databases(pg_janitor)
        assert mine.database in _databases(pg_janitor)
    finally:
        assert mine.database is not None
        pg_janitor.drop(mine.database)
