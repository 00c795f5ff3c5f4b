"""Shared test configuration. The database fixtures come from the checker's pytest plugin
(`checker.pytest_plugin`: pg_server, pg_janitor, pg_template, db_url, db_engine); here, a
private server for the tests that change cluster-wide state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import URL

if TYPE_CHECKING:
    from checker.janitor import DatabaseJanitor


@dataclass(frozen=True)
class PrivateServer:
    """A server of this process's own and its migrated template."""

    janitor: DatabaseJanitor
    template: str


@pytest.fixture(scope="session")
def private_janitor(pytestconfig: pytest.Config) -> Iterator[PrivateServer]:
    """A second server, started on first use, for the few tests that change cluster-wide
    state (the group roles, membership in the owner) for the length of an audit: on the
    shared server every other test's audit would see it. (With CHECKER_DSN it is the same
    server: there is no other.)"""
    from checker.janitor import DatabaseJanitor
    from checker.pytest_plugin import build_template, provider_for

    with provider_for(pytestconfig) as server:
        janitor = DatabaseJanitor(server.url)
        template = build_template(pytestconfig, janitor, server.provider)
        try:
            yield PrivateServer(janitor, template)
        finally:
            janitor.drop(template)
            janitor.close()


@pytest.fixture
def private_db_url(private_janitor: PrivateServer) -> Iterator[URL]:
    """`db_url`, on the private server (not audited by the plugin: it audits `db_url`)."""
    with private_janitor.janitor.ephemeral(template=private_janitor.template) as url:
        yield url
