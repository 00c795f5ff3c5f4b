"""An empty database per test (not cloned from the migrated template), for the tests that
migrate from nothing."""

from collections.abc import Iterator

import pytest
from sqlalchemy import URL

from checker.janitor import DatabaseJanitor


@pytest.fixture
def empty_db_url(pg_janitor: DatabaseJanitor) -> Iterator[URL]:
    """A database with no schema at all (not cloned from the migrated template)."""
    with pg_janitor.ephemeral() as url:
        yield url
