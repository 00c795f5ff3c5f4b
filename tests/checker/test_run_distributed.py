"""`checker run --workers 1`: Locust's distributed mode, an in-process master and a
`locust --worker` process on 127.0.0.1; the worker's history reaches the master's file."""

from __future__ import annotations

from pathlib import Path

from checker.provision import Server
from tests.checker.run_support import run


def test_one_worker_process_runs_and_ships_its_history(pg_server: Server,
                                                       tmp_path: Path) -> None:
    result = run(pg_server, "transitions", tmp_path, "--workers", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.summary
    assert summary["ok"] and summary["parameters"]["workers"] == 1
    assert summary["consistency"]["consistent"]
    load = [r for r in result.history if r.process not in ("seed", "runner")]
    assert load and all(r.process.startswith("w0-") for r in load)
    assert sum(result.load_counts().values()) == summary["totals"]["requests"] > 20
    assert result.folder is not None and (result.folder / "worker-1.log").exists()
