"""`examples/notes_service`, a project with its own schema, run as its developers run it: its
suite, copied outside this repository (none of this repository's conftest or settings), with
the checker's plugin serving its databases from its own Alembic migrations; and the one-line
failures its settings can lead to."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notes_service"


def run_example(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "notes_service"
    if not project.exists():
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    # The provider the suite runs on (CHECKER_DB, CHECKER_DSN, CHECKER_PG_IMAGE) carries
    # over; nothing else of this repository's environment does.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_example_suite_passes_on_its_own_schema(tmp_path: Path, workers: list[str]
                                                    ) -> None:
    done = run_example(tmp_path, *workers)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "6 passed" in done.stdout


# The other usual ways an env.py finds its database, each with no variable set for it.
ENV_PY = {
    "url from the ini": """
from alembic import context
from sqlalchemy import create_engine, pool
from notes_service.models import Base

engine = create_engine(context.config.get_main_option("sqlalchemy.url"),
                       poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
""",
    "connection from the caller": """
from alembic import context
from notes_service.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
""",
}


@pytest.mark.parametrize("pattern", list(ENV_PY))
def test_the_usual_env_py_patterns_are_served(tmp_path: Path, pattern: str) -> None:
    project = tmp_path / "notes_service"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "migrations" / "env.py").write_text(ENV_PY[pattern])
    done = run_example(tmp_path, "-o", "checker_alembic_env=")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "6 passed" in done.stdout


def test_an_extension_no_installation_has_is_named_with_the_provider(tmp_path: Path) -> None:
    done = run_example(tmp_path, "-o", "checker_extensions=citext no_such_extension", "-x")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "has no extension no_such_extension" in output, output[-3000:]
    assert "container provider" in output  # where to get it


def test_an_env_py_that_gets_no_url_is_reported_in_one_line(tmp_path: Path) -> None:
    done = run_example(tmp_path, "-o", "checker_alembic_env=", "-x")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "failed: RuntimeError: set NOTES_DATABASE_URL" in output, output[-3000:]


def test_a_missing_alembic_ini_is_a_usage_error(tmp_path: Path) -> None:
    done = run_example(tmp_path, "-o", "checker_alembic_ini=nowhere/alembic.ini", "-x")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "checker_alembic_ini: no Alembic ini at" in output, output[-3000:]
