"""The package as a new user gets it: the wheel built from this tree, installed into a fresh
virtual environment outside the repository, migrates an embedded server and runs a scenario.

Nothing of the checkout is importable there (another directory, no PYTHONPATH, no editable
install): what is missing from the wheel (migrations, the Alembic configuration, scenario
files) fails here, as it would for the user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=900, check=False)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed() -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh venv with only the wheel (and its dependencies) installed, and the environment
    to run it in (no CHECKER_* or PYTHONPATH from this session)."""
    # World-readable, outside the repository: as root the embedded server runs the binaries
    # in this venv as an unprivileged user, who must be able to reach them.
    home = Path(tempfile.mkdtemp(prefix="checker-wheel-"))
    try:
        home.chmod(0o755)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("CHECKER_", "PYTHON", "VIRTUAL_ENV"))}
        _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
             home / "dist", ROOT, cwd=home, env=env)
        wheel = next((home / "dist").glob("*.whl"))
        _run(sys.executable, "-m", "venv", home / "venv", cwd=home, env=env)
        _run(home / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet",
             "--constraint", ROOT / "constraints.txt", wheel, cwd=home, env=env)
        yield home, env
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_the_installed_package_is_the_wheel_not_the_checkout(
        installed: tuple[Path, dict[str, str]]) -> None:
    home, env = installed
    found = _run(home / "venv" / "bin" / "python", "-c",
                 "import checker, scenarios, taskhub.migrations as m; "
                 "print(checker.__file__, scenarios.__file__, m.ALEMBIC_INI.is_file())",
                 cwd=home, env=env).stdout.split()
    assert all(path.startswith(str(home / "venv")) for path in found[:2]), found
    assert found[2] == "True"
    printed = _run(home / "venv" / "bin" / "checker", "--version", cwd=home, env=env).stdout
    assert printed == f"checker {version('taskhub-checker')}\n"


def test_the_installed_checker_migrates_and_runs_a_scenario(
        installed: tuple[Path, dict[str, str]]) -> None:
    home, env = installed
    check = _run(home / "venv" / "bin" / "checker", "db", "check", "--db", "embedded",
                 cwd=home, env=env)
    assert "schema revision" in check.stdout
    _run(home / "venv" / "bin" / "checker", "run", "concurrency", "--db", "embedded",
         "--duration", "5s", "--report-dir", home / "reports", cwd=home, env=env)
    summary = json.loads(next((home / "reports").glob("*/summary.json")).read_text())
    assert summary["ok"] is True, summary["problems"]
    assert summary["totals"]["requests"] > 0
