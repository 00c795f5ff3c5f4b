"""Time the full audit against one sequential read of the same tables, at 100k and 1M tasks.

The audit must stay a small multiple of simply reading the data, and grow linearly with it.
Each size gets a fresh migrated database on one ephemeral server, filled set-based with a
valid population (checker.audit.synthetic: 100 tasks per user, every status, 1 to 3 events
per task since a legal path has at most three: (none)->pending->processing->completed|failed).

References, measured in the same run on the same server, best of the repetitions:
- `count`: `SELECT count(*)` of tasks and of task_events by sequential scan, one process;
- `copy`: `COPY tasks TO '/dev/null'` and the same for task_events (server-side: reads and
  formats every column of every row, the least an auditor that looks at all rows pays; falls
  back to COPY TO STDOUT drained by the client when the role may not write server files).

The history side gets its own figure: the ledger checks (`--only ledger`) against a history
file that explains the population exactly (a create per task, its transitions, a login per
live session, a login and a logout per revoked one), audited from the file as `checker audit
--history FILE` does (streamed into temporary tables, then checked in SQL), against its
reference, reading and validating that file (`read_history`), which the ledger cannot do
without. And the checker's own memory for it: the peak of what Python allocated during that
audit (tracemalloc, in a separate run: tracing slows Python down), which must not grow with
the history.

    python benchmarks/audit_bench.py [--tasks 100000 1000000] [--db embedded] [--repeat 2]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from checker import migrate
from checker.audit import Argon2Minimum, AuditOptions, AuditResult, run_audit
from checker.audit.synthetic import Population, matching_history, populate
from checker.history import SEED_PASSWORD, HistoryRecord, read_history, write_history
from checker.janitor import DatabaseJanitor
from checker.provision import select_provider
from taskhub.db import libpq_url
from taskhub.settings import TEST_ARGON2

TABLES = ("tasks", "task_events")
TEST_MINIMUM = Argon2Minimum.of(TEST_ARGON2)


@dataclass(frozen=True)
class Figures:
    tasks: int
    events: int
    seed_s: float
    count_s: float
    copy_s: float
    audit_s: float
    audit: AuditResult
    records: int
    parse_s: float
    ledger_s: float
    ledger: AuditResult
    ledger_peak_mb: float


def sessions_history(dsn: str, at: float) -> list[HistoryRecord]:
    """A login for every session of the population that is not expired, and a logout for
    each of those that are revoked."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT s.id, s.user_id, u.email, s.revoked_at IS NOT NULL "
                            "FROM auth_sessions s JOIN users u ON u.id = s.user_id "
                            "WHERE s.expires_at > now()").fetchall()
    records = []
    for session, user, email, revoked in rows:
        records.append(HistoryRecord("signin", str(user), "login", {
            "email": email, "password_id": SEED_PASSWORD}, at, at, "ok",
            {"user_id": str(user), "session_id": str(session)}))
        if revoked:
            records.append(HistoryRecord("signin", str(user), "logout",
                                         {"session_id": str(session)}, at, at, "ok"))
    return records


def best(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def count_scan(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        for setting in ("max_parallel_workers_per_gather = 0", "enable_indexscan = off",
                        "enable_indexonlyscan = off", "enable_bitmapscan = off"):
            conn.execute(f"SET LOCAL {setting}")
        for table in TABLES:
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()


def copy_scan(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in TABLES:
            try:
                conn.execute(f"COPY {table} TO '/dev/null'")
            except psycopg.errors.InsufficientPrivilege:
                with conn.cursor() as cur, cur.copy(f"COPY {table} TO STDOUT") as copy:
                    for _chunk in copy:
                        pass


def measure(janitor: DatabaseJanitor, tasks: int, repeat: int) -> Figures:
    with janitor.ephemeral() as url:
        migrate.upgrade(url)
        dsn = libpq_url(url)
        started = time.perf_counter()
        with psycopg.connect(dsn) as conn:
            populate(conn, Population(users=max(1, tasks // 100), tasks=tasks))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            events = conn.execute("SELECT count(*) FROM task_events").fetchone()
        seed_s = time.perf_counter() - started
        options = AuditOptions(min_argon2=TEST_MINIMUM)
        copy_scan(dsn)  # warm the cache
        results: list[AuditResult] = []
        count_s = best(repeat, lambda: count_scan(dsn))
        copy_s = best(repeat, lambda: copy_scan(dsn))
        audit_s = best(repeat, lambda: results.append(run_audit(url, options=options)))
        audit = min(results, key=lambda r: r.duration)
        assert audit.ok, audit.summary()
        population = Population(users=max(1, tasks // 100), tasks=tasks)
        start = time.time() - 7200
        records = [*matching_history(population, start=start),
                   *sessions_history(dsn, start + 1)]
        count = len(records)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "history.jsonl"
            write_history(path, records)
            del records
            gc.collect()
            parse_s = best(repeat, lambda: read_history(path))
            ledgers: list[AuditResult] = []
            ledger_s = best(repeat, lambda: ledgers.append(
                run_audit(url, path, only="ledger", options=options)))
            ledger = min(ledgers, key=lambda r: r.duration)
            assert ledger.ok, ledger.summary()
            tracemalloc.start()
            try:
                run_audit(url, path, only="ledger", options=options)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        return Figures(tasks, int(events[0]) if events else 0, seed_s, count_s, copy_s,
                       audit_s, audit, count, parse_s, ledger_s, ledger, peak / 1e6)


def report(fig: Figures) -> None:
    print(f"\n{fig.tasks:,} tasks, {fig.events:,} events (seeded in {fig.seed_s:.1f} s)")
    print(f"  count scan {fig.count_s:7.3f} s   copy {fig.copy_s:7.3f} s   "
          f"audit {fig.audit_s:7.3f} s ({len(fig.audit.checks)} checks, all pass)")
    print(f"  audit / copy  {fig.audit_s / fig.copy_s:6.2f}x   "
          f"audit / count {fig.audit_s / fig.count_s:6.2f}x")
    slowest = sorted(fig.audit.checks, key=lambda c: c.duration, reverse=True)[:4]
    print("  slowest checks: " + ", ".join(f"{c.name} {c.duration:.3f} s" for c in slowest))
    print(f"  history of {fig.records:,} records: read {fig.parse_s:7.3f} s   ledger "
          f"{fig.ledger_s:7.3f} s ({len(fig.ledger.checks)} checks, all pass)   "
          f"ledger / read {fig.ledger_s / fig.parse_s:6.2f}x   "
          f"checker memory for it (peak allocated) {fig.ledger_peak_mb:.1f} MB")
    slowest = sorted(fig.ledger.checks, key=lambda c: c.duration, reverse=True)[:3]
    print("  slowest ledger checks: " + ", ".join(f"{c.name} {c.duration:.3f} s"
                                                 for c in slowest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--db", default=None, help="auto|container|embedded|dsn")
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with select_provider(args.db, args.dsn) as server:
        janitor = DatabaseJanitor(server.url)
        try:
            figures = [measure(janitor, n, args.repeat) for n in args.tasks]
        finally:
            janitor.close()
    for fig in figures:
        report(fig)
    if len(figures) > 1:
        first, last = figures[0], figures[-1]
        size = last.tasks / first.tasks
        print(f"\ngrowth {first.tasks:,} -> {last.tasks:,} tasks ({size:.0f}x the data): "
              f"audit {last.audit_s / first.audit_s:.1f}x, copy {last.copy_s / first.copy_s:.1f}x,"
              f" count {last.count_s / first.count_s:.1f}x; ledger "
              f"{last.ledger_s / first.ledger_s:.1f}x, read {last.parse_s / first.parse_s:.1f}x, "
              f"checker memory for the ledger {last.ledger_peak_mb / first.ledger_peak_mb:.2f}x")


if __name__ == "__main__":
    main()
