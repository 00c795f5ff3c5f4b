"""The DSN provider reaches an existing server, refuses bad URLs (exit 2) and unreachable or
unprivileged servers (exit 3); `auto` picks the right provider."""

from __future__ import annotations

import psycopg
import pytest

from checker.errors import InfrastructureError, UsageError
from checker.provision import Server, select_provider
from checker.provision.container import ContainerProvider, container_usable
from checker.provision.dsn import DsnProvider, parse_dsn
from checker.provision.embedded import EmbeddedProvider
from taskhub.db import libpq_url
from tests.support import needs_docker


def test_reaches_the_server_and_leaves_it_running(pg_server: Server) -> None:
    provider = DsnProvider(libpq_url(pg_server.url))
    with provider as server:
        assert server.provider == "dsn"
        assert server.url.database == pg_server.url.database
    psycopg.connect(libpq_url(pg_server.url)).close()  # stop() did not touch it


@pytest.mark.parametrize("dsn", ["", "   ", "mysql://u@h/db", "not a url at all"])
def test_malformed_dsn_is_a_usage_error(dsn: str) -> None:
    with pytest.raises(UsageError, match="dsn") as failure:
        parse_dsn(dsn)
    assert failure.value.exit_code == 2


def test_database_defaults_to_postgres() -> None:
    assert parse_dsn("postgresql://u:p@db.example:5433").database == "postgres"


def test_unreachable_server_is_an_infrastructure_error() -> None:
    expected = r"cannot connect to u@127\.0\.0\.1:1/x"
    with pytest.raises(InfrastructureError, match=expected) as failure:
        DsnProvider("postgresql://u:secret@127.0.0.1:1/x").__enter__()
    assert failure.value.exit_code == 3
    assert "secret" not in str(failure.value)


def test_role_that_cannot_create_databases_is_refused(pg_server: Server) -> None:
    with psycopg.connect(libpq_url(pg_server.url), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS checker_nocreatedb")
        conn.execute("CREATE ROLE checker_nocreatedb LOGIN PASSWORD 'pw' NOCREATEDB")
    try:
        url = pg_server.url.set(username="checker_nocreatedb", password="pw")
        with pytest.raises(InfrastructureError, match="may not CREATE DATABASE"):
            DsnProvider(libpq_url(url)).__enter__()
    finally:
        with psycopg.connect(libpq_url(pg_server.url), autocommit=True) as conn:
            conn.execute("DROP ROLE checker_nocreatedb")


def test_auto_prefers_a_dsn_then_docker_then_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHECKER_DB", raising=False)
    monkeypatch.delenv("CHECKER_DSN", raising=False)
    assert isinstance(select_provider("auto", "postgresql://u@h/db"), DsnProvider)
    expected = ContainerProvider if container_usable() else EmbeddedProvider
    assert isinstance(select_provider("auto"), expected)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert isinstance(select_provider("auto"), EmbeddedProvider)
    monkeypatch.setenv("CHECKER_DSN", "postgresql://u@h/db")
    assert isinstance(select_provider(None), DsnProvider)


@needs_docker
def test_auto_falls_back_to_embedded_when_the_image_cannot_be_had(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("CHECKER_DB", raising=False)
    monkeypatch.delenv("CHECKER_DSN", raising=False)
    monkeypatch.setenv("CHECKER_PG_IMAGE", "checker-test/no-such-image:0")
    assert isinstance(select_provider("auto"), EmbeddedProvider)
    assert "cannot be had" in caplog.text


def test_unknown_kind_and_dsn_kind_without_dsn_are_usage_errors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHECKER_DSN", raising=False)
    with pytest.raises(UsageError, match="unknown database provider 'cloud'"):
        select_provider("cloud")
    with pytest.raises(UsageError, match="needs --dsn"):
        select_provider("dsn")
    with pytest.raises(UsageError, match="cannot go with --db embedded"):
        select_provider("embedded", "postgresql://u@h/db")


def test_an_explicit_dsn_wins_over_checker_db_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKER_DB", "embedded")
    assert isinstance(select_provider(None, "postgresql://u@h/db"), DsnProvider)
