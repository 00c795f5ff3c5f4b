"""Deterministic interleavings of real service calls on separate connections.

`Pause(db, point)` holds the first transaction on `db` (give each actor its own Database; both
of its pools are watched) at a point of its choosing (before its first write, after its n-th
write, or just before COMMIT, locks held) until `release()`; the test meanwhile runs the other
actor and waits for it to queue on a lock (`helpers.wait_for_lock_waiters`) or to finish.
SQLAlchemy engine events do the holding, so the services need no test hooks. A unit of work
commits with one simple-protocol message that starts with COMMIT (`taskhub.uow`): "before
COMMIT" is just before that statement is sent.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import Engine, event, text

from taskhub.db import Database
from tests.integration.faults import is_write
from tests.integration.helpers import engines_of, is_commit, wait_for_lock_waiters

Point = Literal["before_write", "after_write", "before_commit"]
TIMEOUT_S = 30.0


class Pause:
    """Hold one transaction on `target` at `point` (the n-th write for the write points)."""

    def __init__(self, target: Database | Engine, point: Point, nth: int = 1) -> None:
        self.engines, self.point, self.nth = engines_of(target), point, nth
        self.reached = threading.Event()
        self._go = threading.Event()
        self._writes = 0
        self._event, self._listener = self._make_listener()

    def _make_listener(self) -> tuple[str, Callable[..., None]]:
        if self.point == "before_commit":
            def on_commit(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
                if is_commit(statement):
                    self._hold()

            return "before_cursor_execute", on_commit

        def on_statement(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            if is_write(statement):
                self._writes += 1
                if self._writes == self.nth:
                    self._hold()

        name = "before_cursor_execute" if self.point == "before_write" else "after_cursor_execute"
        return name, on_statement

    def _hold(self) -> None:
        if self.reached.is_set():
            return  # only the first transaction to get here is held
        self.reached.set()
        if not self._go.wait(TIMEOUT_S):
            raise AssertionError(f"paused at {self.point} and never released")

    def wait_reached(self) -> None:
        """Block until the held transaction is at its point."""
        if not self.reached.wait(TIMEOUT_S):
            raise AssertionError(f"nothing reached {self.point}")

    def release(self) -> None:
        """Let the held transaction go on."""
        self._go.set()

    def __enter__(self) -> Pause:
        for engine in self.engines:
            event.listen(engine, self._event, self._listener)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
        for engine in self.engines:
            event.remove(engine, self._event, self._listener)


def returned_or_raised(call: Callable[[], Any]) -> Any:
    """The call's return value, or the exception it raised (as a value)."""
    try:
        return call()
    except Exception as exc:
        return exc


def in_thread(pool: ThreadPoolExecutor, call: Callable[[], Any]) -> Future[Any]:
    """Start `call` on its own thread; the future holds what it returned or raised."""
    return pool.submit(returned_or_raised, call)


def all_at_once(engine: Engine, task_id: uuid.UUID, *moves: Callable[[], Any]) -> list[Any]:
    """Hold the task's row lock (on the owner's `engine`) until every move has read the task
    and queued on the lock, then release it: they all attempt the same conditional write at
    the same moment. What each returned or raised, in order."""
    with ThreadPoolExecutor(len(moves)) as pool, engine.connect() as blocker:
        blocker.begin()
        blocker.execute(text("SELECT 1 FROM tasks WHERE id = :t FOR UPDATE"), {"t": task_id})
        futures = [in_thread(pool, move) for move in moves]
        wait_for_lock_waiters(engine, len(moves))
        blocker.commit()
        return [future.result(timeout=TIMEOUT_S) for future in futures]
