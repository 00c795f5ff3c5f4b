"""The service on a fresh database per test, from the checker's `db_url` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy import URL, create_engine

from notes_service.app import create_app


def pytest_checker_prepare_template(config: pytest.Config, url: URL) -> None:
    """Once, before the migrations run: what production's database has before them (here a
    schema the operators' reports live in; every test database is a copy of the result)."""
    with psycopg.connect(url.render_as_string(hide_password=False).replace(
            "postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA reporting")


@pytest.fixture
def client(db_url: URL) -> Iterator[FlaskClient]:
    engine = create_engine(db_url)
    app = create_app(engine)
    app.config["TESTING"] = True
    yield app.test_client()
    engine.dispose()
