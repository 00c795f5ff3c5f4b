"""Provider costs: time to a ready server, to a database at head, and per-test database cost.

    python benchmarks/provision_bench.py [--db embedded container] [--clones 20]

Prints, per provider: server ready, migrate an empty database to head, the median template
clone (`CREATE DATABASE ... TEMPLATE`) and drop (`WITH (FORCE)`) — what every test pays —
and the teardown.
"""

from __future__ import annotations

import argparse
import statistics
import time

from checker import migrate
from checker.janitor import DatabaseJanitor
from checker.provision import select_provider


def measure(kind: str, clones: int) -> None:
    """One provider, start to teardown."""
    started = time.perf_counter()
    provider = select_provider(kind)
    with provider as server:
        ready = time.perf_counter()
        janitor = DatabaseJanitor(server.url)
        template = janitor.create()
        migrate.upgrade(template)
        migrated = time.perf_counter()
        clone_s, drop_s = [], []
        for _ in range(clones):
            a = time.perf_counter()
            clone = janitor.create(template=template.database)
            b = time.perf_counter()
            assert clone.database is not None
            janitor.drop(clone.database)
            clone_s.append(b - a)
            drop_s.append(time.perf_counter() - b)
        janitor.close()
        stopping = time.perf_counter()
    print(f"{kind:9} ready {ready - started:5.2f} s  migrate to head {migrated - ready:5.2f} s  "
          f"clone {statistics.median(clone_s) * 1e3:5.1f} ms  "
          f"drop {statistics.median(drop_s) * 1e3:5.1f} ms  "
          f"teardown {time.perf_counter() - stopping:5.2f} s")


def main() -> None:
    """Measure each requested provider in turn."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", nargs="+", default=["embedded", "container"])
    parser.add_argument("--clones", type=int, default=20)
    args = parser.parse_args()
    for kind in args.db:
        measure(kind, args.clones)


if __name__ == "__main__":
    main()
