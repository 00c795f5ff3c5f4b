"""`checker run --faults`: bad specs are one line and exit 2 (before anything starts); faults
that need the server's processes are refused on a `--dsn` server; a short run with backends
killed and the server crashed and restarted still audits clean, with the faults and the
clients' unknown/failed outcomes in the summary; a statement timeout run passes."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from checker.errors import UsageError
from checker.faults.kinds import FAULT_KINDS
from checker.faults.spec import Fault, parse_faults
from checker.provision import Server
from taskhub.db import libpq_url
from tests.checker.run_support import FAST, Run, checker, run
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


def _embedded_run(tmp_path: Path, *extra: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "checker", "run", "concurrency", "--db", "embedded",
         "--report-dir", str(tmp_path), *FAST, *extra],
        capture_output=True, text=True, timeout=240, check=False)
    folders = sorted(tmp_path.glob("*-concurrency"))
    return Run(done.returncode, done.stdout, done.stderr, folders[-1] if folders else None)


def test_killed_backends_and_crashes_leave_a_clean_audit(tmp_path: Path) -> None:
    result = _embedded_run(tmp_path, "--duration", "9s", "--faults",
                           "kill-backends:every=1s;crash:every=4s")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.summary
    faults = summary["faults"]
    assert faults["by_kind"].get("crash", 0) >= 1, faults
    assert faults["by_kind"].get("kill-backends", 0) >= 4, faults
    assert faults["failed_injections"] == 0
    assert all(e["recovery_s"] is not None and e["recovery_s"] < 30 for e in faults["events"])
    assert summary["audit"]["ok"] and summary["consistency"]["consistent"]
    outcomes = Counter(r.outcome for r in result.history if r.process != "seed")
    assert outcomes["unknown"] > 0 and outcomes["ok"] > 0
    assert any(k.startswith("unknown ") for k in faults["client_errors"])
    assert "faults (" in result.stdout
    crash = max((e for e in faults["events"] if e["kind"] == "crash"),
                key=lambda e: e["start"])
    after = [r for r in result.history if r.start > crash["recovered"] + 0.5]
    assert any(r.outcome == "ok" for r in after), "the clients did not reconnect"


@needs_docker
def test_a_crashed_container_recovers_with_a_clean_audit(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "checker", "run", "concurrency", "--db", "container",
         "--report-dir", str(tmp_path), *FAST, "--duration", "8s", "--faults", "crash:every=3s"],
        capture_output=True, text=True, timeout=240, check=False)
    folders = sorted(tmp_path.glob("*-concurrency"))
    result = Run(done.returncode, done.stdout, done.stderr, folders[-1] if folders else None)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    faults = result.summary["faults"]
    assert faults["by_kind"].get("crash", 0) >= 1 and faults["failed_injections"] == 0, faults
    assert result.summary["audit"]["ok"]
    crash = max((e for e in faults["events"] if e["kind"] == "crash"), key=lambda e: e["start"])
    after = [r for r in result.history if r.start > crash["recovered"] + 0.5]
    assert any(r.outcome == "ok" for r in after), "the clients did not reconnect"


def test_a_statement_timeout_cancels_statements_and_the_run_stays_consistent(
        pg_server: Server, tmp_path: Path) -> None:
    """1 ms, with backends killed too, load from two worker processes: statements are
    cancelled (57014; a cancelled COMMIT's outcome is unknown), the injector's own statements
    are not, no cancelled transaction poisons the next one on its pooled connection (25P02,
    'current transaction is aborted'), and the audit stays clean."""
    spec = "kill-backends:every=1s;statement-timeout:1ms"
    result = run(pg_server, "concurrency", tmp_path, "--faults", spec, "--workers", "2",
                 "--duration", "4s")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    faults = result.summary["faults"]
    assert faults["by_kind"]["statement-timeout"] == 1, faults
    assert faults["by_kind"].get("kill-backends", 0) >= 2 and faults["failed_injections"] == 0
    assert result.summary["parameters"]["faults"] == spec
    errors = faults["client_errors"]
    assert any("[57014]" in kind for kind in errors), errors
    assert not any("[25P02]" in kind for kind in errors), errors
    assert {record.process.split("-")[0] for record in result.history} >= {"w0", "w1"}
