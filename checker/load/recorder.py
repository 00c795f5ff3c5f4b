"""`Recorder`: every call into taskhub timed, reported to Locust and written to the history.

One call is one history record and one Locust request event named by its op, whatever the
outcome: `ok` (acknowledged), `fail` (the application refused, or the write certainly did not
happen) or `unknown` (a COMMIT failed, or the connection was lost: the write may have landed).
Serialization failures and deadlocks are retried, as an application should, inside the one
operation. For Locust a refusal that a race makes normal (a lost transition race, a deleted
task, a stale password) is a success; an unknown outcome, an unexpected error and a probe that
saw another tenant's data are failures (a call cut short by Locust stopping its user is
recorded unknown, but is not the system's failure).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import gevent
from locust.env import Environment

from checker.history import HistoryRecord, Outcome
from checker.load.harness import Harness
from checker.load.refusals import EXPECTED
from taskhub.errors import (
    StorageError,
    TaskhubError,
)

T = TypeVar("T")
RETRYABLE = frozenset({"40001", "40P01"})
MAX_RETRIES = 5
LOST_BACKOFF_S = 0.05
"""Pause after a lost connection (50-100 ms), so a restarting server is not hammered."""


class ProbeLeak(Exception):
    """A cross-tenant probe saw or changed another tenant's data."""


@dataclass(frozen=True)
class Result(Generic[T]):
    """How a call ended: its outcome, its value when ok, the exception otherwise."""

    outcome: Outcome
    value: T | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when acknowledged."""
        return self.outcome == "ok"


def connection_lost(exc: StorageError) -> bool:
    """Whether the server went away (no SQLSTATE, class 08, or an administrator's shutdown)."""
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


class Recorder:
    """Runs calls for one simulated user (`process`)."""

    def __init__(self, environment: Environment, harness: Harness, process: str) -> None:
        self.environment = environment
        self.harness = harness
        self.process = process

    def call(self, op: str, args: dict[str, Any], action: Callable[[], T], *,
             tenant: str | None = None, observe: Callable[[T], dict[str, Any]] | None = None,
             kind: str = "tenant") -> Result[T]:
        """Run `action` (retrying serialization failures), record it, report it."""
        start, began = time.time(), time.perf_counter()
        result: Result[T]
        for attempt in range(MAX_RETRIES + 1):
            try:
                value = action()
            except StorageError as exc:
                if exc.sqlstate in RETRYABLE and attempt < MAX_RETRIES:
                    gevent.sleep(0.002 * 2 ** attempt * self.harness.rng.random())
                    continue
                unknown = exc.during_commit and exc.sqlstate not in RETRYABLE
                result = Result("unknown" if unknown or connection_lost(exc) else "fail",
                                error=exc)
            except TaskhubError as exc:
                result = Result("fail", error=exc)
            except Exception as exc:  # a bug or a driver error that escaped: cannot tell
                result = Result("unknown", error=exc)
            except BaseException as exc:  # stopped mid-call (GreenletExit, Ctrl-C): cannot tell
                # The load generator's own doing (Locust kills a user it finds between two
                # tasks, which with no wait time can race the next call): unknown in the
                # history, not a failure of the system under test.
                self._record(op, args, tenant, kind, start, began, Result("unknown", error=exc),
                             {}, interrupted=True)
                raise
            else:
                result = Result("ok", value)
            break
        observed = observe(result.value) if result.ok and observe and result.value is not None \
            else {}
        self._record(op, args, tenant, kind, start, began, result, observed)
        if isinstance(result.error, StorageError) and connection_lost(result.error):
            # The server went away (a fault, a restart): back off before the next call
            # instead of spinning through failed connects; the pool has discarded the
            # broken connection (SQLAlchemy invalidates it on a disconnect error).
            gevent.sleep(LOST_BACKOFF_S * (1 + self.harness.rng.random()))
        return result

    def probe(self, action: str, args: dict[str, Any], attempt: Callable[[], dict[str, Any]],
              *, tenant: str) -> dict[str, Any]:
        """A cross-tenant attempt: `attempt` returns what leaked (nothing: {}) or raises the
        application's refusal. Recorded as `probe.<action>`: outcome `fail` when denied."""
        start, began = time.time(), time.perf_counter()
        leaked: dict[str, Any] = {}
        try:
            leaked = {k: v for k, v in attempt().items() if v}
        except TaskhubError as exc:
            result: Result[Any] = Result("fail", error=exc)
        except Exception as exc:
            result = Result("unknown", error=exc)
        else:
            result = Result("ok", error=ProbeLeak(f"{action}: {leaked}")) if leaked \
                else Result("fail")
        self._record(f"probe.{action}", {**args, "action": action}, tenant, "probe", start,
                     began, result, leaked, refusal_expected=True)
        return leaked

    def _record(self, op: str, args: dict[str, Any], tenant: str | None, kind: str,
                start: float, began: float, result: Result[Any],
                observed: dict[str, Any], *, refusal_expected: bool = False,
                interrupted: bool = False) -> None:
        elapsed = time.perf_counter() - began
        state = getattr(result.error, "sqlstate", None)
        error = None if result.error is None else \
            f"{type(result.error).__name__}{f'[{state}]' if state else ''}: " \
            f"{str(result.error).strip()[:300]}"
        self.harness.sink.append(HistoryRecord(
            self.process, tenant, op, args, start, max(start + elapsed, start), result.outcome,
            observed, error))
        failure: BaseException | None = None
        expected = isinstance(result.error, EXPECTED) or (
            refusal_expected and isinstance(result.error, TaskhubError))
        if interrupted:
            pass
        elif result.outcome == "unknown" or isinstance(result.error, ProbeLeak) or (
                result.error is not None and not expected):
            failure = result.error or RuntimeError(f"{op}: outcome unknown")
        self.environment.events.request.fire(
            request_type=kind, name=op, response_time=elapsed * 1000, response_length=0,
            exception=failure, context={"outcome": result.outcome})
