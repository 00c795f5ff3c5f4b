"""Bad values for every option of `checker db ...`, `checker audit` and `checker
isolation-matrix`, for real in subprocesses (`python -m checker`): the right exit code (2 bad
usage or configuration, 3 unreachable), a message naming the problem, no traceback, no
password. The checker's own errors are one line; Typer's usage errors are its usage panel.

Cases already in test_cli_db.py and test_audit_cli.py are not repeated. The subprocesses run
four at a time, once per module; each test checks one case.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from checker.janitor import DatabaseJanitor
from taskhub.db import libpq_url

DOWN = "postgresql://u:pw-secret@127.0.0.1:1/x"  # nothing listens on port 1
BAD_URL = "postgresql://u:pw-secret@[broken/x"


@dataclass(frozen=True)
class Case:
    """`checker ARGS` (with {db}, {file}, {dir} filled in) under extra environment `env`."""

    args: tuple[str, ...]
    code: int
    message: str
    env: tuple[tuple[str, str], ...] = ()


def case(command: str, code: int, message: str, **env: str) -> Case:
    return Case(tuple(command.split("|")), code, message, tuple(env.items()))


CASES = {
    # db up
    "up: empty dsn": case("db|up|--dsn|", 2, "needs --dsn"),
    "up: malformed dsn": case(f"db|up|--dsn|{BAD_URL}", 2, "bad --dsn"),
    "up: unknown URL parameter": case("db|up|--dsn|postgresql://u:pw-secret@h/d?nope=1", 2,
                                      'invalid URI query parameter: "nope"'),
    "up: --keep takes no value": case("db|up|--keep|yes", 2, "unexpected extra argument"),
    "up: CHECKER_DB unknown": case("db|up", 2, "unknown database provider 'cloud'",
                                   CHECKER_DB="cloud"),
    # db check
    "check: unknown --db": case("db|check|--db|cloud", 2, "unknown database provider"),
    "check: not postgres": case("db|check|--dsn|mysql://u:pw-secret@h/d", 2,
                                "not a PostgreSQL URL"),
    "check: empty dsn": case("db|check|--dsn|", 2, "needs --dsn"),
    "check: dsn with --db embedded": case(f"db|check|--db|embedded|--dsn|{DOWN}", 2,
                                          "cannot go with --db embedded"),
    "check: unreachable": case(f"db|check|--dsn|{DOWN}", 3, "cannot connect"),
    "check: CHECKER_DSN not postgres": case("db|check", 2, "not a PostgreSQL URL",
                                            CHECKER_DSN="mysql://u:pw-secret@h/d"),
    # db upgrade
    "upgrade: no dsn": case("db|upgrade", 2, "Missing option '--dsn'"),
    "upgrade: empty dsn": case("db|upgrade|--dsn|", 2, "--dsn is empty"),
    "upgrade: malformed dsn": case(f"db|upgrade|--dsn|{BAD_URL}", 2, "bad --dsn"),
    "upgrade: unreachable": case(f"db|upgrade|--dsn|{DOWN}", 3, "cannot connect"),
    "upgrade: unknown revision": case("db|upgrade|--dsn|{db}|--revision|nonsense", 2,
                                      "Can't locate revision identified by 'nonsense'"),
    "upgrade: relative revision": case("db|upgrade|--dsn|{db}|--revision|+3", 2,
                                       "bad revision"),
    "upgrade: empty revision": case("db|upgrade|--dsn|{db}|--revision|", 2,
                                    "the revision is empty"),
    "upgrade --sql: unknown revision": case(
        f"db|upgrade|--dsn|{DOWN}|--sql|--revision|nonsense", 2, "Can't locate revision"),
    "upgrade --sql: empty revision": case(f"db|upgrade|--dsn|{DOWN}|--sql|--revision|", 2,
                                          "the revision is empty"),
    "upgrade --sql: takes no value": case(f"db|upgrade|--dsn|{DOWN}|--sql|yes", 2,
                                          "unexpected extra argument"),
    # db downgrade
    "downgrade: no dsn": case("db|downgrade", 2, "Missing option '--dsn'"),
    "downgrade: not postgres": case("db|downgrade|--dsn|mysql://h/d", 2,
                                    "not a PostgreSQL URL"),
    "downgrade: unreachable": case(f"db|downgrade|--dsn|{DOWN}", 3, "cannot connect"),
    "downgrade: unknown revision": case("db|downgrade|--dsn|{db}|--revision|0999", 2,
                                        "Can't locate revision identified by '0999'"),
    "downgrade: upwards": case("db|downgrade|--dsn|{db}|--revision|+1", 2, "bad revision"),
    # db current
    "current: empty dsn": case("db|current|--dsn|", 2, "--dsn is empty"),
    "current: CHECKER_DSN not postgres": case("db|current", 2, "not a PostgreSQL URL",
                                              CHECKER_DSN="mysql://u:pw-secret@h/d"),
    # db history
    "history: extra argument": case("db|history|extra", 2, "unexpected extra argument"),
    "history: takes no dsn": case(f"db|history|--dsn|{DOWN}", 2, "No such option: --dsn"),
    # db adopt
    "adopt: no dsn": case("db|adopt", 2, "Missing option '--dsn'"),
    "adopt: not postgres": case("db|adopt|--dsn|mysql://h/d", 2, "not a PostgreSQL URL"),
    "adopt: unreachable": case(f"db|adopt|--dsn|{DOWN}", 3, "cannot connect"),
    "adopt: already versioned": case("db|adopt|--dsn|{db}", 2, "already versioned"),
    # audit
    "audit: no dsn": case("audit", 2, "Missing option '--dsn'"),
    "audit: empty dsn": case("audit|--dsn|", 2, "--dsn is empty"),
    "audit: malformed dsn": case(f"audit|--dsn|{BAD_URL}", 2, "bad --dsn"),
    "audit: samples zero": case(f"audit|--dsn|{DOWN}|--samples|0", 2,
                                "Invalid value for '--samples'"),
    "audit: samples not a number": case(f"audit|--dsn|{DOWN}|--samples|many", 2,
                                        "Invalid value for '--samples'"),
    "audit: negative isolation tenants": case(f"audit|--dsn|{DOWN}|--isolation-tenants|-1", 2,
                                              "Invalid value for '--isolation-tenants'"),
    "audit: empty --only": case(f"audit|--dsn|{DOWN}|--only|", 2, "--only needs"),
    "audit: history is a directory": case(f"audit|--dsn|{DOWN}|--history|{{dir}}", 2,
                                          "is not a regular file"),
    "audit: --json takes no value": case(f"audit|--dsn|{DOWN}|--json|yes", 2,
                                         "unexpected extra argument"),
    "audit: CHECKER_MIN_ARGON2 malformed": case(f"audit|--dsn|{DOWN}", 2,
                                                "bad Argon2id minimum",
                                                CHECKER_MIN_ARGON2="strong"),
    # isolation-matrix
    "matrix: unknown --db": case("isolation-matrix|--db|cloud", 2, "unknown database provider"),
    "matrix: not postgres": case("isolation-matrix|--dsn|mysql://h/d", 2,
                                 "not a PostgreSQL URL"),
    "matrix: malformed dsn": case(f"isolation-matrix|--dsn|{BAD_URL}", 2, "bad --dsn"),
    "matrix: unreachable": case(f"isolation-matrix|--dsn|{DOWN}", 3, "cannot connect"),
    "matrix: report dir is a file": case("isolation-matrix|--dsn|{db}|--report-dir|{file}", 2,
                                         "cannot write the report"),
}


@dataclass(frozen=True)
class Outcome:
    """What a user sees."""

    returncode: int
    stdout: str
    stderr: str


def run(case: Case, values: dict[str, str]) -> Outcome:
    args = [arg.format(**values) for arg in case.args]
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHECKER_DB", "CHECKER_DSN", "CHECKER_MIN_ARGON2")}
    done = subprocess.run([sys.executable, "-m", "checker", *args], capture_output=True,
                          text=True, timeout=120, check=False, env={**env, **dict(case.env)})
    return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def outcomes(pg_janitor: DatabaseJanitor, pg_template: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """Every case, run four at a time; {db} is a database at head."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "a-file").write_text("not a directory\n")
    with pg_janitor.ephemeral(template=pg_template) as url:
        values = {"db": libpq_url(url), "file": str(folder / "a-file"), "dir": str(folder)}
        with ThreadPoolExecutor(4) as pool:
            results = dict(zip(CASES, pool.map(lambda c: run(c, values), CASES.values()),
                               strict=True))
        yield results


@pytest.mark.parametrize("name", CASES)
def test_bad_value(outcomes: dict[str, Outcome], name: str) -> None:
    expected, seen = CASES[name], outcomes[name]
    assert seen.returncode == expected.code, seen.stderr
    assert expected.message in seen.stderr, seen.stderr
    assert "Traceback" not in seen.stderr and seen.stdout == ""
    assert "pw-secret" not in seen.stderr
    lines = seen.stderr.strip().splitlines()
    assert lines == [lines[-1]] and lines[0].startswith("error: "), seen.stderr

