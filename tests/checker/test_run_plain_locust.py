"""Plain Locust (`locust -f scenarios/<name>.py`) against a database of one's own: the history
claims to explain every task only when the database had none, and the audit command it prints
names no password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import URL

from checker.cli import main  # noqa: F401 - the CLI must import (plain Locust's users)
from checker.load.catalogue import path_of
from taskhub.db import libpq_url


def plain_locust(url: URL, history: Path, seed: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKHUB_DATABASE_URL": libpq_url(url), "CHECKER_HISTORY":
           str(history), "CHECKER_SEED": str(seed), "CHECKER_ARGON2": "test"}
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(path_of("lifecycle")), "--headless",
         "-u", "4", "-r", "50", "-t", "3s", "--stop-timeout", "5", "--loglevel", "INFO"],
        capture_output=True, text=True, env=env, timeout=120, check=False)


def header(history: Path) -> dict[str, object]:
    first = next(json.loads(line) for line in history.read_text().splitlines()
                 if '"run.start"' in line)
    assert isinstance(first, dict)
    return first


def audit(url: URL, history: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "checker", "audit", "--dsn", libpq_url(url), "--history",
         str(history), "--min-argon2", "m=1024,t=1,p=1"], capture_output=True, text=True,
        timeout=120, check=False)


def test_a_second_plain_run_on_the_same_database_audits_clean(db_url: URL,
                                                               tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    done = plain_locust(db_url, first, seed=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert header(first)["args"] == {"complete": True, "scenario": "lifecycle"}
    [line] = [line for line in done.stderr.splitlines() if "audit with:" in line]
    assert "***" in line and str(db_url.password) not in done.stderr + done.stdout
    assert audit(db_url, first).returncode == 0

    again = plain_locust(db_url, second, seed=2)
    assert again.returncode == 0, again.stderr[-3000:]
    assert header(second)["args"] == {"complete": False, "scenario": "lifecycle"}
    checked = audit(db_url, second)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
