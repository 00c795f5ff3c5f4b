"""Helpers for the auditor's tests: a valid population, owner access, a matching history,
and assertions about which checks failed."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import URL

from checker.audit import Argon2Minimum, AuditOptions, AuditResult, run_audit
from checker.audit.synthetic import (
    Population,
    matching_history,
    populate,
    transition_record,
)
from checker.history import HistoryRecord
from taskhub.db import libpq_url
from taskhub.settings import TEST_ARGON2

SMALL = Population(users=6, tasks=60)
"""Task i ends in STATUS_CYCLE[i % 10]: 10 pending, 1 processing, 3 completed, 8 failed."""
TEST_MINIMUM = Argon2Minimum.of(TEST_ARGON2)
"""The weakest hashes the tests make (what the plugin's per-test audit accepts)."""
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


def audit(url: URL, history: Iterable[HistoryRecord] | str | Path | None = None,
          only: str | None = None,
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
    """`checker.audit.synthetic.matching_history` of SMALL (by default) two hours ago."""
    return matching_history(population, start=start if start is not None else
                            time.time() - 7200, complete=complete)


def transition(i: int, from_status: str, to_status: str, population: Population = SMALL, *,
               outcome: str = "ok", at: float | None = None,
               process: str = "worker-1") -> HistoryRecord:
    """A worker's transition record of task i."""
    return transition_record(i, from_status, to_status, outcome=outcome,
                             at=at if at is not None else time.time(), process=process)
