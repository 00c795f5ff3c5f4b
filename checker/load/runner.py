"""Locust as a library for one scenario: a local runner, or a master with worker processes.

`run_load` seeds the database (see `checker.load.plain.prepare`), runs the users headless
(or behind Locust's web UI, bound to 127.0.0.1), shows a progress line, stops them with a
grace period (`stop_timeout`: no user is killed in the middle of a transaction unless it
overruns it), and returns Locust's figures. Every operation is already in the history file by
then: written directly by a local runner, shipped by workers to the master otherwise.
Import this module only after gevent's monkey-patching (`checker.entry` does it).
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import time
from argparse import Namespace
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gevent
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.event import Events
from locust.html import get_html_report
from locust.runners import STATE_MISSING, MasterRunner, Runner
from locust.stats import stats_history

from checker import runkey
from checker.access import RuntimeAccess
from checker.errors import InfrastructureError, UsageError
from checker.faults.injector import Injector
from checker.history import HistoryWriter
from checker.interrupts import INTERRUPTS, Interrupts
from checker.load.csv_stats import CsvStats
from checker.load.distributed import WorkerGate, serve_workers
from checker.load.harness import Harness, attach, unsafe_switches
from checker.load.plain import prepare
from checker.load.result import LoadResult, OpStats
from checker.load.scenario import Scenario
from checker.progress import Progress, Tick
from checker.provision.base import free_port
from checker.runconfig import RunConfig

WORKER_CONNECT_TIMEOUT = 60.0
NO_LOAD_HTML = ("<!doctype html><title>No load</title><p>Interrupted before the seed: no "
                "load ran, so Locust has no report.</p>\n")


def run_load(scenario: Scenario, config: RunConfig, url: str, access: RuntimeAccess,
             history: Path, logs: Path, injector: Injector | None = None,
             interrupts: Interrupts = INTERRUPTS) -> LoadResult:
    """Seed `url` (a migrated database, as its owner), run `scenario` through `access` (the
    runtime roles: all the load processes get), stop; Locust's figures.

    `injector` injects faults from just before the users start until the load stops. After
    an interrupt (`interrupts`) no user starts, and running users stop.
    """
    _raise_open_file_limit()
    classes, spec = list(scenario.users), scenario.seed
    spec = replace(spec, tenants=max(2, config.tenants or spec.tenants),
                   tasks_per_tenant=config.tasks_per_tenant or spec.tasks_per_tenant)
    env = Environment(user_classes=classes, events=Events(), stop_timeout=config.stop_timeout,
                      host="taskhub", locustfile=str(scenario.path))
    csv_stats = None if config.csv_prefix is None else CsvStats(env, config.csv_prefix,
                                                                config.csv_full_history)
    with HistoryWriter(history, mode="w") as writer:
        if interrupts.requested:  # before the seed: nothing to start, an empty history
            if csv_stats is not None:
                csv_stats.close()
            now = time.time()
            return LoadResult(now, now, 0, 0, 0, config.expected_workers, unsafe_switches(),
                              (), OpStats.of(env.stats.total), NO_LOAD_HTML, 0, None)
        interrupts.enter("seed")
        print(f"seeding {spec.tenants} tenants, {spec.tasks_per_tenant} tasks each",
              file=sys.stderr, flush=True)
        setup = prepare(url, access, config.scenario, spec, config.seed, config.argon2,
                        config.users, writer)
        workers: list[subprocess.Popen[bytes]] = []
        harness: Harness | None = None
        gate = WorkerGate()
        try:
            if config.expected_workers:
                key = _run_key(config, logs)
                runner: Runner = _master(env, config)
                gate = serve_workers(env, setup, writer, config.expected_workers, key)
                workers = _spawn_workers(scenario, config, runner, gate, key, logs)
            else:
                runner = env.create_local_runner()
                harness = Harness(setup, writer)
                attach(env, harness)
            gevent.spawn(stats_history, runner)
            if csv_stats is not None:
                csv_stats.start()
            interrupts.enter("load")
            started = time.time()
            if injector is not None:
                injector.start()
            try:
                peak, lost = _drive(env, runner, config, interrupts,
                                    lambda: _lost_worker(runner, gate, workers))
            finally:
                if injector is not None:
                    injector.stop()
            ended = time.time()
            interrupts.enter("stop")
            _stop(runner, gate, config, lost)
            html = get_html_report(env)
        finally:
            # Stopped workers have sent everything (see checker.load.harness.serve_master).
            _reap(workers)
            if harness is not None:
                harness.close()
            if csv_stats is not None:
                csv_stats.close()
    stats = env.stats
    ops = tuple(OpStats.of(entry) for _key, entry in sorted(stats.entries.items()))
    return LoadResult(started, ended, len(setup.manifest.tenants), setup.manifest.task_count,
                      peak, config.expected_workers, unsafe_switches(), ops,
                      OpStats.of(stats.total), html, len(gate.refused), lost,
                      started_with(env) if config.ui else None)


def _raise_open_file_limit() -> None:
    """Every simulated user holds a socket: lift the soft limit on open files to the hard one
    (often 1024 -> 524288), for this process and the workers it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _run_key(config: RunConfig, logs: Path) -> bytes:
    """The operator's key (CHECKER_RUN_KEY / _FILE), else a new one; remote workers need it,
    so a new one is written to `run.key` in the report folder (mode 0600), never printed."""
    try:
        key = runkey.key_from_env()
    except runkey.RunKeyError as exc:
        raise UsageError(str(exc)) from None
    if key is None:
        key = runkey.new_key()
        if config.remote_workers:
            path = logs / "run.key"
            runkey.write_key_file(path, key)
            print(f"run key for the remote workers: {runkey.KEY_FILE_ENV}={path.resolve()} "
                  "(copy the file to each worker machine)", file=sys.stderr, flush=True)
    return key


def _master(env: Environment, config: RunConfig) -> MasterRunner:
    port = config.master_port or free_port(config.master_bind)
    try:
        return env.create_master_runner(config.master_bind, port)
    except Exception as exc:  # zmq: address in use, bad interface
        raise InfrastructureError(f"cannot listen for workers on {config.master_bind}:{port}: "
                                  f"{exc}") from None


def _spawn_workers(scenario: Scenario, config: RunConfig, runner: Runner, gate: WorkerGate,
                   key: bytes,
                   logs: Path) -> list[subprocess.Popen[bytes]]:
    """Start the local workers (`locust --worker`, the run key in their environment) and wait
    until every expected worker has proven it holds the key."""
    assert isinstance(runner, MasterRunner)
    port = runner.master_bind_port
    locustfile = scenario.path
    procs = []
    for i in range(config.workers):
        log = (logs / f"worker-{i + 1}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "locust", "--worker", "-f", str(locustfile),
             "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            # The terminal's Ctrl-C is the master's to handle: it stops the workers.
            start_new_session=True, env={**os.environ, runkey.KEY_ENV: key.hex()}))
        log.close()
    deadline = time.monotonic() + WORKER_CONNECT_TIMEOUT
    while len(gate.authenticated) < config.expected_workers:
        if gate.mismatched:
            _reap(procs)
            differ = "; ".join(next(iter(gate.mismatched.values())))
            raise UsageError(f"a worker differs from the master ({differ}): run the same "
                             "checkout, scenario and settings on every machine")
        dead = [i for i, proc in enumerate(procs) if proc.poll() is not None]
        if dead or time.monotonic() > deadline:
            _reap(procs)
            what = f"worker {dead[0] + 1} exited (see {logs}/worker-{dead[0] + 1}.log)" if dead \
                else (f"only {len(gate.authenticated)} of {config.expected_workers} workers "
                      "connected and proved the run key")
            raise InfrastructureError(f"distributed run could not start: {what}")
        gevent.sleep(0.1)
    return procs


def _drive(env: Environment, runner: Runner, config: RunConfig, interrupts: Interrupts,
           lost_worker: Callable[[], str | None]) -> tuple[int, str | None]:
    """Run until the duration is over, an interrupt (Ctrl-C, SIGTERM) or a lost worker;
    (peak users, why a worker was lost). No user starts after an interrupt."""
    if interrupts.requested:
        return 0, None
    if config.ui:
        # Locust's UI re-parses sys.argv for its own options on every page: hide ours.
        sys.argv = sys.argv[:1]
        env.parsed_options = ui_options(config)
        env.create_web_ui("127.0.0.1", config.web_port)
        print(f"Locust web UI: http://127.0.0.1:{config.web_port}/ (Ctrl-C ends the session)",
              file=sys.stderr, flush=True)
    else:
        runner.start(config.users, config.spawn_rate)
    began, peak, lost = time.monotonic(), 0, None
    with Progress() as progress:
        while not interrupts.requested:
            elapsed = time.monotonic() - began
            if peak < config.users <= runner.user_count:
                progress.note(f"all {config.users} users running")
            peak = max(peak, runner.user_count)
            lost = lost_worker()
            if lost is not None:
                print(f"stopping: {lost}", file=sys.stderr, flush=True)
                break
            total = env.stats.total
            progress.show(Tick(runner.user_count, total.current_rps, total.num_requests,
                               total.num_failures, elapsed, config.duration))
            if config.duration is not None and elapsed >= config.duration:
                break
            gevent.sleep(0.25)
    return peak, lost


def ui_options(config: RunConfig) -> Namespace:
    """Locust's options as its web UI reads them for the form's defaults: the run's users,
    spawn rate and duration (Locust's own defaults for the rest; no Locust configuration
    file is read). The form writes what the user starts back into them."""
    args = ["--users", str(config.users), "--spawn-rate", str(config.spawn_rate)]
    if config.duration is not None:
        args += ["--run-time", f"{max(1, round(config.duration))}s"]
    options: Namespace = get_parser(default_config_files=[]).parse_args(args)
    return options


def started_with(env: Environment) -> tuple[int, float] | None:
    """The users and spawn rate the web UI's form last started, if it started any."""
    options = env.parsed_options
    if options is None or not env.stats.total.num_requests:
        return None
    return int(options.num_users), float(options.spawn_rate)


def _lost_worker(runner: Runner, gate: WorkerGate,
                 procs: list[subprocess.Popen[bytes]]) -> str | None:
    """Why a worker is gone mid-run (its process exited, or Locust's heartbeat found it
    missing or dropped it), or None while every proven worker is there."""
    for i, proc in enumerate(procs):
        if proc.poll() is not None:
            return f"local worker {i + 1} exited with code {proc.returncode} mid-run"
    if not isinstance(runner, MasterRunner):
        return None
    for node in sorted(gate.authenticated):
        client = runner.clients.get(node)
        if client is None or client.state == STATE_MISSING:
            return (f"worker {gate.names.get(node, node)} stopped answering mid-run (no "
                    "heartbeat)")
    return None


def _stop(runner: Runner, gate: WorkerGate, config: RunConfig, lost: str | None) -> None:
    """Stop the users (grace: stop_timeout); on a master, wait for every live worker's last
    batch, then tell every proven worker to quit (Locust forgets a worker once it reports it
    stopped, so its own quit would not reach it: a remote worker would wait for a heartbeat
    that never comes)."""
    runner.stop()
    if isinstance(runner, MasterRunner):
        live = len(gate.authenticated) - (1 if lost else 0)
        deadline = time.monotonic() + config.stop_timeout + 30
        while len(gate.finished) < live and time.monotonic() < deadline:
            gevent.sleep(0.1)
        for node in gate.authenticated:
            runner.send_message("quit", None, node)
    runner.quit()


def _reap(procs: list[subprocess.Popen[Any]]) -> None:
    """End the worker processes (SIGTERM, then SIGKILL after 5 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
