"""pytest fixtures: one PostgreSQL server per session, migrated once, a fresh clone per test.

Registered through the `pytest11` entry point, so any project with the checker installed can
use them. The server comes from `--checker-db` / CHECKER_DB (auto|container|embedded|dsn) and
`--checker-dsn` / CHECKER_DSN. Nothing starts until a test asks for a database.

Fixtures:
- `pg_server`: the running `Server` (session).
- `pg_janitor`: the `DatabaseJanitor` for that server (session).
- `pg_template`: name of a database migrated to head, the template of every clone (session).
- `db_url`: URL of a fresh database cloned from the template, dropped after the test.
- `db_engine`: a SQLAlchemy engine on `db_url`, disposed after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import URL, Engine

from checker import migrate
from checker.errors import CheckerError
from checker.janitor import DatabaseJanitor
from checker.provision import KINDS, Server, select_provider
from taskhub.db import make_engine


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the provider options."""
    group = parser.getgroup("checker", "ephemeral PostgreSQL for tests")
    group.addoption("--checker-db", choices=KINDS, default=None,
                    help="where the test server comes from (default: CHECKER_DB or auto)")
    group.addoption("--checker-dsn", default=None,
                    help="an existing server to create test databases on (or CHECKER_DSN)")


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The session's PostgreSQL server, stopped and removed at the end of the session."""
    try:
        provider = select_provider(request.config.getoption("--checker-db"),
                                   request.config.getoption("--checker-dsn"))
        with provider as server:
            yield server
    except CheckerError as exc:
        pytest.exit(f"checker: no PostgreSQL for the tests: {exc}", returncode=3)


@pytest.fixture(scope="session")
def pg_janitor(pg_server: Server) -> Iterator[DatabaseJanitor]:
    """Creates and drops the session's databases; sweeps what dead runs left behind."""
    janitor = DatabaseJanitor(pg_server.url)
    janitor.sweep_stale()
    yield janitor
    janitor.close()


@pytest.fixture(scope="session")
def pg_template(pg_janitor: DatabaseJanitor) -> Iterator[str]:
    """A database migrated to head once per session; every test database is a clone of it."""
    url = pg_janitor.create(DatabaseJanitor.new_name("template"))
    assert url.database is not None
    try:
        migrate.upgrade(url)
        yield url.database
    finally:
        pg_janitor.drop(url.database)


@pytest.fixture
def db_url(pg_janitor: DatabaseJanitor, pg_template: str) -> Iterator[URL]:
    """A fresh migrated database for this test alone (a template clone: ~10 ms)."""
    with pg_janitor.ephemeral(template=pg_template) as url:
        yield url


@pytest.fixture
def db_engine(db_url: URL) -> Iterator[Engine]:
    """A SQLAlchemy engine (psycopg 3) on this test's database."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
