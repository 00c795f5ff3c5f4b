"""`checker run --faults`: bad specs are one line and exit 2 (before anything starts); faults
that need the server's processes are refused on a `--dsn` server; a short run with backends
killed and the server crashed and restarted still audits clean, with the faults and the
clients' unknown/failed outcomes in the summary; a statement timeout run passes."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from checker.errors import UsageError
from checker.faults.kinds import FAULT_KINDS
from checker.faults.spec import Fault, parse_faults
from checker.provision import Server
from taskhub.db import libpq_url
from tests.checker.run_support import FAST, Run, checker, history_so_far, started
from tests.support import needs_docker


def test_specs_parse() -> None:
    faults = parse_faults("kill-backends:every=5s, crash:every=20s;pause:every=15s,for=2s;"
                          "statement-timeout:200ms")
    kinds = FAULT_KINDS
    assert faults == (Fault(kinds["kill-backends"], every=5.0), Fault(kinds["crash"], every=20.0),
                      Fault(kinds["pause"], every=15.0, duration=2.0),
                      Fault(kinds["statement-timeout"], value=0.2))
    assert [f.describe() for f in faults] == [
        "kill-backends:every=5s", "crash:every=20s", "pause:every=15s,for=2s",
        "statement-timeout:200ms"]


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty"),
    ("nuke:every=1s", "unknown fault 'nuke'"),
    ("crash", "crash needs every=DURATION"),
    ("crash:every=0s", "not a positive duration"),
    ("crash:every=1s,for=1s", "crash takes every=DURATION"),
    ("pause:every=1s", "pause needs for=DURATION"),
    ("pause:every=1s,for=2s", "shorter than 'every'"),
    ("statement-timeout:fast", "not a positive duration"),
    ("kill-backends:every=1s;kill-backends:every=2s", "appears twice"),
])
def test_bad_specs_exit_2_with_one_line(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_faults(spec)
    done = checker("run", "concurrency", "--faults", spec, "--report-dir", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


@pytest.mark.parametrize("spec", ["crash:every=2s", "pause:every=2s,for=1s"])
def test_server_faults_are_refused_on_a_dsn_server(pg_server: Server, tmp_path: Path,
                                                   spec: str) -> None:
    done = checker("run", "concurrency", "--dsn", libpq_url(pg_server.url), "--faults", spec,
                   "--report-dir", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "which --db dsn does not give: use --db container or --db embedded" in done.stderr
    assert not list(tmp_path.iterdir())


def _until_recovered(tmp_path: Path, provider: str, spec: str, *, kills: int = 0) -> Run:
    """A run under `spec` for as long as it takes (a busy machine is slow, so no fixed
    duration): once the server was crashed at least once (and backends killed `kills`
    times), and the clients completed operations after the last crash, Ctrl-C ends it (it
    still audits and reports)."""
    with started("run", "concurrency", "--db", provider, "--report-dir", str(tmp_path),
                 *FAST, "--duration", "600s", "--faults", spec) as job:
        for _ in range(kills):
            job.wait_for("fault kill-backends")
        job.wait_for("fault crash:")
        after = time.time()
        history = next(iter(tmp_path.glob("*-concurrency")), tmp_path) / "history.jsonl"
        job.when(lambda: _ok_since(history, after))
        job.ctrl_c()
        code, out, err = job.finish()
    folders = sorted(tmp_path.glob("*-concurrency"))
    return Run(code, out, err, folders[-1] if folders else None)


def _ok_since(history: Path, moment: float) -> bool:
    """Whether an operation that started after `moment` succeeded (the clients reconnected)."""
    records = history_so_far(history) or []
    return any(r.outcome == "ok" and r.start > moment and r.process != "seed"
               for r in records)


def _assert_recovered(result: Run) -> dict[str, Any]:
    assert result.returncode == 130, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.summary
    assert summary["ok"], summary["problems"]
    faults = summary["faults"]
    assert faults["by_kind"].get("crash", 0) >= 1 and faults["failed_injections"] == 0, faults
    assert all(e["recovery_s"] is not None for e in faults["events"]), faults
    assert summary["audit"]["ok"] and summary["consistency"]["consistent"]
    return faults


def test_killed_backends_and_crashes_leave_a_clean_audit(tmp_path: Path) -> None:
    result = _until_recovered(tmp_path, "embedded", "kill-backends:every=1s;crash:every=4s",
                              kills=4)
    faults = _assert_recovered(result)
    assert faults["by_kind"].get("kill-backends", 0) >= 4, faults
    outcomes = Counter(r.outcome for r in result.history if r.process != "seed")
    assert outcomes["unknown"] > 0 and outcomes["ok"] > 0
    assert any(k.startswith("unknown ") for k in faults["client_errors"])
    assert "faults (" in result.stdout


@needs_docker
def test_a_crashed_container_recovers_with_a_clean_audit(tmp_path: Path) -> None:
    _assert_recovered(_until_recovered(tmp_path, "container", "crash:every=3s"))


def test_a_statement_timeout_cancels_statements_and_the_run_stays_consistent(
        pg_server: Server, tmp_path: Path) -> None:
    """1 ms, with backends killed too, load from two worker processes: statements are
    cancelled (57014; a cancelled COMMIT's outcome is unknown), the injector's own statements
    are not, no cancelled transaction poisons the next one on its pooled connection (25P02,
    'current transaction is aborted'), and the audit stays clean."""
    spec = "kill-backends:every=1s;statement-timeout:1ms"
    with started("run", "concurrency", "--dsn", libpq_url(pg_server.url), "--report-dir",
                 str(tmp_path), *FAST, "--duration", "600s", "--workers", "2",
                 "--faults", spec) as job:
        for _ in range(2):
            job.wait_for("fault kill-backends")
        history = next(iter(tmp_path.glob("*-concurrency")), tmp_path) / "history.jsonl"
        job.when(lambda: _cancelled_on_both_workers(history))
        job.ctrl_c()
        code, out, err = job.finish()
    result = Run(code, out, err, sorted(tmp_path.glob("*-concurrency"))[-1])
    assert result.returncode == 130, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.summary["ok"] and result.summary["audit"]["ok"], result.summary["problems"]
    faults = result.summary["faults"]
    assert faults["by_kind"]["statement-timeout"] == 1, faults
    assert faults["by_kind"].get("kill-backends", 0) >= 2 and faults["failed_injections"] == 0
    assert result.summary["parameters"]["faults"] == spec
    errors = faults["client_errors"]
    assert any("[57014]" in kind for kind in errors), errors
    assert not any("[25P02]" in kind for kind in errors), errors
    assert {record.process.split("-")[0] for record in result.history} >= {"w0", "w1"}


def _cancelled_on_both_workers(history: Path) -> bool:
    """Both workers have recorded operations, and some statement was cancelled (57014)."""
    records = history_so_far(history) or []
    workers = {r.process.split("-")[0] for r in records}
    return {"w0", "w1"} <= workers and any("[57014]" in (r.error or "") for r in records)
