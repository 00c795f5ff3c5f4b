"""The injector: a background thread of the master (a greenlet under gevent) that injects the
run's faults while the load runs, one at a time, and records each one.

A fault's record: kind, when it started and ended, and when the server answered again (a new
connection and `SELECT 1`: its recovery time is counted from the fault's start). A periodic
fault first fires one period after the load starts; a standing fault (`statement-timeout`) is
put in force before the users connect and undone when the load stops, so the audit runs
without it. What each fault does is its kind's (`checker.faults.kinds`).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from checker.faults.kind import Fault, FaultTarget
from checker.provision import Provider

RECOVERY_LIMIT_S = 60.0
PROBE_TIMEOUT_S = 2


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
    database) on `provider`'s server (prepared for them: `checker.faults.spec.prepare_provider`)."""

    def __init__(self, faults: tuple[Fault, ...], url: str, provider: Provider) -> None:
        self.faults = faults
        self.target = FaultTarget(url, provider)
        self.records: list[FaultRecord] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._standing = [f for f in faults if not f.periodic]
        self._standing_since = 0.0

    def start(self) -> None:
        """Put the standing faults in force and start the periodic ones."""
        self._standing_since = time.time()
        for fault in self._standing:
            fault.kind.start(fault, self.target)
        if any(f.periodic for f in self.faults):
            self._thread = threading.Thread(target=self._loop, name="fault-injector",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish the fault in progress (a paused server is resumed, a crashed one restarted),
        stop injecting, undo the standing faults."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for fault in self._standing:
            error = None
            try:
                fault.kind.stop(fault, self.target)
            except psycopg.Error as exc:  # the server is gone: the run's verdict says so
                error = f"reset failed: {type(exc).__name__}: {str(exc).strip()[:200]}"
            # In force for the whole load: nothing to recover from (no recovery time).
            self.records.append(FaultRecord(fault.name, self._standing_since, time.time(),
                                            None, fault.describe(), error))

    def _loop(self) -> None:
        began = time.monotonic()
        due = {f: began + f.every for f in self.faults if f.periodic}
        while not self._stop.is_set():
            fault = min(due, key=due.__getitem__)
            if self._stop.wait(max(0.0, due[fault] - time.monotonic())):
                break
            record = self._inject(fault)
            self.records.append(record)
            _announce(record)
            due[fault] = max(due[fault] + fault.every, time.monotonic())

    def _inject(self, fault: Fault) -> FaultRecord:
        start = time.time()
        detail, error = "", None
        try:
            detail = fault.kind.inject(fault, self.target)
        except Exception as exc:  # recorded; the run's verdict reports it
            error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
        end = time.time()
        recovered = self._probe()
        if recovered is None and error is None:
            error = f"no answer within {RECOVERY_LIMIT_S:g} s"
        return FaultRecord(fault.name, start, end, recovered, detail, error)

    def _probe(self) -> float | None:
        """When a new connection and `SELECT 1` succeeded (None: not within the limit)."""
        deadline = time.monotonic() + RECOVERY_LIMIT_S
        while time.monotonic() < deadline:
            try:
                with self.target.connect(PROBE_TIMEOUT_S) as conn:
                    conn.execute("SELECT 1")
                return time.time()
            except psycopg.Error:
                time.sleep(0.02)
        return None


def _announce(record: FaultRecord) -> None:
    """One line per injected fault, as it happens (the progress line goes on below it)."""
    outcome = (f"failed: {record.error}" if record.error
               else f"recovered in {record.recovery_s:.2f} s" if record.recovery_s is not None
               else "done")
    print(f"fault {record.kind}: {record.detail or 'injected'}; {outcome}", file=sys.stderr,
          flush=True)
