"""Which refusals a workload provokes on purpose (no Locust import: the report reads these).

A concurrent workload loses races and is refused by design: a transition another worker won,
a task deleted meanwhile, a stale password, a cross-tenant probe denied. The history records
them `fail` (nothing happened), Locust counts them as successes (`checker.load.recorder`), and
the report shows them apart from real failures.
"""

from __future__ import annotations

from checker.history import PROBE_PREFIX, HistoryRecord
from taskhub.errors import (
    AuthError,
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    TaskhubError,
)

EXPECTED: tuple[type[TaskhubError], ...] = (NotFound, Conflict, IllegalTransition, AuthError,
                                            InvalidInput)
"""Refusals a concurrent workload produces on purpose: history `fail`, Locust success."""


def _kinds(root: type[TaskhubError]) -> list[type[TaskhubError]]:
    found, stack = [], [root]
    while stack:
        kind = stack.pop()
        found.append(kind)
        stack.extend(kind.__subclasses__())
    return found


_KINDS = _kinds(TaskhubError)
_REFUSALS = frozenset(kind.__name__ for kind in _KINDS)
_EXPECTED = frozenset(kind.__name__ for kind in _KINDS if issubclass(kind, EXPECTED))


def expected_refusal(record: HistoryRecord) -> bool:
    """Whether a record is a refusal its scenario provokes on purpose, as the recorder judged
    it: a probe the application refused in any way, or an `EXPECTED` refusal (the history's
    `error` names the exception's class first)."""
    if record.outcome != "fail" or not record.error:
        return False
    kind = record.error.partition(":")[0].partition("[")[0]
    return kind in (_REFUSALS if record.op.startswith(PROBE_PREFIX) else _EXPECTED)
