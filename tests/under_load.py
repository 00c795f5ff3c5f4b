"""`make test-under-load`: the whole suite RUNS times in a row (default 3) with BURNERS
CPU-bound processes beside it (default 2: on 2 cores, the suite gets about a third of the
machine). Every run must pass; the burners stop however it ends. Exit code: the first failing
run's, else 0."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time


def _burn() -> None:
    while True:
        pass


def main() -> int:
    runs = int(os.environ.get("RUNS", "3"))
    burners = [multiprocessing.Process(target=_burn, daemon=True)
               for _ in range(int(os.environ.get("BURNERS", "2")))]
    for burner in burners:
        burner.start()
    try:
        for n in range(1, runs + 1):
            began = time.monotonic()
            code = subprocess.call([sys.executable, "-m", "pytest", "-q", *sys.argv[1:]])
            print(f"under load, run {n}/{runs}: exit {code} in {time.monotonic() - began:.0f} s",
                  file=sys.stderr, flush=True)
            if code != 0:
                return code
        return 0
    finally:
        for burner in burners:
            burner.terminate()


if __name__ == "__main__":
    sys.exit(main())
