"""The pytest plugin audits every test's database after the test, unless marked checker_no_audit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = '''
import pytest
from sqlalchemy import text

def corrupt(engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, email, password_hash) VALUES "
                          "('00000000-0000-4000-8000-000000000001', 'a@example.com', 'x')"))

def test_clean(db_engine):
    with db_engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM tasks")).scalar_one() == 0

def test_corrupts_unmarked(db_engine):
    corrupt(db_engine)

@pytest.mark.checker_no_audit
def test_corrupts_marked(db_engine):
    corrupt(db_engine)

def test_fails_by_itself(db_engine):
    corrupt(db_engine)
    assert False, "the test's own failure"

def test_no_database():
    pass
'''


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's settings
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf", *args,
         str(tmp_path / "test_sample.py")],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
        # The short summary repeats each failure's message cut to the terminal's width:
        # pin the width so the output does not depend on where the suite runs.
        env={**os.environ, "COLUMNS": "100"})


def test_the_audit_fails_exactly_the_unmarked_corrupting_test(tmp_path: Path) -> None:
    done = run_pytest(tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "2 failed, 3 passed" in out, out
    assert "FAILED test_sample.py::test_corrupts_unmarked" in out
    assert "FAILED test_sample.py::test_fails_by_itself" in out
    assert "the consistency audit of this test's database failed" in out
    assert "auth.argon2id_hashes: fail: 1 violation(s)" in out
    assert "'hash_scheme': '(no $scheme$ prefix)'" in out
    # A test that fails on its own is reported for its own reason, not the audit's.
    failures = out.split("short test summary info")[0]
    assert failures.count("the consistency audit of this test's database failed") == 1


def test_the_audit_can_be_turned_off(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--checker-no-audit")
    assert "1 failed, 4 passed" in done.stdout, done.stdout + done.stderr
