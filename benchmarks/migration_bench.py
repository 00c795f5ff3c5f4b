"""Upgrade a legacy database of N tasks from revision 0001 to head, revision by revision.

Proves the data transforms are set-based: time per row stays flat as N grows. The reference,
measured in the same run on the same server, is one full-table `UPDATE` of the legacy tasks
(rolled back): the least any transform that touches every row can cost. Each revision is
reported as a multiple of it, so the figures do not depend on the machine.

    python benchmarks/migration_bench.py [--tasks 100000 300000] [--db embedded]
"""

from __future__ import annotations

import argparse
import time

import psycopg

from checker import migrate
from checker.janitor import DatabaseJanitor
from checker.provision import select_provider
from taskhub.db import libpq_url

LEGACY_STATUSES = ("new", "running", "in_progress", "done", "error", "Done ")


def seed(dsn: str, tasks: int, users: int) -> None:
    """Legacy rows at 0001, generated set-based: mixed-case emails, every legacy status,
    JSON and free-text results."""
    statuses = "ARRAY[" + ", ".join(f"'{s}'" for s in LEGACY_STATUSES) + "]"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"""
            INSERT INTO users (email, password_hash)
            SELECT format('  User%s@Example.COM ', g), '$argon2id$v=19$m=19456,t=2,p=1$x$y'
            FROM generate_series(1, {users}) g""")
        conn.execute(f"""
            INSERT INTO tasks (user_id, title, payload, status, result)
            SELECT u.ids[1 + g % {users}], 'task ' || g, json_build_object('n', g),
                   ({statuses})[1 + g % {len(LEGACY_STATUSES)}],
                   CASE g % 3 WHEN 0 THEN format('{{"n": %s}}', g)
                              WHEN 1 THEN 'free text ' || g END
            FROM generate_series(1, {tasks}) g,
                 (SELECT array_agg(id) AS ids FROM users) u""")
        conn.execute("ANALYZE")


def reference_seconds(dsn: str) -> float:
    """One full-table UPDATE of the tasks, rolled back: the yardstick for a set-based pass."""
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        conn.execute("UPDATE tasks SET updated_at = updated_at")
        elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


def measure(janitor: DatabaseJanitor, tasks: int) -> None:
    """Seed, time the reference, then time each revision's upgrade."""
    with janitor.ephemeral() as url:
        migrate.upgrade(url, "0001")
        seed(libpq_url(url), tasks, users=max(1, tasks // 20))
        reference = reference_seconds(libpq_url(url))
        print(f"\n{tasks:,} tasks; reference (one full-table UPDATE) {reference:.2f} s")
        total = 0.0
        for revision, _down, message in migrate.history()[1:]:
            started = time.perf_counter()
            migrate.upgrade(url, revision)
            elapsed = time.perf_counter() - started
            total += elapsed
            print(f"  {revision} {elapsed:7.2f} s  {elapsed / reference:6.2f}x  "
                  f"{elapsed / tasks * 1e6:6.1f} us/task  {message[:50]}")
        print(f"  all  {total:7.2f} s  {total / reference:6.2f}x  "
              f"{total / tasks * 1e6:6.1f} us/task")


def main() -> None:
    """Run the benchmark for each size on one ephemeral server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--db", default=None, help="auto|container|embedded|dsn")
    parser.add_argument("--dsn", default=None)
    args = parser.parse_args()
    with select_provider(args.db, args.dsn) as server:
        janitor = DatabaseJanitor(server.url)
        try:
            for tasks in args.tasks:
                measure(janitor, tasks)
        finally:
            janitor.close()


if __name__ == "__main__":
    main()
