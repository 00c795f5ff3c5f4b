"""Helpers for the `checker run` tests: run the command in a subprocess against the session's
server (`--dsn`: a fresh database on it per run), and read back the report folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.history import RUN_START, HistoryRecord, read_history
from checker.provision import Server
from taskhub.db import libpq_url
from tests.support import eventually

CHECKER = [sys.executable, "-m", "checker"]
FAST = ("--users", "6", "--spawn-rate", "50", "--duration", "3s", "--argon2", "test",
        "--seed", "7", "--stop-timeout", "5s")
SUMMARY_KEYS = {"scenario", "ok", "problems", "parameters", "server_version", "started_at",
                "ended_at", "duration_s", "totals", "operations", "thresholds", "consistency",
                "audit", "files", "phases", "conditions"}


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


def checker(*args: str, env: dict[str, str] | None = None, timeout: float = 180,
            replace_env: bool = False) -> subprocess.CompletedProcess[str]:
    """`checker ARGS` in a subprocess (`env` added to this one's, or all of it)."""
    return subprocess.run([*CHECKER, *args], capture_output=True, text=True, timeout=timeout,
                          check=False, env=(env or {}) if replace_env
                          else {**os.environ, **(env or {})})


def run(server: Server, scenario: str, reports: Path, *extra: str,
        env: dict[str, str] | None = None) -> Run:
    """`checker run SCENARIO --dsn <session server>` with few users for a few seconds."""
    done = checker("run", scenario, "--dsn", libpq_url(server.url), "--report-dir",
                   str(reports), *FAST, *extra, env=env)
    folders = sorted(reports.glob(f"*-{scenario}*"))
    return Run(done.returncode, done.stdout, done.stderr, folders[-1] if folders else None)


def history_so_far(path: Path) -> list[HistoryRecord] | None:
    """The history a run is still writing (None while its last line is partial)."""
    from checker.errors import UsageError

    try:
        return read_history(path)
    except UsageError:
        return None


DEADLINE_S = 180.0
"""How long a test waits for a condition of a run (generous: a busy machine is slow)."""


@dataclass
class Started:
    """A command in a session of its own (as a terminal's foreground job is its own group):
    read its stderr as it goes, wait for what it created, Ctrl-C it."""

    proc: subprocess.Popen[str]
    lines: list[str]

    def wait_for(self, text: str) -> None:
        """Read stderr until a line holds `text` (AssertionError at EOF)."""
        assert self.proc.stderr is not None
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise AssertionError(f"no {text!r} line; stderr so far:\n{''.join(self.lines)}")
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} line within {DEADLINE_S:g} s")

    def when(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition` holds (what the command created shows its phase)."""
        assert eventually(condition, DEADLINE_S), "the condition never held"

    def ctrl_c(self) -> None:
        """SIGINT to the whole process group, like a terminal's Ctrl-C."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def finish(self) -> tuple[int, str, str]:
        """Exit code, stdout, the whole stderr."""
        out, err = self.proc.communicate(timeout=DEADLINE_S)
        return self.proc.returncode, out, "".join(self.lines) + err


@contextmanager
def started(*args: str) -> Iterator[Started]:
    proc = subprocess.Popen([*CHECKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        yield Started(proc, [])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Exploring:
    """A `checker explore` session: its process and its web UI's address."""

    proc: subprocess.Popen[str]
    base: str
    page: str
    """The UI's first page, as served."""

    def finish(self, timeout: float = 120) -> tuple[str, str]:
        """Wait for the session to end (its `--duration`); its stdout and stderr."""
        return self.proc.communicate(timeout=timeout)


@contextmanager
def exploring(server: Server, reports: Path, *extra: str) -> Iterator[Exploring]:
    """`checker explore transitions` on `server` with `extra`, once its web UI answers
    (killed afterwards if still running)."""
    import urllib.request

    from checker.provision.base import free_port

    port = free_port()
    proc = subprocess.Popen(
        [*CHECKER, "explore", "transitions", "--dsn", libpq_url(server.url), "--web-port",
         str(port), "--argon2", "test", "--seed", "3", "--report-dir", str(reports), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        base = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base, timeout=2) as answer:
                    page = answer.read().decode()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "no web UI"
                time.sleep(0.2)
        yield Exploring(proc, base, page)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
