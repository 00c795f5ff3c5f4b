"""`checker isolation-matrix` writes the matrix report and exits 0 when every cell matches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from checker.provision import Server
from taskhub.db import libpq_url


def test_isolation_matrix_command_writes_the_report(pg_server: Server, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "checker", "isolation-matrix", "--dsn",
                           libpq_url(pg_server.url), "--report-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "| P4: Lost update" in done.stdout
    (folder,) = tmp_path.iterdir()
    assert folder.name.endswith("-isolation-matrix")
    assert {p.suffix for p in folder.iterdir()} == {".md", ".json"}
    data = json.loads(next(folder.glob("*.json")).read_text())
    assert data and "Every cell matches" in next(folder.glob("*.md")).read_text()
