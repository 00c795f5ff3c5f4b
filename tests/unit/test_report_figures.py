"""The report's figures and rendering: expected refusals told apart from failures, the last
partial second scaled (not drawn as a collapse), every operation group in the chart's legend,
settings rendered for people."""

from __future__ import annotations

import re

import pytest

from checker.history import HistoryRecord
from checker.load.refusals import expected_refusal
from checker.report.charts import throughput_chart
from checker.report.figures import figures
from checker.report.html import family, human

TENANT = "00000000-0000-4000-8000-000000000001"
TASK = "00000000-0000-4000-8000-000000000002"


def record(op: str, end: float, outcome: str = "ok", error: str | None = None,
           args: dict[str, object] | None = None) -> HistoryRecord:
    return HistoryRecord("p1", TENANT, op, args or {"task_id": TASK}, end - 0.01, end,
                         outcome, {}, error)  # type: ignore[arg-type]


def test_refusals_the_scenario_provokes_are_told_apart() -> None:
    lost = record("task.transition", 1.0, "fail", "TransitionConflict: another worker won",
                  {"task_id": TASK, "from_status": "pending", "to_status": "processing"})
    denied = record("probe.read", 1.0, "fail", "StorageError[42501]: permission denied")
    broken = record("task.read", 1.0, "fail", "StorageError[53300]: too many clients")
    unknown = record("task.read", 1.0, "unknown", "StorageError: connection lost")
    assert expected_refusal(lost) and expected_refusal(denied)
    assert not expected_refusal(broken) and not expected_refusal(unknown)
    assert not expected_refusal(record("task.read", 1.0))
    figs = figures([lost, denied, broken, unknown])
    by_op = {op.op: op for op in figs.ops}
    assert by_op["task.transition"].refused == 1 and by_op["probe.read"].refused == 1
    assert by_op["task.read"].refused == 0 and by_op["task.read"].outcomes == {
        "fail": 1, "unknown": 1}


def test_the_last_partial_second_is_scaled_or_left_out() -> None:
    # 10 operations a second for 2 s, then 3 in the first 0.6 s of the third second.
    steady = [record("task.read", 0.05 + i * 0.1) for i in range(20)]
    tail = [record("task.read", 2.0 + i * 0.2) for i in range(4)]  # ends at 2.6 s
    rates = figures(steady + tail).rates()["task.read"]
    # Seconds count from the first start (0.04 s): the third holds 3 operations in 0.56 s.
    assert len(rates) == 3 and rates[2] == pytest.approx(3 / 0.56)
    assert rates[0] == 10
    short = figures([*steady, record("task.read", 2.1)]).rates()["task.read"]
    assert len(short) == 2  # 0.06 s of a third second: not drawn


def test_every_group_is_in_the_legend_even_with_many_operations() -> None:
    ops = [f"task.op{i}" for i in range(12)] + [f"probe.p{i}" for i in range(10)] + ["login"]
    recs = [record(op, 0.5 + n * 0.1) for n, op in enumerate(ops)]
    figs = figures(recs)
    counts = {"task": 12, "probe": 10, "login": 1}
    svg = throughput_chart(figs.rates(family), counts)
    legend = re.findall(r">([a-z]+) \(([\d,]+)\)</text>", svg)
    assert dict(legend) == {"total": "23", "task": "12", "probe": "10", "login": "1"}


def test_settings_are_rendered_for_people() -> None:
    assert human(None) == "—" and human([]) == "none" and human(True) == "yes"
    assert human({"time_cost": 2, "memory_cost": 19456}) == "time cost 2; memory cost 19456"
    assert human(["transitions", "edits"]) == "transitions, edits"
    assert human(0.1) == "0.1" and human(1500000.0) == "1,500,000"
