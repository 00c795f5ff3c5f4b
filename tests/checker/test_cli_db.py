"""`checker db ...` end to end in a subprocess: URLs that psql accepts, Ctrl-C that leaves
nothing behind, `--keep`, migrations by DSN, and one-line errors with the right exit codes."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL

from checker import migrate
from checker.janitor import DatabaseJanitor
from checker.provision import Server
from checker.provision.embedded import DIR_PREFIX, find_bindir
from taskhub.db import libpq_url
from tests.support import answers, needs_docker

CHECKER = [sys.executable, "-m", "checker"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHECKER, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


@contextmanager
def db_up(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen([*CHECKER, "db", "up", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("postgresql://"), proc.stderr.read() if proc.stderr else url
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def psql(url: str, query: str) -> str:
    done = subprocess.run([str(find_bindir() / "psql"), url, "-XAtc", query],
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def test_db_up_prints_a_url_psql_accepts_and_ctrl_c_removes_everything() -> None:
    with db_up("--db", "embedded") as (proc, url):
        assert psql(url, "SELECT version_num FROM alembic_version") == migrate.head()
        workdir = Path(psql(url, "SHOW data_directory")).parent  # this server's, no other's
        assert workdir.name.startswith(DIR_PREFIX) and workdir.is_dir()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert not workdir.exists()
    assert not answers(url)


def test_db_up_stops_cleanly_on_sigterm_too() -> None:
    with db_up("--db", "embedded") as (proc, url):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not answers(url)


@needs_docker
def test_db_up_on_a_container_leaves_no_container_after_ctrl_c() -> None:
    import docker

    with db_up("--db", "container") as (proc, url):
        assert psql(url, "SELECT count(*) FROM tasks") == "0"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    assert not docker.from_env().containers.list(
        all=True, filters={"label": f"io.taskhub-checker.owner={proc.pid}"})
    assert not answers(url)


def test_db_up_keep_leaves_the_server_and_says_how_to_stop_it() -> None:
    done = run("db", "up", "--db", "embedded", "--keep")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    hint = re.search(r"stop it with: (.+)", done.stderr)
    assert hint, done.stderr
    try:
        assert psql(url, "SELECT 1") == "1"
    finally:
        for command in hint.group(1).split(";"):
            subprocess.run(shlex.split(command), check=True)
    assert not answers(url)


def test_db_up_on_a_dsn_creates_and_drops_its_own_database(pg_server: Server) -> None:
    with db_up("--dsn", libpq_url(pg_server.url)) as (proc, url):
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        assert str(name).startswith("checker_db_")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    with psycopg.connect(libpq_url(pg_server.url)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() == (0,)


def test_upgrade_downgrade_current_by_dsn(pg_janitor: DatabaseJanitor) -> None:
    with pg_janitor.ephemeral() as url:
        dsn = libpq_url(url)
        assert run("db", "current", "--dsn", dsn).stdout.strip() == "none"
        assert run("db", "upgrade", "--dsn", dsn, "--revision", "0001").returncode == 0
        assert run("db", "current", "--dsn", dsn).stdout.strip() == "0001"
        assert run("db", "upgrade", "--dsn", dsn).returncode == 0
        head = migrate.head()
        assert run("db", "current", "--dsn", dsn).stdout.strip() == head
        assert run("db", "downgrade", "--dsn", dsn).returncode == 0
        assert run("db", "current", "--dsn", dsn).stdout.strip() == f"{int(head) - 1:04d}"
        assert run("db", "downgrade", "--dsn", dsn, "--revision", "base").returncode == 0
        assert run("db", "current", "--dsn", dsn).stdout.strip() == "none"


def test_upgrade_sql_and_history_need_no_server() -> None:
    sql = run("db", "upgrade", "--dsn", "postgresql://u@127.0.0.1:1/x", "--sql")
    assert sql.returncode == 0 and "CREATE TABLE tasks" in sql.stdout
    history = run("db", "history")
    assert history.returncode == 0
    assert re.search(r"^0001 ", history.stdout, re.M)
    assert f"{migrate.head()} (head)" in history.stdout


def test_db_check_passes_on_a_fresh_server(pg_server: Server) -> None:
    done = run("db", "check", "--dsn", libpq_url(pg_server.url))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("args", "code", "message"), [
    (["db", "up", "--db", "cloud"], 2, "unknown database provider 'cloud'"),
    (["db", "up", "--db", "dsn"], 2, "needs --dsn"),
    (["db", "up", "--dsn", "mysql://u@h/d"], 2, "bad --dsn"),
    (["db", "up", "--dsn", "postgresql://u:pw@127.0.0.1:1/x"], 3, "cannot connect"),
    (["db", "current", "--dsn", "postgresql://u:pw@127.0.0.1:1/x"], 3, "cannot connect"),
    (["db", "current"], 2, "Missing option"),
    (["db", "frobnicate"], 2, "No such command"),
    (["db", "up", "--users", "3"], 2, "No such option"),
])
def test_bad_usage_gives_one_line_and_the_right_exit_code(
        args: list[str], code: int, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHECKER_DSN", raising=False)
    done = run(*args)
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    if code == 3:
        assert len(done.stderr.strip().splitlines()) == 1
        assert "pw@" not in done.stderr


def test_url_helpers_round_trip() -> None:
    url = URL.create("postgresql+psycopg", username="u", password="p@ss", host="h", port=1,
                     database="d")
    assert libpq_url(url) == "postgresql://u:p%40ss@h:1/d"


def test_url_parameters_reach_libpq_as_written() -> None:
    """A space in a parameter stays a space for libpq (SQLAlchemy alone would render `+`)."""
    url = "postgresql+psycopg://u:p@h:1/d?options=-c%20statement_timeout%3D1234&sslmode=disable"
    assert conninfo_to_dict(libpq_url(url)) == {
        "user": "u", "password": "p", "host": "h", "port": "1", "dbname": "d",
        "options": "-c statement_timeout=1234", "sslmode": "disable"}
    assert libpq_url(libpq_url(url)) == libpq_url(url)


def test_a_dsn_with_options_connects_with_them(db_url: URL) -> None:
    with_options = db_url.set(query={"options": "-c statement_timeout=1234"})
    with psycopg.connect(libpq_url(with_options)) as conn:
        row = conn.execute("SHOW statement_timeout").fetchone()
    assert row == ("1234ms",)
