"""Does a login's duration reveal whether an email is registered?

Times `auth.login` refusals on one migrated database, same run, interleaved in a shuffled
order each round so drift and caching hit every path alike:

- wrong password: a registered email, a wrong password (one Argon2id verification of the
  stored hash);
- wrong, old hash: the same to an account whose hash was made with an older, cheaper profile
  (owasp under rfc9106, test under owasp) and never re-hashed: its verification is cheaper, and
  the login waits out the rest of a current one;
- unknown email: an email no one has (one verification of taskhub's dummy hash);
- malformed email: not an email at all (the dummy path too);
- right password, for reference: it also opens a session (an INSERT and a COMMIT).

Reports each path's median (and 10th/90th percentiles) over N rounds and the ratios of the
unknown-email and old-hash medians to the wrong-password median: 1.00x means the paths cannot
be told apart by timing. Nothing is asserted: the tests check the logic (the same Argon2 work,
the wait), this measures the time.

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
from dataclasses import replace

from checker.access import RuntimeAccess
from checker.database import migrated_database
from checker.profiles import PROFILES
from checker.provision import select_provider
from taskhub import auth, users
from taskhub.errors import InvalidCredentials
from taskhub.settings import Settings

PASSWORD = "violet-harbor-quietly-tangerine-42"  # noqa: S105 - the benchmark's own account
EMAIL = "timing@example.com"
LEGACY_EMAIL = "timing-legacy@example.com"
LEGACY = {"rfc9106": "owasp", "owasp": "test", "test": "test"}
"""The older, cheaper profile the legacy account's hash was made with, per current profile."""


def timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    with contextlib.suppress(InvalidCredentials):
        call()
    return time.perf_counter() - began


def measure(access: RuntimeAccess, settings: Settings, legacy: Settings, runs: int,
            warmup: int) -> dict[str, list[float]]:
    db = access.connect()  # the services' own pools (runtime login roles), as deployed
    try:
        users.register(db, settings, EMAIL, PASSWORD)
        users.register(db, legacy, LEGACY_EMAIL, PASSWORD)  # never signed in: never rehashed
        paths: dict[str, Callable[[], object]] = {
            "wrong password": lambda: auth.login(db, settings, EMAIL, PASSWORD + "!"),
            "wrong, old hash": lambda: auth.login(db, settings, LEGACY_EMAIL, PASSWORD + "!"),
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
    legacy = replace(settings, argon2=PROFILES[LEGACY[args.argon2]])
    with migrated_database(select_provider(args.db, args.dsn)) as database:
        samples = measure(database.access, settings, legacy, args.runs, args.warmup)
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
    print(f"wrong, old hash / wrong password: {medians['wrong, old hash'] / base:.3f}x "
          f"(its hash: {LEGACY[args.argon2]})")
    print(f"malformed email / wrong password: {medians['malformed email'] / base:.3f}x")


if __name__ == "__main__":
    main()
