"""`checker audit`: exit codes 0/1/2/3, the table, the JSON. Through `checker.cli.main` in
this process (argv in; exit code, stdout and stderr out, as a user sees them), and once for
real in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest
from sqlalchemy import URL

from checker import migrate
from checker.audit.synthetic import task_id, user_id
from checker.cli import main
from checker.history import HistoryError, read_history, write_history
from checker.janitor import DatabaseJanitor
from taskhub.db import libpq_url
from tests.checker.audit_support import full_history, owner, seed

TEST_MIN = ["--min-argon2", "m=1024,t=1,p=1"]


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


Invoke = Callable[..., Run]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Invoke:
    """`checker audit ARGS...` in this process (main's SIGTERM handler is undone after)."""
    monkeypatch.setattr(signal, "signal", lambda *_args: None)
    for name in ("CHECKER_DSN", "CHECKER_MIN_ARGON2"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str) -> Run:
        monkeypatch.setattr(sys, "argv", ["checker", "audit", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        out, err = capsys.readouterr()
        return Run(int(exited.value.code or 0), out, err)
    return invoke


def test_clean_database_exits_0_with_a_table(db_url: URL, run: Invoke) -> None:
    seed(db_url)
    done = run("--dsn", libpq_url(db_url), *TEST_MIN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "transitions.legal_path" in done.stdout and "clean" in done.stdout


def test_json_shape(db_url: URL, tmp_path: Path, run: Invoke) -> None:
    seed(db_url)
    history = tmp_path / "history.jsonl"
    write_history(history, full_history())
    done = run("--dsn", libpq_url(db_url), "--history", str(history), "--json", *TEST_MIN)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"ok", "checks"} and data["ok"] is True
    names = [check["name"] for check in data["checks"]]
    assert "ledger.single_winner" in names and "schema.row_level_security" in names
    for check in data["checks"]:
        assert {"name", "status", "violations", "samples"} <= set(check)
        assert check["status"] == "pass" and check["violations"] == 0 and check["samples"] == []


@pytest.mark.checker_no_audit
def test_corrupted_database_exits_1(db_url: URL, tmp_path: Path, run: Invoke) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("UPDATE tasks SET version = 7 WHERE id = %s", (task_id(3),))
    done = run("--dsn", libpq_url(db_url), "--json", *TEST_MIN)
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] is False
    [bad] = [c for c in data["checks"] if c["status"] != "pass"]
    assert bad["name"] == "transitions.version_counts_events" and bad["violations"] == 1
    assert bad["samples"] == [{"task_id": str(task_id(3)), "version": 7, "events": 3}]
    table = run("--dsn", libpq_url(db_url), *TEST_MIN)
    assert table.returncode == 1 and "violations found" in table.stdout
    assert str(task_id(3)) in table.stdout
    junit = tmp_path / "junit.xml"
    assert run("--dsn", libpq_url(db_url), "--junit-xml", str(junit), *TEST_MIN).returncode == 1
    suites = ElementTree.parse(junit).getroot()  # noqa: S314 - our own output
    assert suites.get("failures") == "1" and int(suites.get("tests", "0")) == len(data["checks"])
    failure = suites.find(".//testcase[@name='transitions.version_counts_events']/failure")
    assert failure is not None and str(task_id(3)) in (failure.text or "")


@pytest.mark.checker_no_audit
def test_for_real_in_a_subprocess(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY")
    done = subprocess.run([sys.executable, "-m", "checker", "audit", "--dsn", libpq_url(db_url),
                           "--json", *TEST_MIN], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 1, done.stderr
    failed = [c["name"] for c in json.loads(done.stdout)["checks"] if c["status"] != "pass"]
    assert failed == ["schema.row_level_security"]


def test_cheap_hashes_fail_the_default_policy(db_url: URL, run: Invoke,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seed(db_url)
    assert run("--dsn", libpq_url(db_url), "--only", "auth", "--json").returncode == 1
    monkeypatch.setenv("CHECKER_MIN_ARGON2", "m=1024,t=1,p=1")
    assert run("--dsn", libpq_url(db_url), "--only", "auth").returncode == 0


def test_only_one_family(db_url: URL, run: Invoke) -> None:
    done = run("--dsn", libpq_url(db_url), "--only", "schema", "--json")
    assert done.returncode == 0
    assert {c["name"].split(".")[0] for c in json.loads(done.stdout)["checks"]} == {"schema"}


@pytest.mark.parametrize(("args", "message"), [
    (["--only", "nonsense"], "unknown check family 'nonsense'"),
    (["--only", "ledger"], "ledger needs a history"),
    (["--min-argon2", "m=lots"], "bad Argon2id minimum"),
])
def test_usage_errors_exit_2(db_url: URL, run: Invoke, args: list[str], message: str) -> None:
    done = run("--dsn", libpq_url(db_url), *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: {message}")
    assert len(done.stderr.strip().splitlines()) == 1


def test_bad_dsn_exits_2(run: Invoke) -> None:
    done = run("--dsn", "mysql://u:p@h/db")
    assert done.returncode == 2 and "not a PostgreSQL URL" in done.stderr


def test_malformed_history_exits_2(db_url: URL, tmp_path: Path, run: Invoke) -> None:
    history = tmp_path / "history.jsonl"
    history.write_text('{"process": "p"}\n')
    done = run("--dsn", libpq_url(db_url), "--history", str(history))
    assert done.returncode == 2
    assert f"{history}:1: malformed history record: missing field(s)" in done.stderr
    missing = run("--dsn", libpq_url(db_url), "--history", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read history" in missing.stderr


def test_unreachable_dsn_exits_3(run: Invoke) -> None:
    done = run("--dsn", "postgresql://nobody:secret@127.0.0.1:1/none")
    assert done.returncode == 3
    assert "cannot connect" in done.stderr and "secret" not in done.stderr


@pytest.fixture
def empty_database(pg_janitor: DatabaseJanitor) -> Iterator[URL]:
    """A database with no schema at all."""
    url = pg_janitor.create()
    assert url.database is not None
    yield url
    pg_janitor.drop(url.database)


def test_an_empty_database_is_one_line_and_exit_1(empty_database: URL, run: Invoke) -> None:
    done = run("--dsn", libpq_url(empty_database), *TEST_MIN)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: not a taskhub database: no alembic_version table (found revision: none; the "
        f"audit checks revision {migrate.head()})"]


@pytest.mark.checker_no_audit
def test_a_database_at_another_revision_is_refused(db_url: URL, run: Invoke) -> None:
    with owner(db_url) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0008'")
    done = run("--dsn", libpq_url(db_url), *TEST_MIN)
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "at revision 0008" in line and f"checks revision {migrate.head()}" in line


@pytest.mark.checker_no_audit
@pytest.mark.parametrize("role", ["taskhub_app", "taskhub_worker"])
def test_an_audit_that_cannot_see_every_row_is_refused(db_url: URL, run: Invoke,
                                                        role: str) -> None:
    """As a role under row-level security the orphan below is invisible: refused (exit 3),
    never a clean verdict."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK trigger: an orphan
        conn.execute("DELETE FROM users WHERE id = %s", (user_id(1),))
    narrowed = db_url.update_query_dict({"options": f"-crole={role}"})
    done = run("--dsn", libpq_url(narrowed), "--only", "orphans", *TEST_MIN)
    assert done.returncode == 3, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"(role {role}) cannot see every row" in line and "users" in line
    full = run("--dsn", libpq_url(db_url), "--only", "orphans", *TEST_MIN)
    assert full.returncode == 1 and "orphans.tasks_without_user" in full.stdout


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_text("[" * 100_000 + "]" * 100_000 + "\n"), ":1: malformed history "
     "record: JSON nested too deeply"),
    (lambda p: p.write_text('{"process": "p", "op": "x", "args": {"pad": "' + "x" * (2 << 20)
                            + '"}}\n'), ":1: malformed history record: line longer than"),
    (lambda p: p.write_bytes(b"\xff\xfe not utf-8\n"), "is not UTF-8 text"),
    (lambda p: os.mkfifo(p), "is not a regular file"),
    (lambda p: p.symlink_to("/dev/zero"), "is not a regular file"),
    (lambda p: p.mkdir(), "is not a regular file"),
], ids=["deep", "huge-line", "binary", "fifo", "dev-zero", "directory"])
def test_bad_history_input_is_one_line_and_exit_2(db_url: URL, tmp_path: Path, run: Invoke,
                                                  make: Callable[[Path], object],
                                                  message: str) -> None:
    """Refused promptly (a FIFO with no writer does not block), in bounded memory (a line with
    no end is not read past the limit), without a traceback."""
    history = tmp_path / "history.jsonl"
    make(history)
    done = run("--dsn", libpq_url(db_url), "--history", str(history), *TEST_MIN)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert message in line and "Traceback" not in done.stderr


def test_a_history_line_without_end_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """A regular file of 64 MiB with no newline: refused after reading the first MiB."""
    history = tmp_path / "history.jsonl"
    with history.open("wb") as f:
        f.truncate(64 << 20)  # sparse: zeros, no newline
    tracemalloc.start()
    try:
        with pytest.raises(HistoryError, match="line longer than"):
            read_history(history)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
