"""Does a login's duration reveal whether an email is registered?

Times `auth.login` refusals on one migrated database, same run, interleaved in a shuffled
order each round so drift and caching hit every path alike:

- wrong password: a registered email, a wrong password (one Argon2id verification of the
  stored hash);
- unknown email: an email no one has (one verification of taskhub's dummy hash);
- malformed email: not an email at all (the dummy path too);
- right password, for reference: it also opens a session (an INSERT and a COMMIT).

Reports each path's median (and 10th/90th percentiles) over N rounds and the ratio of the
unknown-email to the wrong-password median: 1.00x means the two cannot be told apart by
timing. Nothing is asserted: the tests check only that both paths do the same Argon2 work.

    python benchmarks/login_timing_bench.py [--argon2 rfc9106|owasp|test] [--runs 60]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import statistics
import time
from collections.abc import Callable

from checker.access import RuntimeAccess
from checker.database import migrated_database
from checker.profiles import PROFILES
from checker.provision import select_provider
from taskhub import auth, users
from taskhub.errors import InvalidCredentials
from taskhub.settings import Settings

PASSWORD = "violet-harbor-quietly-tangerine-42"  # noqa: S105 - the benchmark's own account
EMAIL = "timing@example.com"


def timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    with contextlib.suppress(InvalidCredentials):
        call()
    return time.perf_counter() - began


def measure(access: RuntimeAccess, settings: Settings, runs: int,
            warmup: int) -> dict[str, list[float]]:
    db = access.connect()  # the services' own pools (runtime login roles), as deployed
    try:
        users.register(db, settings, EMAIL, PASSWORD)
        paths: dict[str, Callable[[], object]] = {
            "wrong password": lambda: auth.login(db, settings, EMAIL, PASSWORD + "!"),
            "unknown email": lambda: auth.login(db, settings, "nobody@example.com", PASSWORD),
            "malformed email": lambda: auth.login(db, settings, "not an email", PASSWORD),
            "right password": lambda: auth.login(db, settings, EMAIL, PASSWORD),
        }
        samples: dict[str, list[float]] = {name: [] for name in paths}
        rng = random.Random(8)  # noqa: S311 - the order of measurements, not a secret
        for round_no in range(warmup + runs):
            order = list(paths)
            rng.shuffle(order)
            for name in order:
                elapsed = timed(paths[name])
                if round_no >= warmup:
                    samples[name].append(elapsed)
        return samples
    finally:
        db.dispose()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="embedded")
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--argon2", default="rfc9106", choices=sorted(PROFILES))
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    params = PROFILES[args.argon2]
    settings = Settings(argon2=params, jwt_secret=secrets.token_urlsafe(48))
    with migrated_database(select_provider(args.db, args.dsn)) as database:
        samples = measure(database.access, settings, args.runs, args.warmup)
    print(f"Argon2id {args.argon2} (m={params.memory_cost} KiB, t={params.time_cost}, "
          f"p={params.parallelism}), {os.cpu_count()} cores, {args.runs} rounds "
          f"(+{args.warmup} warm-up), shuffled order per round")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, values in samples.items():
        print(f"  {name:<16} median {medians[name] * 1000:8.2f} ms   "
              f"p10 {quantile(values, 0.1) * 1000:8.2f} ms   "
              f"p90 {quantile(values, 0.9) * 1000:8.2f} ms")
    base = medians["wrong password"]
    print(f"unknown email / wrong password:   {medians['unknown email'] / base:.3f}x")
    print(f"malformed email / wrong password: {medians['malformed email'] / base:.3f}x")


if __name__ == "__main__":
    main()
