"""What a run of an anomaly script shows: the anomaly occurred, or what prevented it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from checker.isolation.lab import Trace

SERIALIZATION_FAILURE = "40001"
DEADLOCK = "40P01"


class Outcome(StrEnum):
    """How an anomaly fared at one isolation level."""

    OCCURS = "occurs"
    SNAPSHOT = "prevented (snapshot)"
    """Nothing waited and nothing failed: every read saw committed data of one snapshot."""
    BLOCKS = "prevented (blocks)"
    """A statement waited for another transaction's row lock, then went on safely."""
    SERIALIZATION_FAILURE = "prevented (serialization failure 40001)"
    DEADLOCK = "prevented (deadlock/abort)"


@dataclass(frozen=True)
class Cell:
    """One cell of the matrix: the outcome, and whether some statement waited on a lock first."""

    outcome: Outcome
    blocked: bool = False

    def label(self) -> str:
        """The outcome, noting a wait when the outcome itself does not say so."""
        if self.blocked and self.outcome is not Outcome.BLOCKS:
            return f"{self.outcome.value}, after blocking"
        return self.outcome.value


def classify(trace: Trace, occurred: bool) -> Cell:
    """The cell for a run whose judge said `occurred`.

    An anomaly that shows wins over everything else; otherwise the strongest prevention seen:
    a serialization failure, then a deadlock, then a lock wait, then none (the snapshot).
    Any other error means the script itself is wrong: ValueError.
    """
    unexpected = trace.sqlstates - {SERIALIZATION_FAILURE, DEADLOCK}
    if unexpected:
        errors = [r.error for r in trace.results if r.sqlstate in unexpected]
        raise ValueError(f"the script failed at {trace.level}: {errors}")
    if occurred:
        outcome = Outcome.OCCURS
    elif SERIALIZATION_FAILURE in trace.sqlstates:
        outcome = Outcome.SERIALIZATION_FAILURE
    elif DEADLOCK in trace.sqlstates:
        outcome = Outcome.DEADLOCK
    elif trace.blocked:
        outcome = Outcome.BLOCKS
    else:
        outcome = Outcome.SNAPSHOT
    return Cell(outcome, trace.blocked)
