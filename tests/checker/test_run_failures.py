"""What `checker run` must refuse or fail: the deliberately broken transition and edit (caught
by the audit: exit 1, report names the checks and tasks), broken thresholds, bad usage (exit 2, one
line), an unreachable server (exit 3, one line), a process where psycopg would block."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from checker.provision import Server
from taskhub.db import libpq_url
from tests.checker.run_support import checker, run

UNSAFE = {"CHECKER_UNSAFE_TRANSITIONS": "1"}


def test_the_broken_transition_is_caught(pg_server: Server, tmp_path: Path) -> None:
    junit = tmp_path / "ci" / "junit.xml"
    result = run(pg_server, "transitions", tmp_path, "--users", "8", "--junit-xml", str(junit),
                 env=UNSAFE)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.summary
    assert not summary["ok"] and summary["parameters"]["unsafe"] == ["transitions"]
    failed = {c["name"]: c for c in summary["audit"]["checks"] if c["status"] != "pass"}
    assert "ledger.single_winner" in failed
    assert set(failed) <= {"ledger.single_winner", "transitions.legal_path",
                           "transitions.nothing_after_terminal"}
    task_ids = {s["task_id"] for s in failed["ledger.single_winner"]["samples"]}
    assert task_ids
    html = (result.folder / "report.html").read_text() if result.folder else ""
    assert "FAIL" in html and "ledger.single_winner" in html
    assert all(task in html for task in task_ids)
    assert "ledger.single_winner" in result.stdout
    assert summary["conditions"]["audit_clean"] == summary["problems"]

    # CI reads the same verdict: the failing check is a failed test case, with its samples.
    suites = ElementTree.parse(junit).getroot()  # noqa: S314 - our own output
    assert int(suites.get("failures", "0")) == len(failed) and suites.get("errors") == "0"
    case = suites.find(".//testcase[@name='ledger.single_winner']")
    assert case is not None and case.get("classname") == "checker.audit.ledger"
    failure = case.find("failure")
    assert failure is not None and failure.text is not None
    assert all(task in failure.text for task in task_ids)


def test_the_broken_edit_is_caught(pg_server: Server, tmp_path: Path) -> None:
    """Two tabs edit one task's title and payload at once; the broken edit writes back the
    field it did not change as it read it, reverting the other tab's acknowledged edit."""
    result = run(pg_server, "concurrency", tmp_path, "--users", "9",
                 env={"CHECKER_UNSAFE_EDITS": "1"})
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.summary
    assert summary["parameters"]["unsafe"] == ["edits"]
    failed = {c["name"]: c for c in summary["audit"]["checks"] if c["status"] != "pass"}
    assert set(failed) == {"ledger.acknowledged_edits_persist"}, failed
    [sample, *_] = failed["ledger.acknowledged_edits_persist"]["samples"]
    assert sample["field"] in ("title", "payload") and sample["task_id"]
    assert "ledger.acknowledged_edits_persist" in result.stdout


def test_fewer_users_than_asked_for_do_not_pass(pg_server: Server, tmp_path: Path) -> None:
    """Spawning 1 user a second, 50 users never all run in a 3 s run: clean, but not a pass."""
    result = run(pg_server, "lifecycle", tmp_path, "--users", "50", "--spawn-rate", "1")
    assert result.returncode == 1, result.stderr[-3000:]
    summary = result.summary
    assert summary["audit"]["ok"] and not summary["ok"]
    [problem] = summary["problems"]
    assert summary["conditions"]["load_ran"] == [problem]
    assert problem.startswith("only ") and "of the 50 users asked for ran at the peak" in problem


def test_a_broken_threshold_fails_a_clean_run(pg_server: Server, tmp_path: Path) -> None:
    result = run(pg_server, "lifecycle", tmp_path, "--p95-ms", "0.001",
                 "--max-fail-ratio", "1")
    assert result.returncode == 1, result.stderr[-3000:]
    summary = result.summary
    assert summary["audit"]["ok"] and not summary["ok"]
    assert summary["thresholds"]["broken"] == [p for p in summary["problems"] if "p95" in p]


@pytest.mark.parametrize(("args", "message"), [
    (("run", "nosuch"), "unknown scenario 'nosuch'"),
    (("run", "transitions", "--duration", "30x"), "bad --duration '30x'"),
    (("run", "transitions", "--duration", "0s"), "must be more than zero"),
    (("run", "transitions", "--users", "0"), "bad --users 0"),
    (("run", "transitions", "--spawn-rate", "-1"), "bad --spawn-rate"),
    (("run", "transitions", "--argon2", "md5"), "unknown Argon2 profile 'md5'"),
    (("run", "transitions", "--max-fail-ratio", "2"), "bad --max-fail-ratio"),
    (("explore", "nosuch"), "unknown scenario 'nosuch'"),
])
def test_bad_usage_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...],
                                          message: str) -> None:
    done = checker(*args, "--report-dir", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_an_unreachable_server_is_one_line_and_exit_3(tmp_path: Path) -> None:
    done = checker("run", "transitions", "--dsn", "postgresql://u:p@127.0.0.1:1/postgres",
                   "--report-dir", str(tmp_path), "--duration", "3s")
    assert done.returncode == 3, done.stdout + done.stderr
    lines = [line for line in done.stderr.strip().splitlines()
             if "XDG_RUNTIME_DIR" not in line and "user_runtime_dir" not in line]
    assert len(lines) == 1 and "cannot connect" in lines[0]


def test_run_refuses_when_psycopg_would_block_the_loop(pg_server: Server,
                                                       tmp_path: Path) -> None:
    """checker.cli imported without checker.entry's patching: psycopg keeps wait_c."""
    code = ("import sys; from checker.cli import main; sys.argv[0] = 'checker'; main()")
    done = subprocess.run([sys.executable, "-c", code, "run", "transitions", "--dsn",
                           libpq_url(pg_server.url), "--report-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "psycopg was imported before gevent" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
