"""The checker's own cost as the data grows: seeding, whole runs and their audit at 100k,
300k and 1M tasks, and a user ramp.

Sections (`--sections`, all by default), each on one server the benchmark starts, sized for
the largest user count:

- `seed`: seeding (`checker.seed`: plan, hash, users by COPY, tasks and their creation events by one
set-based statement, the seed's history records) against its reference measured in the same
run on the same server: one server-side `INSERT ... SELECT generate_series` of the same tasks
(random ids) and one `INSERT ... SELECT` of their creation events, into a database with the
same users. Both databases are fresh and migrated; rows/s counts tasks and events.
- `run`: `checker run concurrency --tenants T --tasks-per-tenant N/T --duration 15s --keep`
  on that server, as a user runs it: the seconds of each phase (`summary.json`'s `phases`),
  the history's size and the checker's peak RSS (its own process, from `wait4`). Then the
  kept database is audited again in this process (best of two), split into the database's
  checks and the history's (streamed from the file into temporary tables and checked in
  SQL, as `checker audit --history FILE` does), against `COPY tasks, task_events TO STDOUT`
  drained by this client (the least an auditor that reads every row pays); and the most
  memory Python allocated during the history's audit (tracemalloc, a separate run).
- `length`: the same run on 10k seeded tasks for each `--durations` (15 s and 120 s by
  default): the history grows with the load, the checker's memory must not (peak RSS, and
  what the history's audit allocated).
- `ramp`: `checker run transitions --users U --duration 20s` for each U: ops/s, p95, failures,
  the checker's peak RSS and the most client connections the server had open at once
  (sampled every 0.2 s).

    python benchmarks/scale_bench.py [--sections seed run length ramp]
                                     [--tasks 100000 300000 1000000] [--tenants 100]
                                     [--durations 15 120] [--ramp 20 100 300 1000]
                                     [--db embedded] [--repeat 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import URL

from checker import capacity, migrate
from checker.audit import AuditOptions, run_audit
from checker.audit.options import Argon2Minimum
from checker.history import HistoryWriter, read_history
from checker.janitor import DatabaseJanitor
from checker.provision import select_provider
from checker.seed import SeedSpec, hash_all, plan, seed_database
from taskhub.db import libpq_url
from taskhub.settings import TEST_ARGON2

DATABASE_SIDE = "schema,orphans,transitions,isolation,auth"
"""Without a history, these families' checks read the database only."""
HISTORY_SIDE = "ledger,isolation.observed_rows_owned,isolation.cross_tenant_denied"

REFERENCE = ("""
    INSERT INTO tasks (id, user_id, title, created_at)
    SELECT gen_random_uuid(), u.id, 'seeded task ' || n, now() + n * interval '1 microsecond'
    FROM users u, generate_series(0, %(per)s - 1) AS n""", """
    INSERT INTO task_events (task_id, user_id, from_status, to_status, actor)
    SELECT id, user_id, NULL, 'pending', 'seed' FROM tasks""")


@dataclass(frozen=True)
class SeedFigures:
    tasks: int
    seed_s: float
    reference_s: float
    history_mb: float

    @property
    def rows_per_s(self) -> float:
        return 2 * self.tasks / self.seed_s


def seed_once(janitor: DatabaseJanitor, spec: SeedSpec, folder: Path) -> tuple[float, float]:
    """Seconds to seed a fresh database (hashing included) and the history's size in MB."""
    with janitor.ephemeral() as url:
        migrate.upgrade(url)
        path = folder / "history.jsonl"
        started = time.perf_counter()
        manifest = plan(spec, 1)
        hashes = hash_all(manifest, TEST_ARGON2, TEST_ARGON2)
        with HistoryWriter(path, mode="w") as writer:
            seed_database(libpq_url(url), manifest, hashes, writer)
        return time.perf_counter() - started, path.stat().st_size / 1e6


def reference_once(janitor: DatabaseJanitor, spec: SeedSpec) -> float:
    """Seconds for the reference: the same tasks and events by generate_series."""
    with janitor.ephemeral() as url:
        migrate.upgrade(url)
        dsn = libpq_url(url)
        manifest = plan(spec, 1)
        with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(
                "COPY users (id, email, email_skeleton, password_hash) FROM STDIN") as copy:
            for t in manifest.tenants:
                copy.write_row((t.user_id, t.email, t.email, "x"))
        started = time.perf_counter()
        with psycopg.connect(dsn) as conn:
            for statement in REFERENCE:
                conn.execute(statement, {"per": spec.tasks_per_tenant})
        return time.perf_counter() - started


def measure_seed(janitor: DatabaseJanitor, tasks: int, tenants: int,
                 repeat: int) -> SeedFigures:
    spec = SeedSpec(tenants=tenants, tasks_per_tenant=tasks // tenants)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [seed_once(janitor, spec, Path(tmp)) for _ in range(repeat)]
    reference = min(reference_once(janitor, spec) for _ in range(repeat))
    return SeedFigures(spec.tenants * spec.tasks_per_tenant, min(s for s, _ in runs),
                       reference, runs[0][1])


@dataclass(frozen=True)
class Checker:
    """How one `checker run` went: its exit code, summary, peak RSS (MB) and the most client
    connections the server had at once."""

    returncode: int
    summary: dict[str, Any]
    peak_rss_mb: float
    peak_connections: int
    history_mb: float


def checker_run(server: URL, folder: Path, *args: str) -> Checker:
    """`checker run ARGS --dsn SERVER --report-dir FOLDER`, measured."""
    stop = threading.Event()
    peak = [0]

    def sample() -> None:
        with psycopg.connect(libpq_url(server), autocommit=True) as conn:
            while not stop.wait(0.2):
                row = conn.execute("SELECT count(*) - 1 FROM pg_stat_activity "
                                   "WHERE backend_type = 'client backend'").fetchone()
                peak[0] = max(peak[0], int(row[0]) if row else 0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    command = [sys.executable, "-m", "checker", "run", *args, "--dsn",
               server.render_as_string(hide_password=False), "--report-dir", str(folder)]
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    sampler.join()
    found = sorted(folder.glob("*/summary.json"))
    if not found:
        raise SystemExit(f"no report: {(folder / 'stderr').read_text()[-2000:]}")
    summary = json.loads(found[-1].read_text())
    history = found[-1].parent / "history.jsonl"
    return Checker(proc.returncode, summary, usage.ru_maxrss / 1024, peak[0],
                   history.stat().st_size / 1e6)


@dataclass(frozen=True)
class RunFigures:
    tasks: int
    run: Checker
    database_s: float
    history_s: float
    read_s: float
    copy_s: float
    history_peak_mb: float


def traced_peak(fn: Any) -> float:
    """The most memory Python allocated while `fn` ran (MB, tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6


def drain_copy(dsn: str) -> None:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for table in ("tasks", "task_events"):
            with cur.copy(f"COPY {table} TO STDOUT") as copy:
                for _chunk in copy:
                    pass


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def best(repeat: int, fn: Any) -> float:
    return min(timed(fn) for _ in range(repeat))


def measure_run(server: URL, tasks: int, tenants: int, seconds: int = 15) -> RunFigures:
    with tempfile.TemporaryDirectory() as tmp:
        run = checker_run(server, Path(tmp), "concurrency", "--tenants", str(tenants),
                          "--tasks-per-tenant", str(tasks // tenants), "--duration",
                          f"{seconds}s", "--keep", "--seed", "1")
        if run.returncode != 0:
            raise SystemExit(f"the run failed: {run.summary['problems']}")
        name = run.summary["parameters"]["database"]
        url = server.set(database=name)
        history = next(Path(tmp).glob("*/history.jsonl"))
        options = AuditOptions(min_argon2=Argon2Minimum.parse(
            run.summary["parameters"]["argon2_params"]))
        read_s = timed(lambda: read_history(history))
        database_s = best(2, lambda: run_audit(url, None, DATABASE_SIDE, options=options))
        history_s = best(2, lambda: run_audit(url, history, HISTORY_SIDE, options=options))
        copy_s = best(2, lambda: drain_copy(libpq_url(url)))
        peak = traced_peak(lambda: run_audit(url, history, HISTORY_SIDE, options=options))
    janitor = DatabaseJanitor(server)
    try:
        janitor.drop(name)
    finally:
        janitor.close()
    return RunFigures(tasks, run, database_s, history_s, read_s, copy_s, peak)


def measure_ramp(server: URL, users: int) -> Checker:
    with tempfile.TemporaryDirectory() as tmp:
        return checker_run(server, Path(tmp), "transitions", "--users", str(users),
                           "--spawn-rate", str(max(10, users // 5)), "--duration", "20s",
                           "--seed", "1")


def print_seeds(seeds: list[SeedFigures]) -> None:
    print("seeding (tasks + their creation events; best of the runs)")
    for fig in seeds:
        print(f"  {fig.tasks:>9,} tasks: {fig.seed_s:6.2f} s, {fig.rows_per_s / 1e3:6.0f}k rows/s;"
              f" reference {fig.reference_s:6.2f} s; seed / reference "
              f"{fig.seed_s / fig.reference_s:4.2f}x; history {fig.history_mb:.1f} MB")
    for before, after in itertools.pairwise(seeds):
        print(f"  growth {before.tasks:,} -> {after.tasks:,} ({after.tasks / before.tasks:.1f}x):"
              f" seed {after.seed_s / before.seed_s:.1f}x, reference "
              f"{after.reference_s / before.reference_s:.1f}x")


def print_runs(runs: list[RunFigures]) -> None:
    print("runs (checker run concurrency, 15 s of load)")
    for fig in runs:
        phases = fig.run.summary["phases"]
        print(f"  {fig.tasks:>9,} tasks: " + ", ".join(f"{k} {v:.1f} s" for k, v in
                                                       phases.items()))
        print(f"    peak RSS {fig.run.peak_rss_mb:.0f} MB, history {fig.run.history_mb:.1f} MB, "
              f"{fig.run.summary['totals']['requests']:,} operations, "
              f"the history's audit allocated at most {fig.history_peak_mb:.1f} MB")
        print(f"    audit again: database checks {fig.database_s:.2f} s, history checks "
              f"{fig.history_s:.2f} s (reading it alone {fig.read_s:.2f} s); history / database "
              f"{fig.history_s / fig.database_s:.2f}x; COPY of tasks and events "
              f"{fig.copy_s:.2f} s, database checks / COPY {fig.database_s / fig.copy_s:.2f}x")
    for before, after in itertools.pairwise(runs):
        print(f"  growth {before.tasks:,} -> {after.tasks:,}: audit phase "
              f"{after.run.summary['phases']['audit'] / before.run.summary['phases']['audit']:.1f}x"
              f", peak RSS {after.run.peak_rss_mb / before.run.peak_rss_mb:.2f}x")


def print_lengths(runs: list[tuple[int, RunFigures]]) -> None:
    print("runs of growing length (checker run concurrency, 10k seeded tasks)")
    for seconds, fig in runs:
        print(f"  {seconds:>4} s: {fig.run.summary['totals']['requests']:>9,} operations, "
              f"history {fig.run.history_mb:6.1f} MB, peak RSS {fig.run.peak_rss_mb:.0f} MB, "
              f"audit phase {fig.run.summary['phases']['audit']:.1f} s, history checks "
              f"{fig.history_s:.2f} s, the history's audit allocated at most "
              f"{fig.history_peak_mb:.1f} MB")
    for (_, before), (_, after) in itertools.pairwise(runs):
        ops = after.run.summary["totals"]["requests"] / before.run.summary["totals"]["requests"]
        print(f"  growth: {ops:.1f}x the operations, peak RSS "
              f"{after.run.peak_rss_mb / before.run.peak_rss_mb:.2f}x, history audit "
              f"allocations {after.history_peak_mb / before.history_peak_mb:.2f}x")


def print_ramp(ramp: list[tuple[int, Checker]]) -> None:
    print("user ramp (checker run transitions, 20 s)")
    for users, fig in ramp:
        totals = fig.summary["totals"]
        print(f"  {users:>5} users: {totals['ops_per_s']:7.1f} ops/s, p95 {totals['p95_ms']:6.0f}"
              f" ms, failures {totals['failures']}, peak users {totals['peak_users']}, "
              f"peak RSS {fig.peak_rss_mb:.0f} MB, peak connections {fig.peak_connections}, "
              f"exit {fig.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["seed", "run", "length", "ramp"],
                        choices=["seed", "run", "length", "ramp"])
    parser.add_argument("--durations", type=int, nargs="+", default=[15, 120])
    parser.add_argument("--tasks", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--ramp", type=int, nargs="+", default=[20, 100, 300, 1000])
    parser.add_argument("--db", default=None, help="auto|container|embedded|dsn")
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    options = capacity.server_options(max(args.ramp), 1)
    seeds: list[SeedFigures] = []
    runs: list[RunFigures] = []
    ramp: list[tuple[int, Checker]] = []
    lengths: list[tuple[int, RunFigures]] = []
    with select_provider(args.db, args.dsn, options=options) as server:
        if "seed" in args.sections:
            janitor = DatabaseJanitor(server.url)
            try:
                seeds = [measure_seed(janitor, n, args.tenants, args.repeat)
                         for n in args.tasks]
            finally:
                janitor.close()
        if "run" in args.sections:
            runs = [measure_run(server.url, n, args.tenants) for n in args.tasks]
        if "length" in args.sections:
            lengths = [(seconds, measure_run(server.url, 10_000, args.tenants, seconds))
                       for seconds in args.durations]
        if "ramp" in args.sections:
            ramp = [(users, measure_ramp(server.url, users)) for users in args.ramp]
    if seeds:
        print_seeds(seeds)
    if runs:
        print_runs(runs)
    if lengths:
        print_lengths(lengths)
    if ramp:
        print_ramp(ramp)


if __name__ == "__main__":
    main()
