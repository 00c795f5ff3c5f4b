"""The checker's own cost as the data grows: seeding at 100k, 300k and 1M tasks.

Seeding (`checker.seed`: plan, hash, users by COPY, tasks and their creation events by one
set-based statement, the seed's history records) against its reference measured in the same
run on the same server: one server-side `INSERT ... SELECT generate_series` of the same tasks
(random ids) and one `INSERT ... SELECT` of their creation events, into a database with the
same users. Both databases are fresh and migrated; rows/s counts tasks and events.

    python benchmarks/scale_bench.py [--tasks 100000 300000 1000000] [--tenants 100]
                                     [--db embedded] [--repeat 2]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from checker import migrate
from checker.history import HistoryWriter
from checker.janitor import DatabaseJanitor
from checker.provision import select_provider
from checker.seed import SeedSpec, hash_all, plan, seed_database
from taskhub.db import libpq_url
from taskhub.settings import TEST_ARGON2

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--db", default=None, help="auto|container|embedded|dsn")
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with select_provider(args.db, args.dsn) as server:
        janitor = DatabaseJanitor(server.url)
        try:
            seeds = [measure_seed(janitor, n, args.tenants, args.repeat) for n in args.tasks]
        finally:
            janitor.close()
    print("seeding (tasks + their creation events; best of the runs)")
    for fig in seeds:
        print(f"  {fig.tasks:>9,} tasks: {fig.seed_s:6.2f} s, {fig.rows_per_s / 1e3:6.0f}k rows/s;"
              f" reference {fig.reference_s:6.2f} s; seed / reference "
              f"{fig.seed_s / fig.reference_s:4.2f}x; history {fig.history_mb:.0f} MB")
    for before, after in itertools.pairwise(seeds):
        print(f"  growth {before.tasks:,} -> {after.tasks:,} ({after.tasks / before.tasks:.1f}x):"
              f" seed {after.seed_s / before.seed_s:.1f}x, reference "
              f"{after.reference_s / before.reference_s:.1f}x")


if __name__ == "__main__":
    main()
