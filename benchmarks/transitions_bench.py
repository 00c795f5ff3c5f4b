"""The transitions scenario's operations per second against pgbench running the same SQL
transactions: same server, same run.

1. `checker run transitions --workers W` on a database of an ephemeral server (queue workers
   claim and finish tasks, racers contend for the same tasks, a producer creates tasks; every
   operation is one taskhub transaction, timed, recorded in the history and audited).
2. pgbench on another database of the same server, filled with a deep queue, running the
   worker's two transactions exactly as taskhub issues them, as the database's worker login
   role: the claim (`FOR UPDATE SKIP LOCKED`, status update and event in one statement) and
   the completion (status read, conditional update and event in one statement), each with the
   unit of work's pinned settings and its session reset (`taskhub.uow`). Each pgbench script
   run is two transactions. The reference is the database's own cost of the same work, so the
   ratio is the checker's own efficiency (client, history, Locust), whatever the data layer's
   per-transaction security costs.

Goal: checker ops/s >= 0.5 x pgbench transactions/s with `--workers 2`.

    python benchmarks/transitions_bench.py [--workers 2] [--users 24] [--duration 20]
                                           [--clients 8] [--db embedded]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from checker import migrate
from checker.janitor import DatabaseJanitor
from checker.provision import select_provider
from checker.provision.embedded import find_bindir
from taskhub.db import libpq_url

# Each transaction as a taskhub worker unit of work sends it (`taskhub.uow`), in three
# messages (`\;` joins statements into one): BEGIN with the pinned settings, the statement,
# the session reset with the COMMIT; as the database's worker login role, as taskhub connects.
PINS = ("SELECT pg_catalog.set_config('search_path', 'public, pg_temp', true), "
        "pg_catalog.set_config('row_security', 'on', true), "
        "pg_catalog.set_config('synchronous_commit', 'on', true);")
CLAIM_AND_COMPLETE = f"""\
BEGIN \\; {PINS}
WITH picked AS (
  SELECT id FROM tasks WHERE status = 'pending' ORDER BY created_at, id
  LIMIT 1 FOR UPDATE SKIP LOCKED),
moved AS (
  UPDATE tasks t SET status = 'processing', version = t.version + 1, updated_at = now()
  FROM picked WHERE t.id = picked.id AND t.status = 'pending' RETURNING t.*),
logged AS (
  INSERT INTO task_events (task_id, user_id, from_status, to_status, actor)
  SELECT id, user_id, 'pending', 'processing', 'worker:pgbench' FROM moved)
SELECT id AS claimed FROM moved ORDER BY created_at, id \\gset
SELECT public.taskhub_end_unit() \\; COMMIT;
BEGIN \\; {PINS}
WITH seen AS (SELECT status FROM tasks WHERE id = ':claimed'),
moved AS (
  UPDATE tasks SET status = 'completed', version = version + 1, updated_at = now(),
  result = CAST('{{"by": "pgbench"}}' AS jsonb), error = NULL
  WHERE id = ':claimed' AND status = 'processing' RETURNING *),
logged AS (
  INSERT INTO task_events (task_id, user_id, from_status, to_status, actor)
  SELECT id, user_id, 'processing', 'completed', 'worker:pgbench' FROM moved)
SELECT seen.status AS seen, moved.* FROM seen LEFT JOIN moved ON true;
SELECT public.taskhub_end_unit() \\; COMMIT;
"""

DEEP_QUEUE = """
INSERT INTO users (id, email, password_hash)
SELECT md5('u' || i)::uuid, 'bench' || i || '@load.test',
       '$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g'
FROM generate_series(1, 100) AS i;

INSERT INTO tasks (user_id, title, created_at)
SELECT md5('u' || (i %% 100 + 1))::uuid, 'bench', now() - interval '1 day' + i * interval '1 ms'
FROM generate_series(1, %(tasks)s) AS i;
INSERT INTO task_events (task_id, user_id, from_status, to_status, actor)
SELECT id, user_id, NULL, 'pending', 'seed' FROM tasks;
"""


def checker_run(dsn: str, args: argparse.Namespace, reports: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "checker", "run", "transitions", "--dsn", dsn, "--workers",
         str(args.workers), "--users", str(args.users), "--spawn-rate", "100", "--duration",
         f"{args.duration}s", "--argon2", "test", "--tasks-per-tenant", "3000", "--seed", "1",
         "--report-dir", str(reports)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"checker run failed ({done.returncode}):\n{done.stdout[-3000:]}"
                 f"{done.stderr[-3000:]}")
    [folder] = reports.iterdir()
    summary: dict[str, object] = json.loads((folder / "summary.json").read_text())
    return summary


def pgbench(janitor: DatabaseJanitor, args: argparse.Namespace, workdir: Path) -> float:
    """pgbench transactions per second (two per script run)."""
    url = janitor.create()
    assert url.database is not None
    try:
        migrate.upgrade(url)
        with psycopg.connect(libpq_url(url)) as conn:
            for statement in filter(str.strip, DEEP_QUEUE.split(";")):
                conn.execute(statement, {"tasks": args.pgbench_tasks})
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        worker_url = janitor.runtime_access(url.database).worker_url
        script = workdir / "claim_and_complete.sql"
        script.write_text(CLAIM_AND_COMPLETE)
        done = subprocess.run(
            [str(find_bindir() / "pgbench"), "-n", "-c", str(args.clients), "-j", "2", "-T",
             str(args.duration), "-f", str(script), libpq_url(worker_url)],
            capture_output=True, text=True, check=False)
        match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
        if done.returncode != 0 or not match:
            sys.exit(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
        return 2 * float(match.group(1))
    finally:
        janitor.drop(url.database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="embedded")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=24)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pgbench-tasks", type=int, default=300_000)
    args = parser.parse_args()
    with select_provider(args.db) as server, tempfile.TemporaryDirectory() as tmp:
        janitor = DatabaseJanitor(server.url)
        try:
            summary = checker_run(libpq_url(server.url), args, Path(tmp) / "reports")
            print(f"checker: {summary['totals']}", flush=True)
            bench = pgbench(janitor, args, Path(tmp))
        finally:
            janitor.close()
    totals = summary["totals"]
    assert isinstance(totals, dict)
    ops = float(totals["ops_per_s"])
    print(f"checker run transitions --workers {args.workers} --users {args.users}: "
          f"{ops:,.0f} ops/s ({totals['requests']:,} ops, audit "
          f"{'clean' if summary['ok'] else 'FAILED'})")
    print(f"pgbench -c {args.clients} -j 2, claim + complete: {bench:,.0f} transactions/s")
    print(f"ratio: {ops / bench:.2f}x (goal >= 0.5x)")


if __name__ == "__main__":
    main()
