"""pytest-alembic wiring: the repository's Alembic config and an empty database per test."""

from collections.abc import Iterator

import pytest
from alembic.config import Config
from sqlalchemy import URL, Engine

from checker.janitor import DatabaseJanitor
from checker.migrate import alembic_config as repo_alembic_config
from taskhub.db import make_engine


@pytest.fixture
def empty_db_url(pg_janitor: DatabaseJanitor) -> Iterator[URL]:
    """A database with no schema at all (not cloned from the migrated template)."""
    with pg_janitor.ephemeral() as url:
        yield url


@pytest.fixture
def alembic_config() -> Config:
    return repo_alembic_config()


@pytest.fixture
def alembic_engine(empty_db_url: URL) -> Iterator[Engine]:
    engine = make_engine(empty_db_url)
    yield engine
    engine.dispose()
