"""Another project's suite, in a folder outside this repository, run with everything this
repository's dev extra installs (the checker's plugin, pytest-xdist, hypothesis): the plugin
loads, imports nothing of taskhub, starts nothing for tests that ask for no database (also
under xdist), and breaks no collection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

OUTSIDE_TESTS = '''
import sys


def test_the_plugin_is_loaded(pytestconfig):
    assert pytestconfig.pluginmanager.hasplugin("checker")


def test_loading_it_imported_nothing_of_taskhub():
    assert not [name for name in sys.modules if name.startswith("taskhub")]


def test_its_markers_share_one_prefix(pytestconfig):
    markers = [line.split(":")[0] for line in pytestconfig.getini("markers")]
    ours = [m for m in markers if "audit" in m]
    assert ours and all(m.startswith("checker_") for m in ours)
'''


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_another_projects_suite_runs_untouched(tmp_path: Path, workers: list[str]) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_app.py").write_text(OUTSIDE_TESTS)
    (project / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0"\n')
    # A provider nobody can start: anything the plugin started would fail the run.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("CHECKER_", "PYTEST"))},
           "CHECKER_DB": "no-such-provider"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *workers], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 passed" in done.stdout
