"""Helpers for the `checker run` tests: run the command in a subprocess against the session's
server (`--dsn`: a fresh database on it per run), and read back the report folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.history import RUN_START, HistoryRecord, read_history
from checker.provision import Server
from taskhub.db import libpq_url

CHECKER = [sys.executable, "-m", "checker"]
FAST = ("--users", "6", "--spawn-rate", "50", "--duration", "3s", "--argon2", "test",
        "--seed", "7", "--stop-timeout", "5s")
SUMMARY_KEYS = {"scenario", "ok", "problems", "parameters", "server_version", "started_at",
                "ended_at", "duration_s", "totals", "operations", "thresholds", "consistency",
                "audit", "files"}


@dataclass(frozen=True)
class Run:
    """A finished `checker run`: exit code, output, and its report folder (if any)."""

    returncode: int
    stdout: str
    stderr: str
    folder: Path | None

    @property
    def summary(self) -> dict[str, Any]:
        assert self.folder is not None, self.stderr
        return json.loads((self.folder / "summary.json").read_text())

    @property
    def history(self) -> list[HistoryRecord]:
        assert self.folder is not None
        return read_history(self.folder / "history.jsonl")

    def load_counts(self) -> Counter[str]:
        """Operations per op name in the history, without the seed and the header."""
        return Counter(r.op for r in self.history if r.op != RUN_START and r.process != "seed")


def checker(*args: str, env: dict[str, str] | None = None, timeout: float = 180
            ) -> subprocess.CompletedProcess[str]:
    """`checker ARGS` in a subprocess."""
    return subprocess.run([*CHECKER, *args], capture_output=True, text=True, timeout=timeout,
                          check=False, env={**os.environ, **(env or {})})


def run(server: Server, scenario: str, reports: Path, *extra: str,
        env: dict[str, str] | None = None) -> Run:
    """`checker run SCENARIO --dsn <session server>` with few users for a few seconds."""
    done = checker("run", scenario, "--dsn", libpq_url(server.url), "--report-dir",
                   str(reports), *FAST, *extra, env=env)
    folders = sorted(reports.glob(f"*-{scenario}*"))
    return Run(done.returncode, done.stdout, done.stderr, folders[-1] if folders else None)
