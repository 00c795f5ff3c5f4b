"""The faults section of `summary.json`: faults injected per kind, each fault's record and
recovery time, and the clients' errors by kind (history records `fail`/`unknown` by their
error class, e.g. `unknown StorageError[57P01]`)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from checker.faults.injector import FaultRecord
from checker.faults.spec import Fault
from checker.history import HistoryRecord

_CLASS = re.compile(r"^[\w.]+(?:\[\w+\])?")


def error_kind(record: HistoryRecord) -> str:
    """`OUTCOME CLASS` of a record that did not succeed."""
    match = _CLASS.match(record.error or "")
    return f"{record.outcome} {match.group(0) if match else 'refused'}"


def count_client_error(errors: Counter[str], record: HistoryRecord) -> None:
    """Count a record in `errors` (by `error_kind`) if it is a client's that did not
    succeed."""
    if record.outcome != "ok" and record.process != "seed":
        errors[error_kind(record)] += 1


def faults_section(faults: tuple[Fault, ...], records: list[FaultRecord],
                   errors: Counter[str], started: float) -> dict[str, Any]:
    """What was injected, how fast the server answered again, what the clients saw
    (`errors`: `count_client_error` over the history; each event's `at_s`: seconds since
    the load started)."""
    recoveries = [r.recovery_s for r in records if r.recovery_s is not None]
    return {
        "spec": ";".join(f.describe() for f in faults),
        "injected": len(records),
        "by_kind": dict(Counter(r.kind for r in records)),
        "failed_injections": sum(r.error is not None for r in records),
        "recovery_s": {"max": round(max(recoveries), 3) if recoveries else None,
                       "mean": round(sum(recoveries) / len(recoveries), 3)
                       if recoveries else None},
        "client_errors": dict(errors.most_common()),
        "events": [{**r.to_dict(), "at_s": round(r.start - started, 3)} for r in records],
    }


def fault_problems(section: dict[str, Any]) -> list[str]:
    """A sentence when a fault could not be injected or the server did not come back."""
    failed = [e for e in section["events"] if e["error"]]
    if not failed:
        return []
    return [f"{len(failed)} fault(s) failed: {failed[0]['kind']}: {failed[0]['error']}"]
