"""The injector: a background thread of the master (a greenlet under gevent) that injects the
run's faults while the load runs, one at a time, and records each one.

A fault's record: kind, when it started and ended, and when the server answered again (a new
connection and `SELECT 1`: its recovery time is counted from the fault's start). A periodic
fault first fires one period after the load starts; `statement-timeout` is set on the run's
database (`ALTER DATABASE ... SET`) before the users connect and reset when the load stops,
so the audit runs without it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from checker.faults.control import ServerControl
from checker.faults.spec import Fault

RECOVERY_LIMIT_S = 60.0
PROBE_TIMEOUT_S = 2
_TERMINATE = """SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend'"""


@dataclass(frozen=True)
class FaultRecord:
    """One injected fault (epoch seconds); `error` when injecting or recovering failed."""

    kind: str
    start: float
    end: float
    recovered: float | None
    detail: str = ""
    error: str | None = None

    @property
    def recovery_s(self) -> float | None:
        """From the fault's start until the server answered again."""
        return None if self.recovered is None else self.recovered - self.start

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for summary.json."""
        out = asdict(self)
        out["recovery_s"] = None if self.recovery_s is None else round(self.recovery_s, 3)
        return out


class Injector:
    """Injects `faults` into the database at `url` (a superuser's libpq URL of the run's
    database); `control` acts on the server's processes (crash, pause)."""

    def __init__(self, faults: tuple[Fault, ...], url: str,
                 control: ServerControl | None) -> None:
        self.faults = faults
        self.url = url
        self.control = control
        self.records: list[FaultRecord] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timeout: Fault | None = next((f for f in faults if not f.periodic), None)
        self._timeout_start = 0.0

    def start(self) -> None:
        """Set the statement timeout (if asked) and start the periodic faults."""
        if self._timeout is not None:
            self._timeout_start = time.time()
            self._set_timeout(f"{self._timeout.timeout * 1000:g}ms")
        if any(f.periodic for f in self.faults):
            self._thread = threading.Thread(target=self._loop, name="fault-injector",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish the fault in progress (a paused server is resumed, a crashed one restarted),
        stop injecting, reset the statement timeout."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._timeout is not None:
            error = None
            try:
                self._set_timeout(None)
            except psycopg.Error as exc:  # the server is gone: the run's verdict says so
                error = f"reset failed: {type(exc).__name__}: {str(exc).strip()[:200]}"
            # In force for the whole load: nothing to recover from (no recovery time).
            self.records.append(FaultRecord(self._timeout.kind, self._timeout_start,
                                            time.time(), None, self._timeout.describe(), error))

    def _loop(self) -> None:
        began = time.monotonic()
        due = {f: began + f.every for f in self.faults if f.periodic}
        while not self._stop.is_set():
            fault = min(due, key=due.__getitem__)
            if self._stop.wait(max(0.0, due[fault] - time.monotonic())):
                break
            self.records.append(self._inject(fault))
            due[fault] = max(due[fault] + fault.every, time.monotonic())

    def _inject(self, fault: Fault) -> FaultRecord:
        start = time.time()
        detail, error = "", None
        try:
            detail = self._act(fault)
        except Exception as exc:  # recorded; the run's verdict reports it
            error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
        end = time.time()
        recovered = self._probe()
        if recovered is None and error is None:
            error = f"no answer within {RECOVERY_LIMIT_S:g} s"
        return FaultRecord(fault.kind, start, end, recovered, detail, error)

    def _act(self, fault: Fault) -> str:
        if fault.kind == "kill-backends":
            with self._connect(PROBE_TIMEOUT_S) as conn:
                row = conn.execute(_TERMINATE).fetchone()
            return f"terminated {row[0] if row else 0} backends"
        assert self.control is not None, f"{fault.kind} needs server control"
        if fault.kind == "crash":
            return self.control.crash_restart()
        detail = self.control.pause()
        try:
            time.sleep(fault.duration)
        finally:
            self.control.resume()
        return f"{detail} for {fault.duration:g} s"

    def _probe(self) -> float | None:
        """When a new connection and `SELECT 1` succeeded (None: not within the limit)."""
        deadline = time.monotonic() + RECOVERY_LIMIT_S
        while time.monotonic() < deadline:
            try:
                with self._connect(PROBE_TIMEOUT_S) as conn:
                    conn.execute("SELECT 1")
                return time.time()
            except psycopg.Error:
                time.sleep(0.02)
        return None

    def _connect(self, timeout: int) -> psycopg.Connection[Any]:
        """An autocommit connection of the injector's own, exempt from the statement-timeout
        fault it may itself have set on the run's database."""
        return psycopg.connect(self.url, connect_timeout=timeout, autocommit=True,
                               options="-c statement_timeout=0")

    def _set_timeout(self, value: str | None) -> None:
        with self._connect(10) as conn:
            name = conn.info.dbname
            if value is None:
                conn.execute(sql.SQL("ALTER DATABASE {} RESET statement_timeout")
                             .format(sql.Identifier(name)))
            else:
                conn.execute(sql.SQL("ALTER DATABASE {} SET statement_timeout = {}")
                             .format(sql.Identifier(name), sql.Literal(value)))
