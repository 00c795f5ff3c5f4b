"""Locust's CSV statistics for `--csv PREFIX`: the four files `locust --csv` writes, in its
format (`PREFIX_stats.csv`, `_stats_history.csv`, `_failures.csv`, `_exceptions.csv`), so the
tools people already point at Locust's CSV read a checker run too."""

from __future__ import annotations

import csv
import os

import gevent
from locust.env import Environment
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

from checker.errors import UsageError


class CsvStats:
    """Locust's own CSV writer on an environment: opened (and the prefix's folder made) at
    once, so a prefix that cannot be written is refused before the load; `start` begins the
    once-a-second rows, `close` writes the final figures and closes the files."""

    def __init__(self, env: Environment, prefix: str, full_history: bool) -> None:
        self.prefix = prefix
        try:
            if folder := os.path.dirname(prefix):
                os.makedirs(folder, exist_ok=True)
            self._writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, prefix, full_history)
        except OSError as exc:
            raise UsageError(f"cannot write --csv {prefix}: {exc.strerror or exc}") from None
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        """Write the statistics every second from now on, as Locust does during a run."""
        self._greenlet = gevent.spawn(self._writer.stats_writer)

    def close(self) -> None:
        """Stop the periodic rows, then rewrite the totals, failures and exceptions from the
        final figures (the periodic writer may be a second behind them) and close."""
        if self._greenlet is not None:
            self._greenlet.kill()
        self._writer.close_files()
        finals = (("_stats.csv", self._writer.requests_csv),
                  ("_failures.csv", self._writer.failures_csv),
                  ("_exceptions.csv", self._writer.exceptions_csv))
        for suffix, write in finals:
            with open(self.prefix + suffix, "w", newline="", encoding="utf-8") as out:
                write(csv.writer(out))
