"""Logins per second of the logins scenario against raw Argon2id verifications per second,
same parameters, same run.

1. Raw: one native thread per core verifying one hash in a loop (argon2-cffi releases the GIL,
   so this is the machine's verification capacity with these parameters).
2. `checker run logins` with password rotation switched off (CHECKER_LOGINS_NO_ROTATION=1):
   sign-in users logging into shared accounts (a login is one verification: right, wrong and
   unknown-email logins alike), verifying tokens and logging out; the scenario runs taskhub's
   Argon2id work on gevent's native thread pool (one thread per core).

Goal: logins/s >= 0.9 x raw verifications/s (issue 15).

    python benchmarks/logins_bench.py [--argon2 rfc9106] [--users 12] [--duration 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from checker.profiles import PROFILES
from checker.provision import select_provider
from taskhub import passwords
from taskhub.db import libpq_url
from taskhub.settings import Settings


def raw_verifications(profile: str, seconds: float) -> float:
    settings = Settings(argon2=PROFILES[profile])
    stored = passwords.hash_password("correct horse battery staple", settings)
    counts: list[int] = []
    deadline = time.monotonic() + seconds

    def loop() -> None:
        n = 0
        while time.monotonic() < deadline:
            passwords.verify(stored, "correct horse battery staple", settings)
            n += 1
        counts.append(n)

    threads = [threading.Thread(target=loop) for _ in range(os.cpu_count() or 2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def logins(dsn: str, args: argparse.Namespace, reports: Path) -> tuple[float, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "checker", "run", "logins", "--dsn", dsn, "--argon2",
         args.argon2, "--users", str(args.users), "--spawn-rate", "100", "--duration",
         f"{args.duration}s", "--seed", "1", "--report-dir", str(reports)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "CHECKER_LOGINS_NO_ROTATION": "1"})
    if done.returncode != 0:
        sys.exit(f"checker run failed ({done.returncode}):\n{done.stdout[-3000:]}"
                 f"{done.stderr[-3000:]}")
    [folder] = reports.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    login = next(op for op in summary["operations"] if op["name"] == "login")
    return float(login["requests"]) / float(summary["duration_s"]), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="embedded")
    parser.add_argument("--argon2", default="rfc9106", choices=sorted(PROFILES))
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--duration", type=int, default=20)
    args = parser.parse_args()
    with select_provider(args.db) as server, tempfile.TemporaryDirectory() as tmp:
        raw = raw_verifications(args.argon2, 8.0)
        rate, summary = logins(libpq_url(server.url), args, Path(tmp) / "reports")
    params = PROFILES[args.argon2]
    print(f"Argon2id {args.argon2} (m={params.memory_cost} KiB, t={params.time_cost}, "
          f"p={params.parallelism}), {os.cpu_count()} cores")
    print(f"raw verifications: {raw:,.1f}/s")
    print(f"checker run logins --users {args.users}: {rate:,.1f} logins/s (audit "
          f"{'clean' if summary['ok'] else 'FAILED'})")
    print(f"ratio: {rate / raw:.2f}x (goal >= 0.9x)")


if __name__ == "__main__":
    main()
