"""Kept means kept: what `--keep` created is never swept, not even after its creator exited
and another session started on the same server; `checker db list` shows it (no password) and
`checker db rm` removes it."""

from __future__ import annotations

import psycopg
import pytest

from checker.janitor import DatabaseJanitor
from checker.provision import Server
from checker.provision.container import ContainerProvider
from checker.provision.embedded import EmbeddedProvider, base_dir, sweep_stale_dirs
from taskhub.db import libpq_url
from tests.checker.run_support import checker
from tests.support import answers, needs_docker


def _listed(*args: str) -> dict[str, list[str]]:
    done = checker("db", "list", *args)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines() if line.strip()]
    return {row[1]: row for row in rows}


def _kept_up(*args: str) -> str:
    done = checker("db", "up", "--keep", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_kept_database_survives_other_sessions_until_removed(pg_server: Server) -> None:
    dsn = libpq_url(pg_server.url)
    url = _kept_up("--dsn", dsn)  # its process has exited: a dead owner, by design
    name = url.rsplit("/", 1)[-1]
    janitor = DatabaseJanitor(pg_server.url)
    try:
        assert name not in janitor.sweep_stale()  # what another session does first
    finally:
        janitor.close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()
    row = _listed("--dsn", dsn)[name]
    assert row[0] == "database" and name in row[3]
    password = pg_server.url.password
    assert password and password not in "\t".join(row)
    done = checker("db", "rm", name, "--dsn", dsn)
    assert done.returncode == 0 and f"removed database {name}" in done.stderr, done.stderr
    assert name not in _listed("--dsn", dsn)
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(url).close()


def test_a_kept_embedded_server_is_listed_and_never_swept() -> None:
    url = _kept_up("--db", "embedded")  # its owner has exited
    [server] = [s for s in EmbeddedProvider.kept_servers() if f":{s.url.port}/" in url]
    try:
        swept = sweep_stale_dirs(base_dir())  # what the next embedded start does first
        assert server.name not in {path.name for path in swept}
        assert answers(url)
        listed = _listed()
        assert listed[server.name][0] == "server"
        database = url.rsplit("/", 1)[-1]
        assert listed[database][2] == f"embedded {server.name}"
        assert url.split("@")[0].rsplit(":", 1)[-1] not in "\t".join(listed[server.name])
    finally:
        done = checker("db", "rm", server.name)
    assert done.returncode == 0, done.stderr
    assert not answers(url)
    assert server.name not in _listed()


@needs_docker
def test_a_kept_container_is_listed_and_removed() -> None:
    url = _kept_up("--db", "container")
    [server] = [s for s in ContainerProvider.kept_servers() if f":{s.url.port}/" in url]
    try:
        assert _listed()[server.name][0] == "server"
    finally:
        done = checker("db", "rm", server.name)
    assert done.returncode == 0, done.stderr
    assert not answers(url)


def test_rm_needs_a_known_name_or_all() -> None:
    done = checker("db", "rm", "checker_db_nothing_here")
    assert done.returncode == 2 and "nothing kept is called" in done.stderr
    done = checker("db", "rm")
    assert done.returncode == 2 and "or --all" in done.stderr
