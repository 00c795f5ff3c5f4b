"""The failure budget: 0 (the CLI's default without --faults) fails a run on one failure.

Locust's figures are stood in for by plain values (importing the runner would import Locust,
which monkey-patches the test process)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from checker.report.summary import Thresholds


def load(requests: int, failures: int) -> Any:
    return SimpleNamespace(total=SimpleNamespace(requests=requests, failures=failures,
                                                 p95_ms=1.0))


def test_a_zero_budget_fails_on_one_failure() -> None:
    assert Thresholds(0.0).broken(load(1000, 1)) == [
        "failure ratio 0.0010 above --max-fail-ratio 0.0"]
    assert Thresholds(0.0).broken(load(1000, 0)) == []


def test_no_budget_accepts_failures() -> None:
    assert Thresholds(None).broken(load(10, 10)) == []
