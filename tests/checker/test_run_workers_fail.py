"""Distributed runs that must not pass: a worker that differs from the master is refused before
the load (exit 2, naming the difference), a worker lost mid-run fails the run naming it
(within seconds, not as a fault of the system under test), and remote workers exit when the
master is done."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checker import runkey
from checker.load.catalogue import path_of
from checker.provision import Server
from checker.provision.base import child_pids, free_port
from taskhub.db import libpq_url
from tests.checker.run_support import CHECKER, FAST

KEY = runkey.new_key()



def master(server: Server, reports: Path, port: int, *extra: str,
           scenario: str = "transitions") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CHECKER, "run", scenario, "--dsn", libpq_url(server.url), "--report-dir",
         str(reports), *FAST, "--master-port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, runkey.KEY_ENV: KEY.hex()})


def remote_worker(port: int, scenario: str = "transitions",
                  env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "--worker", "-f", str(path_of(scenario)),
         "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, runkey.KEY_ENV: KEY.hex(), **(env or {})})


def both_report(reports: Path) -> bool:
    """Whether the master's history holds operations of both workers' users yet."""
    for history in reports.glob("*/history.jsonl"):
        text = history.read_text()
        if '"process":"w0-' in text and '"process":"w1-' in text:
            return True
    return False


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.parametrize(("worker_scenario", "worker_env", "difference"), [
    ("lifecycle", {}, "scenario: master 'transitions', worker 'lifecycle'"),
    ("transitions", {"CHECKER_UNSAFE_TRANSITIONS": "1"},
     "unsafe: master 'none', worker 'transitions'"),
], ids=["another-scenario", "unsafe-on-the-worker-only"])
def test_a_worker_that_differs_is_refused_before_the_load(
        pg_server: Server, tmp_path: Path, worker_scenario: str, worker_env: dict[str, str],
        difference: str) -> None:
    port = free_port()
    run = master(pg_server, tmp_path, port, "--remote-workers", "1")
    worker = remote_worker(port, worker_scenario, worker_env)
    try:
        code, _out, err = finish(run)
    finally:
        worker.kill()
        worker.wait()
    assert code == 2, err[-3000:]
    [line] = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert difference in line and "differs from the master" in line
    assert not list(tmp_path.glob("*/summary.json"))  # refused: nothing was run or judged


def test_a_worker_killed_mid_run_is_named_and_fails_the_run(pg_server: Server,
                                                             tmp_path: Path) -> None:
    port = free_port()
    run = master(pg_server, tmp_path, port, "--remote-workers", "2", "--duration", "60s")
    workers = [remote_worker(port) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not both_report(tmp_path):
            time.sleep(0.2)
        workers[1].send_signal(signal.SIGKILL)
        code, _out, err = finish(run)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert code == 1, err[-3000:]
    [folder] = tmp_path.glob("*-transitions")
    summary = json.loads((folder / "summary.json").read_text())
    assert not summary["ok"]
    assert "stopped answering mid-run" in summary["problems"][0]
    assert summary["parameters"]["lost_worker"].startswith("worker w")
    checks = {c["name"]: c for c in summary["audit"]["checks"]}
    assert not any(name.startswith("ledger.") for name in checks)  # the history is partial
    assert all(c["status"] == "pass" for c in checks.values())  # the database is sound


def test_remote_workers_exit_when_the_master_is_done(pg_server: Server,
                                                      tmp_path: Path) -> None:
    port = free_port()
    run = master(pg_server, tmp_path, port, "--remote-workers", "1")
    worker = remote_worker(port)
    try:
        code, _out, err = finish(run)
        assert code == 0, err[-3000:]
        # Locust's worker gives up on a silent master after 60 s; told to quit, it goes now.
        worker.wait(timeout=30)
    finally:
        worker.kill()
        worker.wait()


def local_workers(parent: int) -> list[int]:
    """Pids of the `locust --worker` processes started by `parent`."""
    found = []
    for pid in child_pids(parent):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "--worker" in command:
            found.append(pid)
    return found


def test_a_local_worker_killed_mid_run_is_named(pg_server: Server, tmp_path: Path) -> None:
    run = master(pg_server, tmp_path, free_port(), "--workers", "2", "--duration", "60s")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not both_report(tmp_path):
            time.sleep(0.2)
        [first, *_] = sorted(local_workers(run.pid))
        os.kill(first, signal.SIGKILL)
        code, _out, err = finish(run)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert code == 1, err[-3000:]
    [folder] = tmp_path.glob("*-transitions")
    summary = json.loads((folder / "summary.json").read_text())
    assert re.fullmatch(r"local worker [12] exited with code -9 mid-run",
                        summary["parameters"]["lost_worker"])
