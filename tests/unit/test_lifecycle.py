"""The lifecycle state machine, exhaustively over every (from, to) pair."""

from __future__ import annotations

import itertools

import pytest

from taskhub import models
from taskhub.errors import IllegalTransition
from taskhub.lifecycle import LEGAL, Status, check_transition, is_legal

EXPECTED_LEGAL = {
    (None, "pending"),
    ("pending", "processing"),
    ("processing", "completed"),
    ("processing", "failed"),
}
PAIRS = list(itertools.product([None, *Status], Status))


def test_statuses_match_the_schema() -> None:
    assert tuple(Status) == models.STATUSES


def test_legal_set_is_exactly_the_documented_one() -> None:
    assert {(f, str(t)) for f, t in LEGAL} == EXPECTED_LEGAL


@pytest.mark.parametrize(("from_status", "to_status"), PAIRS)
def test_every_pair(from_status: Status | None, to_status: Status) -> None:
    legal = (from_status, str(to_status)) in EXPECTED_LEGAL
    assert is_legal(from_status, to_status) is legal
    result = {"ok": True} if to_status is Status.COMPLETED else None
    error = "boom" if to_status is Status.FAILED else None
    if legal:
        check_transition(from_status, to_status, result=result, error=error)
    else:
        with pytest.raises(IllegalTransition) as caught:
            check_transition(from_status, to_status, result=result, error=error)
        assert caught.value.from_status == from_status
        assert caught.value.to_status == to_status


def test_completed_requires_a_result() -> None:
    with pytest.raises(IllegalTransition, match="requires a result"):
        check_transition(Status.PROCESSING, Status.COMPLETED, result=None)


@pytest.mark.parametrize("result", [0, False, "", [], {}, {"n": 1}])
def test_any_json_value_but_none_is_a_result(result: object) -> None:
    check_transition(Status.PROCESSING, Status.COMPLETED, result=result)


@pytest.mark.parametrize("error", [None, "", "   "])
def test_failed_requires_an_error(error: str | None) -> None:
    with pytest.raises(IllegalTransition, match="requires an error"):
        check_transition(Status.PROCESSING, Status.FAILED, error=error)
