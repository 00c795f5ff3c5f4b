"""Hermitage's PostgreSQL test cases as data: each script, a judge, and the documented outcome.

The scripts follow https://github.com/ept/hermitage/blob/master/postgres.md statement for
statement (table `test` = (1, 10), (2, 20)); the lab opens every session's transaction at the
level under test, so one script serves all three levels. A judge looks at a run's `Trace` (the
rows each labelled statement returned, which sessions committed, the final table) and says
whether the anomaly showed. `documented` is what Hermitage's summary table and PostgreSQL's
manual (chapter "Transaction Isolation") say, with the mechanism PostgreSQL uses:

- read committed prevents G0, G1a, G1b, G1c, OTV (row locks, and reads of committed data
  only) and allows PMP, P4, G-single, G2-item, G2;
- repeatable read (snapshot isolation) also prevents PMP, P4 and G-single, by its snapshot or
  by a serialization failure when it would write a row changed since; it allows G2-item, G2;
- serializable (SSI) prevents all of them, aborting one transaction of a dangerous cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from checker.isolation.lab import Level, Step, Trace
from checker.isolation.outcome import Cell, Outcome

RC, RR, SER = Level.READ_COMMITTED, Level.REPEATABLE_READ, Level.SERIALIZABLE


@dataclass(frozen=True)
class Anomaly:
    """One test case: who runs what in which order, and how to tell that the anomaly showed."""

    key: str
    name: str
    steps: tuple[Step, ...]
    occurred: Callable[[Trace], bool]
    documented: Mapping[Level, Cell]


def _steps(*script: tuple[int, str] | tuple[int, str, str]) -> tuple[Step, ...]:
    return tuple(Step(*line) for line in script)


def _t2_saw_101(t: Trace) -> bool:
    """Session 2 read the value 101 that session 1 never committed."""
    return 101 in {*t.values("t2_before").values(), *t.values("t2_after").values()}


def _cells(rc: Cell, rr: Cell, ser: Cell) -> Mapping[Level, Cell]:
    return {RC: rc, RR: rr, SER: ser}


OCCURS = Cell(Outcome.OCCURS)
OCCURS_AFTER_WAIT = Cell(Outcome.OCCURS, blocked=True)
SNAPSHOT = Cell(Outcome.SNAPSHOT)
BLOCKS = Cell(Outcome.BLOCKS, blocked=True)
ABORTS = Cell(Outcome.SERIALIZATION_FAILURE)
ABORTS_AFTER_WAIT = Cell(Outcome.SERIALIZATION_FAILURE, blocked=True)


def _both_committed(trace: Trace) -> bool:
    return {1, 2} <= trace.committed


def _otv(trace: Trace) -> bool:
    """T3 must see each state whole: nothing, all of T1, or all of T2."""
    states = {(10, 20), (11, 19), (12, 18)}
    pairs = [(trace.values("t3_x1").get(1), trace.values("t3_x2").get(2)),
             (trace.values("t3_x1_again").get(1), trace.values("t3_x2_again").get(2))]
    return any(None not in pair and pair not in states for pair in pairs)


ANOMALIES: tuple[Anomaly, ...] = (
    Anomaly(
        "G0", "Write cycles (dirty writes)",
        _steps((1, "UPDATE test SET value = 11 WHERE id = 1"),
               (2, "UPDATE test SET value = 12 WHERE id = 1"),
               (1, "UPDATE test SET value = 21 WHERE id = 2"),
               (1, "COMMIT"),
               (2, "UPDATE test SET value = 22 WHERE id = 2"),
               (2, "COMMIT")),
        lambda t: t.final not in {((1, 11), (2, 21)), ((1, 12), (2, 22))},
        _cells(BLOCKS, ABORTS_AFTER_WAIT, ABORTS_AFTER_WAIT)),
    Anomaly(
        "G1a", "Aborted reads (dirty reads, cascaded aborts)",
        _steps((1, "UPDATE test SET value = 101 WHERE id = 1"),
               (2, "SELECT * FROM test ORDER BY id", "t2_before"),
               (1, "ABORT"),
               (2, "SELECT * FROM test ORDER BY id", "t2_after"),
               (2, "COMMIT")),
        _t2_saw_101,
        _cells(SNAPSHOT, SNAPSHOT, SNAPSHOT)),
    Anomaly(
        "G1b", "Intermediate reads (dirty reads)",
        _steps((1, "UPDATE test SET value = 101 WHERE id = 1"),
               (2, "SELECT * FROM test ORDER BY id", "t2_before"),
               (1, "UPDATE test SET value = 11 WHERE id = 1"),
               (1, "COMMIT"),
               (2, "SELECT * FROM test ORDER BY id", "t2_after"),
               (2, "COMMIT")),
        _t2_saw_101,
        _cells(SNAPSHOT, SNAPSHOT, SNAPSHOT)),
    Anomaly(
        "G1c", "Circular information flow (dirty reads)",
        _steps((1, "UPDATE test SET value = 11 WHERE id = 1"),
               (2, "UPDATE test SET value = 22 WHERE id = 2"),
               (1, "SELECT * FROM test WHERE id = 2", "t1_x2"),
               (2, "SELECT * FROM test WHERE id = 1", "t2_x1"),
               (1, "COMMIT"),
               (2, "COMMIT")),
        lambda t: t.values("t1_x2").get(2) == 22 or t.values("t2_x1").get(1) == 11,
        # Under SSI the two reads are a read-write cycle, so the second commit fails too.
        _cells(SNAPSHOT, SNAPSHOT, ABORTS)),
    Anomaly(
        "OTV", "Observed transaction vanishes",
        _steps((1, "UPDATE test SET value = 11 WHERE id = 1"),
               (1, "UPDATE test SET value = 19 WHERE id = 2"),
               (2, "UPDATE test SET value = 12 WHERE id = 1"),
               (1, "COMMIT"),
               (3, "SELECT * FROM test WHERE id = 1", "t3_x1"),
               (2, "UPDATE test SET value = 18 WHERE id = 2"),
               (3, "SELECT * FROM test WHERE id = 2", "t3_x2"),
               (2, "COMMIT"),
               (3, "SELECT * FROM test WHERE id = 2", "t3_x2_again"),
               (3, "SELECT * FROM test WHERE id = 1", "t3_x1_again"),
               (3, "COMMIT")),
        _otv,
        _cells(BLOCKS, ABORTS_AFTER_WAIT, ABORTS_AFTER_WAIT)),
    Anomaly(
        "PMP", "Predicate-many-preceders (read predicates)",
        _steps((1, "SELECT * FROM test WHERE value = 30", "t1_first"),
               (2, "INSERT INTO test (id, value) VALUES (3, 30)"),
               (2, "COMMIT"),
               (1, "SELECT * FROM test WHERE value % 3 = 0", "t1_second"),
               (1, "COMMIT")),
        lambda t: bool(t.values("t1_second")),
        _cells(OCCURS, SNAPSHOT, SNAPSHOT)),
    Anomaly(
        "PMP-write", "Predicate-many-preceders (write predicates)",
        _steps((1, "UPDATE test SET value = value + 10"),
               (2, "DELETE FROM test WHERE value = 20", "t2_delete"),
               (1, "COMMIT"),
               (2, "SELECT * FROM test WHERE value = 20", "t2_read"),
               (2, "COMMIT")),
        # The delete matched a row by its old value, skipped it, and a row with 20 remains.
        lambda t: t.result("t2_delete").ok and bool(t.values("t2_read")),
        _cells(OCCURS_AFTER_WAIT, ABORTS_AFTER_WAIT, ABORTS_AFTER_WAIT)),
    Anomaly(
        "P4", "Lost update",
        _steps((1, "SELECT * FROM test WHERE id = 1"),
               (2, "SELECT * FROM test WHERE id = 1"),
               (1, "UPDATE test SET value = 11 WHERE id = 1"),
               (2, "UPDATE test SET value = 11 WHERE id = 1"),
               (1, "COMMIT"),
               (2, "COMMIT")),
        _both_committed,  # both read 10 and wrote 10 + 1: one increment is lost
        _cells(OCCURS_AFTER_WAIT, ABORTS_AFTER_WAIT, ABORTS_AFTER_WAIT)),
    Anomaly(
        "G-single", "Single anti-dependency cycle (read skew)",
        _steps((1, "SELECT * FROM test WHERE id = 1", "t1_x1"),
               (2, "SELECT * FROM test WHERE id = 1"),
               (2, "SELECT * FROM test WHERE id = 2"),
               (2, "UPDATE test SET value = 12 WHERE id = 1"),
               (2, "UPDATE test SET value = 18 WHERE id = 2"),
               (2, "COMMIT"),
               (1, "SELECT * FROM test WHERE id = 2", "t1_x2"),
               (1, "COMMIT")),
        lambda t: t.values("t1_x1").get(1, 0) + t.values("t1_x2").get(2, 0) != 30,
        _cells(OCCURS, SNAPSHOT, SNAPSHOT)),
    Anomaly(
        "G-single-predicate", "Read skew through predicate dependencies",
        _steps((1, "SELECT * FROM test WHERE value % 5 = 0", "t1_first"),
               (2, "UPDATE test SET value = 12 WHERE value = 10"),
               (2, "COMMIT"),
               (1, "SELECT * FROM test WHERE value % 3 = 0", "t1_second"),
               (1, "COMMIT")),
        lambda t: bool(t.values("t1_second")),
        _cells(OCCURS, SNAPSHOT, SNAPSHOT)),
    Anomaly(
        "G-single-write", "Read skew through a write predicate",
        _steps((1, "SELECT * FROM test WHERE id = 1", "t1_x1"),
               (2, "SELECT * FROM test ORDER BY id"),
               (2, "UPDATE test SET value = 12 WHERE id = 1"),
               (2, "UPDATE test SET value = 18 WHERE id = 2"),
               (2, "COMMIT"),
               (1, "DELETE FROM test WHERE value = 20", "t1_delete"),
               (1, "COMMIT")),
        # T1 saw x1 before T2, yet its delete acted on x2 after T2 (and deleted nothing).
        lambda t: 1 in t.committed and t.result("t1_delete").rowcount == 0,
        _cells(OCCURS, ABORTS, ABORTS)),
    Anomaly(
        "G2-item", "Item anti-dependency cycles (write skew on disjoint read)",
        _steps((1, "SELECT * FROM test WHERE id IN (1, 2)"),
               (2, "SELECT * FROM test WHERE id IN (1, 2)"),
               (1, "UPDATE test SET value = 11 WHERE id = 1"),
               (2, "UPDATE test SET value = 21 WHERE id = 2"),
               (1, "COMMIT"),
               (2, "COMMIT")),
        _both_committed,
        _cells(OCCURS, OCCURS, ABORTS)),
    Anomaly(
        "G2", "Anti-dependency cycles (write skew on predicate read)",
        _steps((1, "SELECT * FROM test WHERE value % 3 = 0"),
               (2, "SELECT * FROM test WHERE value % 3 = 0"),
               (1, "INSERT INTO test (id, value) VALUES (3, 30)"),
               (2, "INSERT INTO test (id, value) VALUES (4, 42)"),
               (1, "COMMIT"),
               (2, "COMMIT")),
        _both_committed,
        _cells(OCCURS, OCCURS, ABORTS)),
    Anomaly(
        "G2-two-edges", "Anti-dependency cycle with a read-only transaction (Fekete et al.)",
        _steps((1, "SELECT * FROM test ORDER BY id"),
               (2, "UPDATE test SET value = value + 5 WHERE id = 2"),
               (2, "COMMIT"),
               (3, "SELECT * FROM test ORDER BY id"),
               (3, "COMMIT"),
               (1, "UPDATE test SET value = 0 WHERE id = 1"),
               (1, "COMMIT")),
        lambda t: {1, 2, 3} <= t.committed,
        _cells(OCCURS, OCCURS, ABORTS)),
)
