"""Drive two or three real sessions through a scripted interleaving, one statement at a time.

Each session is its own psycopg connection in autocommit mode (the script's `BEGIN`, `COMMIT`
and `ROLLBACK` are statements like any other), served by its own thread, so a statement that
waits for a lock does not stop the script. After each statement the lab waits until it has
finished or its backend waits on another session (`pg_blocking_pids`), records which, and goes
on; a blocked statement is collected when a later step releases it. Statements a session is
given after an error in its transaction are skipped (PostgreSQL would refuse them) up to its
`COMMIT`/`ROLLBACK`.

Every run starts from the same table, `hermitage.test` holding (1, 10) and (2, 20) as in
Hermitage; the sessions see it as `test` through their `search_path`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any

import psycopg
from psycopg import pq

SCHEMA = "hermitage"
SETUP = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.test (id int PRIMARY KEY, value int)",
)
RESET = (f"TRUNCATE {SCHEMA}.test",
         f"INSERT INTO {SCHEMA}.test (id, value) VALUES (1, 10), (2, 20)")
TERMINAL = frozenset({"COMMIT", "ROLLBACK", "ABORT"})
POLL_S = 0.002


class Level(StrEnum):
    """A transaction isolation level, spelled as `BEGIN ISOLATION LEVEL` takes it."""

    READ_COMMITTED = "read committed"
    REPEATABLE_READ = "repeatable read"
    SERIALIZABLE = "serializable"


class LabError(RuntimeError):
    """The script could not be driven (a statement neither finished nor blocked in time)."""


@dataclass(frozen=True)
class Step:
    """One statement of session `session` (1, 2 or 3); `label` names its result for judging."""

    session: int
    sql: str
    label: str = ""

    @property
    def terminal(self) -> bool:
        """Whether the statement ends the session's transaction."""
        return self.sql.strip().rstrip(";").upper() in TERMINAL


@dataclass(frozen=True)
class StepResult:
    """What one statement did: its rows, or its error, and whether it had to wait for a lock."""

    step: Step
    blocked: bool = False
    rows: tuple[tuple[Any, ...], ...] = ()
    rowcount: int = -1
    sqlstate: str | None = None
    error: str = ""
    skipped: bool = False

    @property
    def ok(self) -> bool:
        """True when the statement ran and succeeded."""
        return not self.skipped and self.sqlstate is None


@dataclass(frozen=True)
class Trace:
    """One run of a script at one isolation level."""

    level: Level
    results: tuple[StepResult, ...]
    final: tuple[tuple[Any, ...], ...]
    committed: frozenset[int]

    def result(self, label: str) -> StepResult:
        """The result of the step labelled `label`."""
        for result in self.results:
            if result.step.label == label:
                return result
        raise KeyError(label)

    def values(self, label: str) -> dict[int, int]:
        """`{id: value}` of the rows the labelled step returned (empty if it did not run)."""
        result = self.result(label)
        return {row[0]: row[1] for row in result.rows} if result.ok else {}

    @property
    def blocked(self) -> bool:
        """Whether any statement waited for another session's lock."""
        return any(r.blocked for r in self.results)

    @property
    def sqlstates(self) -> frozenset[str]:
        """The SQLSTATEs of every error raised."""
        return frozenset(r.sqlstate for r in self.results if r.sqlstate is not None)


@dataclass
class _Session:
    number: int
    conn: psycopg.Connection[tuple[Any, ...]]
    pool: ThreadPoolExecutor
    pending: tuple[int, Future[StepResult]] | None = None
    failed: bool = False
    committed: bool = False

    @property
    def pid(self) -> int:
        return self.conn.info.backend_pid


@dataclass
class _Run:
    results: list[StepResult | None] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)


class Lab:
    """Three sessions and a monitor connection on one database; `run()` plays a script."""

    def __init__(self, conninfo: str, *, sessions: int = 3, timeout: float = 10.0) -> None:
        self.conninfo = conninfo
        self.timeout = timeout
        self._n = sessions
        self._monitor: psycopg.Connection[tuple[Any, ...]] | None = None
        self._sessions: dict[int, _Session] = {}

    def __enter__(self) -> Lab:
        try:
            self._monitor = psycopg.connect(self.conninfo, autocommit=True)
            for sql in SETUP:
                self._monitor.execute(sql)
            for number in range(1, self._n + 1):
                conn = psycopg.connect(self.conninfo, autocommit=True,
                                       options=f"-c search_path={SCHEMA}",
                                       application_name=f"isolation-lab-T{number}")
                pool = ThreadPoolExecutor(1, thread_name_prefix=f"lab-T{number}")
                self._sessions[number] = _Session(number, conn, pool)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection and thread; drop the lab's schema."""
        for session in self._sessions.values():
            session.pool.shutdown(wait=True)
            session.conn.close()
        self._sessions.clear()
        if self._monitor is not None:
            if not self._monitor.closed:
                self._monitor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
                self._monitor.close()
            self._monitor = None

    @property
    def server_version(self) -> str:
        """The server's `server_version`."""
        row = self._monitor_conn().execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def run(self, steps: Sequence[Step], level: Level) -> Trace:
        """Reset the table, BEGIN every session of the script at `level`, play the steps."""
        monitor = self._monitor_conn()
        for sql in RESET:
            monitor.execute(sql)
        used = sorted({step.session for step in steps})
        for number in used:
            session = self._sessions[number]
            session.failed = session.committed = False
            session.conn.execute(f"BEGIN ISOLATION LEVEL {level.value.upper()}")
        run = _Run()
        try:
            for index, step in enumerate(steps):
                run.results.append(None)
                self._play(run, index, step)
                self._collect_released(run)
            for number in used:
                self._finish_pending(run, self._sessions[number])
        finally:
            for number in used:
                self._end(self._sessions[number])
        final = monitor.execute(f"SELECT id, value FROM {SCHEMA}.test ORDER BY id").fetchall()
        results = tuple(r for r in run.results if r is not None)
        committed = frozenset(n for n in used if self._sessions[n].committed)
        return Trace(level, results, tuple(final), committed)

    def _play(self, run: _Run, index: int, step: Step) -> None:
        session = self._sessions[step.session]
        self._finish_pending(run, session)  # a session sends nothing while it waits
        if session.failed and not step.terminal:
            run.results[index] = StepResult(step, skipped=True)
            return
        future = session.pool.submit(_execute, session.conn, step)
        session.pending = (index, future)
        if self._settle(session, future):
            session.pending = None
            self._record(run, session, index, future.result())
        else:
            run.blocked.add(index)

    def _settle(self, session: _Session, future: Future[StepResult]) -> bool:
        """Wait until the statement finished (True) or waits on another session (False)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                future.result(timeout=POLL_S)
                return True
            except TimeoutError:
                pass
            if self._waits_on_lock(session.pid):
                return False
            if time.monotonic() > deadline:
                raise LabError(f"T{session.number} neither finished nor blocked within "
                               f"{self.timeout:.0f}s")

    def _collect_released(self, run: _Run) -> None:
        """Record blocked statements that the last step released (they finish or block again)."""
        for session in self._sessions.values():
            if session.pending is not None:
                index, future = session.pending
                if self._settle(session, future):
                    session.pending = None
                    self._record(run, session, index, future.result())

    def _finish_pending(self, run: _Run, session: _Session) -> None:
        if session.pending is None:
            return
        index, future = session.pending
        try:
            result = future.result(timeout=self.timeout)
        except TimeoutError:
            raise LabError(f"T{session.number} is still blocked and the script has nothing "
                           "left to release it") from None
        session.pending = None
        self._record(run, session, index, result)

    def _record(self, run: _Run, session: _Session, index: int, result: StepResult) -> None:
        if index in run.blocked:
            result = StepResult(result.step, True, result.rows, result.rowcount,
                                result.sqlstate, result.error)
        run.results[index] = result
        if result.sqlstate is not None:
            session.failed = True
        if result.step.terminal:
            session.committed = (result.ok and not session.failed
                                 and result.step.sql.strip().upper().startswith("COMMIT"))
            session.failed = False

    def _end(self, session: _Session) -> None:
        """Roll back whatever the script left open (after a LabError, cancel what still runs)."""
        if session.pending is not None:
            session.conn.cancel_safe()
            session.pending[1].result(timeout=self.timeout)
            session.pending = None
        if session.conn.info.transaction_status != pq.TransactionStatus.IDLE:
            session.conn.execute("ROLLBACK")

    def _waits_on_lock(self, pid: int) -> bool:
        row = self._monitor_conn().execute(
            "SELECT cardinality(pg_blocking_pids(%s)) > 0", (pid,)).fetchone()
        return bool(row and row[0])

    def _monitor_conn(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._monitor is None:
            raise LabError("the lab is not open")
        return self._monitor


def _execute(conn: psycopg.Connection[tuple[Any, ...]], step: Step) -> StepResult:
    try:
        cur = conn.execute(step.sql)
    except psycopg.Error as exc:
        return StepResult(step, sqlstate=exc.sqlstate or "?????", error=str(exc).strip())
    rows = tuple(cur.fetchall()) if cur.description is not None else ()
    return StepResult(step, rows=rows, rowcount=cur.rowcount)
