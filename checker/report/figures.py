"""Figures computed from the history itself: per-operation outcomes and latency percentiles,
and operations per second over time. The same whether one process or many ran the load."""

from __future__ import annotations

import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from checker.history import RUN_START, HistoryRecord
from checker.load.refusals import expected_refusal
from checker.seed import SEED_PROCESS


@dataclass(frozen=True)
class OpFigures:
    """One operation: how often, how it ended, how long it took (ms)."""

    op: str
    count: int
    outcomes: dict[str, int]
    """History outcomes: `ok`, `fail`, `unknown`."""
    refused: int
    """Of the `fail`s, the refusals the scenario provokes on purpose (`expected_refusal`)."""
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class Figures:
    """All operations, and a per-second timeline of completions per operation."""

    ops: tuple[OpFigures, ...]
    start: float
    seconds: int
    timeline: dict[str, list[int]] = field(default_factory=dict)
    """Completions per operation in each second since `start` (the last second may be
    partial: see `rates`)."""
    span: float = 0.0
    """Seconds from the first start to the last end."""

    @property
    def count(self) -> int:
        """Load operations in all."""
        return sum(op.count for op in self.ops)

    def counts(self, group: Callable[[str], str] = lambda op: op) -> dict[str, int]:
        """Operation (or `group(op)`) -> count."""
        out: dict[str, int] = {}
        for op in self.ops:
            out[group(op.op)] = out.get(group(op.op), 0) + op.count
        return out

    def rates(self, group: Callable[[str], str] = lambda op: op) -> dict[str, list[float]]:
        """Operations per second in each second, summed by `group(op)`. The last second is
        usually partial: its count is divided by the part of it the run lasted, and it is
        left out when that part is under half a second (a handful of operations there would
        read as a collapse or a spike), unless it is the only one."""
        last = max(self.span - (self.seconds - 1), 1e-3)
        keep = self.seconds if last >= 0.5 or self.seconds == 1 else self.seconds - 1
        out: dict[str, list[float]] = {}
        for op, counts in self.timeline.items():
            line = out.setdefault(group(op), [0.0] * keep)
            for i in range(keep):
                line[i] += counts[i] / (last if i == self.seconds - 1 else 1)
        return out


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class FigureCollector:
    """Figures built one record at a time (`add`), so they can be taken in the same pass
    that streams the history into the audit. Of each load record it keeps its latency and
    end (16 bytes), for exact percentiles."""

    def __init__(self) -> None:
        self._latencies: dict[str, array[float]] = {}
        self._ends: dict[str, array[float]] = {}
        self._outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        self._refused: Counter[str] = Counter()
        self._start, self._last = math.inf, -math.inf

    def add(self, r: HistoryRecord) -> None:
        """Count a record (the seed's and the run.start header are not the load's)."""
        if r.op == RUN_START or r.process == SEED_PROCESS:
            return
        if r.op not in self._latencies:
            self._latencies[r.op], self._ends[r.op] = array("d"), array("d")
        self._latencies[r.op].append((r.end - r.start) * 1000)
        self._ends[r.op].append(r.end)
        self._outcomes[r.op][r.outcome] += 1
        self._refused[r.op] += expected_refusal(r)
        self._start, self._last = min(self._start, r.start), max(self._last, r.end)

    def figures(self) -> Figures:
        """The figures of every record added."""
        if not self._latencies:
            return Figures((), 0.0, 0)
        span = self._last - self._start
        seconds = int(span) + 1
        timeline: dict[str, list[int]] = {}
        for op, ends in self._ends.items():
            line = timeline[op] = [0] * seconds
            for end in ends:
                line[min(int(end - self._start), seconds - 1)] += 1
        ops = []
        for op in sorted(self._latencies):
            values = sorted(self._latencies[op])
            ops.append(OpFigures(op, len(values), dict(self._outcomes[op]), self._refused[op],
                                 percentile(values, 0.5), percentile(values, 0.95),
                                 percentile(values, 0.99), values[-1]))
        return Figures(tuple(ops), self._start, seconds, timeline, span)


def figures(records: Iterable[HistoryRecord]) -> Figures:
    """Figures of the load records (not the seed's, not the run.start header)."""
    collector = FigureCollector()
    for record in records:
        collector.add(record)
    return collector.figures()
