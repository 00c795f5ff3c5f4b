"""What a load run reports: Locust's figures per operation and for the run (no Locust import
here: the report and the tests read these without the monkey-patching Locust brings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from locust.stats import StatsEntry


@dataclass(frozen=True)
class OpStats:
    """Locust's figures for one operation (or the aggregate)."""

    name: str
    kind: str
    requests: int
    failures: int
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    rps: float

    @classmethod
    def of(cls, entry: StatsEntry) -> OpStats:
        """From a Locust stats entry."""
        def pct(p: float) -> float:
            return float(entry.get_response_time_percentile(p) or 0) if entry.num_requests \
                else 0.0

        return cls(str(entry.name), str(entry.method or ""), int(entry.num_requests),
                   int(entry.num_failures), float(entry.avg_response_time), pct(0.5),
                   pct(0.95), pct(0.99), float(entry.max_response_time or 0),
                   float(entry.total_rps))


@dataclass(frozen=True)
class LoadResult:
    """What the load did, as Locust counted it."""

    started: float
    ended: float
    tenants: int
    seeded_tasks: int
    peak_users: int
    workers: int
    unsafe: tuple[str, ...]
    """The deliberately broken paths switched on (`transitions`, `edits`): tests only."""
    ops: tuple[OpStats, ...]
    total: OpStats
    locust_html: str
    refused_peers: int = 0
    """Peers on the master port that never proved the run key (given nothing)."""
    lost_worker: str | None = None
    """Why the run stopped early: a worker process exited or stopped answering mid-run."""
    started_with: tuple[int, float] | None = None
    """In the web UI: the users and spawn rate the form last started (None: headless, or
    nobody pressed start)."""
