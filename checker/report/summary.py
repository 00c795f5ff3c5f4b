"""`summary.json`: the run's parameters, Locust's and the history's figures, thresholds, the
cross-check of the two, the audit, and the verdict (which the CLI turns into an exit code)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from checker.audit import AuditResult
from checker.load.result import LoadResult
from checker.report.figures import Figures
from checker.runconfig import RunConfig

FILES = {"report": "report.html", "locust_report": "locust.html", "history": "history.jsonl",
         "summary": "summary.json"}


@dataclass(frozen=True)
class Thresholds:
    """Limits on Locust's figures: failure ratio and the p95 of all operations together.

    The CLI's default failure budget is 0 (any operation Locust counts as failed fails the
    run, as Locust's own `--exit-code-on-error` does), except with `--faults`, whose injected
    failures are the point (the faults section judges those runs).
    """

    max_fail_ratio: float | None = None
    p95_ms: float | None = None

    def judge(self, load: LoadResult) -> dict[str, list[str]]:
        """Each limit that is set (`max_fail_ratio`, `p95_ms`), with the sentence saying how
        it broke (empty: it held)."""
        verdicts: dict[str, list[str]] = {}
        total = load.total
        ratio = total.failures / total.requests if total.requests else 0.0
        if self.max_fail_ratio is not None:
            verdicts["max_fail_ratio"] = [
                f"failure ratio {ratio:.4f} above --max-fail-ratio {self.max_fail_ratio}"
            ] if ratio > self.max_fail_ratio else []
        if self.p95_ms is not None:
            verdicts["p95_ms"] = [
                f"p95 {total.p95_ms:.0f} ms above --p95-ms {self.p95_ms:g}"
            ] if total.p95_ms > self.p95_ms else []
        return verdicts

    def broken(self, load: LoadResult) -> list[str]:
        """A sentence per broken limit."""
        return [problem for problems in self.judge(load).values() for problem in problems]


def locust_counts(load: LoadResult) -> dict[str, int]:
    """Locust's request count per operation name (all request types together)."""
    counts: dict[str, int] = defaultdict(int)
    for op in load.ops:
        counts[op.name] += op.requests
    return dict(counts)


def consistency(load: LoadResult, figures: Figures) -> dict[str, Any]:
    """Does the history hold exactly the operations Locust counted?"""
    ours, theirs = figures.counts(), locust_counts(load)
    mismatched = {op: {"history": ours.get(op, 0), "locust": theirs.get(op, 0)}
                  for op in sorted(set(ours) | set(theirs)) if ours.get(op) != theirs.get(op)}
    return {"history_ops": figures.count, "locust_requests": load.total.requests,
            "consistent": not mismatched, "mismatched_ops": mismatched}


def not_run(config: RunConfig, load: LoadResult, figures: Figures) -> list[str]:
    """A sentence per way the load did not really run: no operation at all, or fewer users
    than asked for at the peak (users that failed to start, a worker that never spawned
    them). In the web UI the user picks the count, so only operations are required there."""
    problems = []
    if load.total.requests == 0 or figures.count == 0:
        problems.append("the load ran no operation: nothing was tested")
    if not config.ui and load.peak_users < config.users:
        problems.append(f"only {load.peak_users} of the {config.users} users asked for ran "
                        "at the peak")
    return problems


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


@dataclass
class RunSummary:
    """A run's summary: what `summary.json` holds, the report shows and the CLI judges.

    The verdict is `ok`: no problem at all. Every problem is found in `build`, nowhere else.
    """

    scenario: str
    problems: list[str]
    parameters: dict[str, Any]
    server_version: str
    started_at: str
    ended_at: str
    duration_s: float
    totals: dict[str, Any]
    operations: list[dict[str, Any]]
    thresholds: dict[str, Any]
    consistency: dict[str, Any]
    audit: dict[str, Any]
    files: dict[str, str] = field(default_factory=lambda: dict(FILES))
    faults: dict[str, Any] | None = None
    """The faults section (`checker.faults.summary`), for a run with `--faults`."""
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent in each phase of the run (provision ... report), the report's writing
    of its other files included."""
    conditions: dict[str, list[str]] = field(default_factory=dict)
    """Every condition the verdict weighed (`CONDITIONS`), with the problems that broke it
    (empty: it held); `problems` is all of them, in this order."""

    @property
    def ok(self) -> bool:
        """Whether the run passed: nothing went wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """`summary.json`'s shape (`faults` only when faults were injected)."""
        data = {"scenario": self.scenario, "ok": self.ok, "problems": self.problems,
                "parameters": self.parameters, "server_version": self.server_version,
                "started_at": self.started_at, "ended_at": self.ended_at,
                "duration_s": self.duration_s, "totals": self.totals,
                "operations": self.operations, "thresholds": self.thresholds,
                "consistency": self.consistency, "audit": self.audit, "files": self.files,
                "phases": self.phases, "conditions": self.conditions}
        if self.faults is not None:
            data["faults"] = self.faults
        return data


def build(config: RunConfig, parameters: dict[str, Any], load: LoadResult, figures: Figures,
          audit: AuditResult | None, thresholds: Thresholds, server_version: str, *,
          faults: dict[str, Any] | None = None,
          fault_problems: list[str] | None = None) -> RunSummary:
    """The whole summary, and the verdict: every problem of the run, in one list. `audit`
    None: it was skipped (a second interrupt), which fails the run."""
    limits = thresholds.judge(load)
    broken = [problem for problems in limits.values() for problem in problems]
    check = consistency(load, figures)
    conditions = {
        "workers_stayed": [f"{load.lost_worker}: its operations since its last report are "
                           "not in the history, so the ledger checks were not run"]
        if load.lost_worker else [],
        "load_ran": not_run(config, load, figures),
        **limits,
        "history_matches_locust": [] if check["consistent"] else [
            "the history does not hold exactly the operations Locust counted"],
        "audit_ran": [] if audit is not None else [
            "the audit was skipped (a second interrupt): nothing was proven"],
        "audit_clean": ["audit: " + ", ".join(c.name for c in audit.failed)]
        if audit is not None and not audit.ok else [],
    }
    if fault_problems is not None:
        conditions["faults_judged"] = fault_problems
    problems = [problem for found in conditions.values() for problem in found]
    elapsed = max(load.ended - load.started, 1e-9)
    total = load.total
    by_name = {op.op: op for op in figures.ops}
    theirs = locust_counts(load)
    failures: dict[str, int] = defaultdict(int)
    for op in load.ops:
        failures[op.name] += op.failures
    operations = [{
        "name": name, "requests": theirs.get(name, 0), "failures": failures.get(name, 0),
        "ops_per_s": round(theirs.get(name, 0) / elapsed, 2),
        "p50_ms": round(f.p50_ms, 3), "p95_ms": round(f.p95_ms, 3),
        "p99_ms": round(f.p99_ms, 3), "max_ms": round(f.max_ms, 3), "outcomes": f.outcomes,
        "expected_refusals": f.refused,
    } for name, f in sorted(by_name.items())]
    return RunSummary(
        scenario=config.scenario,
        problems=problems,
        parameters=parameters,
        server_version=server_version,
        started_at=_iso(load.started),
        ended_at=_iso(load.ended),
        duration_s=round(elapsed, 3),
        totals={"requests": total.requests, "failures": total.failures,
                "fail_ratio": round(total.failures / total.requests, 6)
                if total.requests else 0.0,
                "ops_per_s": round(total.requests / elapsed, 2),
                "p50_ms": total.p50_ms, "p95_ms": total.p95_ms, "p99_ms": total.p99_ms,
                "peak_users": load.peak_users},
        operations=operations,
        thresholds={"max_fail_ratio": thresholds.max_fail_ratio,
                    "p95_ms": thresholds.p95_ms, "broken": broken},
        consistency=check,
        audit={"ok": False, "skipped": True, "duration_s": 0.0, "checks": []}
        if audit is None else {"ok": audit.ok, "skipped": False,
                               "duration_s": round(audit.duration, 3),
                               "checks": [c.to_dict() for c in audit.checks]},
        faults=faults,
        conditions=conditions,
    )
