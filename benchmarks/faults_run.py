"""A 60 s `concurrency` run under faults: backends killed every 3 s, the server crashed and
restarted every 15 s, frozen for 1 s every 10 s, and a 5 ms statement timeout throughout
(short enough that PostgreSQL cancels statements: they are counted as 57014 client errors).

Goal: at least 20 faults injected, none failed, every one recovered from; 0 acknowledged
writes lost (the `ledger.*` checks) and 0 violations of any audit check. Prints the figures
and exits 1 when a goal is missed.

    python benchmarks/faults_run.py [--duration 60s] [--users 20] [--report-dir reports]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

FAULTS = ("kill-backends:every=3s;crash:every=15s;pause:every=10s,for=1s;"
          "statement-timeout:5ms")
MIN_FAULTS = 20


def main() -> int:
    """Run, read summary.json, print the figures, check the goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--users", default="20")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"))
    args = parser.parse_args()
    done = subprocess.run(
        [sys.executable, "-m", "checker", "run", "concurrency", "--db", "embedded",
         "--duration", args.duration, "--users", args.users, "--seed", "8",
         "--report-dir", str(args.report_dir), "--faults", FAULTS],
        capture_output=True, text=True, check=False)
    folders = sorted(args.report_dir.glob("*-concurrency"))
    if not folders:
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    summary = json.loads((folders[-1] / "summary.json").read_text())
    faults, audit = summary["faults"], summary["audit"]
    lost = sum(c["violations"] for c in audit["checks"] if c["name"].startswith("ledger."))
    violations = sum(c["violations"] for c in audit["checks"])
    outcomes: dict[str, int] = {}
    for op in summary["operations"]:
        for outcome, count in op["outcomes"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    print(f"exit {done.returncode}; {summary['totals']['requests']:,} ops in "
          f"{summary['duration_s']:.0f} s ({summary['totals']['ops_per_s']:,.0f} ops/s); "
          f"outcomes {outcomes}")
    print(f"faults: {faults['injected']} injected {faults['by_kind']}, "
          f"{faults['failed_injections']} failed; recovery max {faults['recovery_s']['max']} s, "
          f"mean {faults['recovery_s']['mean']} s")
    print(f"client errors: {faults['client_errors']}")
    print(f"lost acknowledged writes: {lost}; audit violations: {violations}; "
          f"report {folders[-1]}")
    ok = (done.returncode == 0 and faults["injected"] >= MIN_FAULTS
          and not faults["failed_injections"] and lost == 0 and violations == 0)
    print("goal met" if ok else "goal MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
