"""Helpers for the auditor's tests: a valid population, owner access, a matching history,
and assertions about which checks failed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import URL

from checker.audit import AuditOptions, AuditResult, run_audit
from checker.audit.synthetic import Population, final_status, populate, task_id, task_owner
from checker.history import HistoryRecord, digest
from checker.pytest_plugin import TEST_MINIMUM
from taskhub.db import libpq_url

SMALL = Population(users=6, tasks=60)
"""Task i ends in STATUS_CYCLE[i % 10]: 10 pending, 1 processing, 3 completed, 8 failed."""
TEST_OPTIONS = AuditOptions(min_argon2=TEST_MINIMUM)


@contextmanager
def owner(url: URL) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A committed transaction as the database owner (behind the application's back)."""
    with psycopg.connect(libpq_url(url)) as conn:
        yield conn


def seed(url: URL, population: Population = SMALL) -> None:
    """Fill a fresh migrated database with a valid population."""
    with owner(url) as conn:
        populate(conn, population)


def audit(url: URL, history: list[HistoryRecord] | None = None, only: str | None = None,
          **options: Any) -> AuditResult:
    """Run the audit with the test Argon2id minimum (plus any option overrides)."""
    opts = AuditOptions(**{"min_argon2": TEST_MINIMUM, **options})
    return run_audit(url, history, only, options=opts)


def failing(result: AuditResult) -> set[str]:
    """Names of the checks that did not pass."""
    return {check.name for check in result.failed}


def assert_fails_only(result: AuditResult, *names: str) -> None:
    """Exactly these checks failed (status fail, not error); every other one passed."""
    assert failing(result) == set(names), result.summary()
    for name in names:
        assert result.get(name).status == "fail", result.summary()


def sampled(result: AuditResult, name: str, key: str) -> list[Any]:
    """The values of `key` in a check's samples."""
    return [row.get(key) for row in result.get(name).samples]


def full_history(population: Population = SMALL, *, start: float | None = None,
                 complete: bool = True) -> list[HistoryRecord]:
    """A history that explains a freshly seeded population exactly: a run.start, one ok
    create per task by its owner, and the ok transitions (claims by a worker for every third
    task) that led each task to its status."""
    t = start if start is not None else time.time() - 7200
    records = [HistoryRecord.run_start("runner", t, complete=complete, scenario="synthetic")]
    for i in range(1, population.tasks + 1):
        tid, tenant = str(task_id(i)), str(task_owner(i, population))
        t += 0.001
        records.append(HistoryRecord(f"client-{tenant[:4]}", tenant, "task.create",
                                     {"title": f"task {i}", "wrote": {
                                         "title": digest(f"task {i}"),
                                         "payload": digest({"n": i})}},
                                     t, t + 0.0005, "ok",
                                     {"task_id": tid, "owner_ids": [tenant]}))
        status = final_status(i)
        if status == "pending":
            continue
        if i % 3 == 0:
            records.append(HistoryRecord("worker-1", None, "task.claim", {"n": 1}, t, t, "ok",
                                         {"task_ids": [tid]}))
        else:
            records.append(transition(i, "pending", "processing", population, at=t))
        if status in ("completed", "failed"):
            records.append(transition(i, "processing", status, population, at=t))
    return records


def transition(i: int, from_status: str, to_status: str, population: Population = SMALL, *,
               outcome: str = "ok", at: float | None = None,
               process: str = "worker-1") -> HistoryRecord:
    """A worker's transition record of task i."""
    t = at if at is not None else time.time()
    return HistoryRecord(process, None, "task.transition",
                         {"task_id": str(task_id(i)), "from_status": from_status,
                          "to_status": to_status}, t, t, outcome,  # type: ignore[arg-type]
                         {"task_ids": [str(task_id(i))]} if outcome == "ok" else {})
