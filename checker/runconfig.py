"""`RunConfig`: what `checker run` / `checker explore` was asked for (no Locust import here:
the CLI builds it before gevent matters)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from checker.faults.kind import Fault
from checker.profiles import DEFAULT_PROFILE


def new_seed() -> int:
    """A seed for a run that was not given one (reported in the summary, to repeat it)."""
    return secrets.randbelow(2**31)


@dataclass(frozen=True)
class RunConfig:
    """Everything `checker run` / `checker explore` was asked for."""

    scenario: str
    users: int = 20
    spawn_rate: float = 10.0
    duration: float | None = 30.0
    workers: int = 0
    remote_workers: int = 0
    master_bind: str = "127.0.0.1"
    master_port: int = 0
    seed: int = 1
    argon2: str = DEFAULT_PROFILE
    tenants: int | None = None
    tasks_per_tenant: int | None = None
    stop_timeout: float = 10.0
    ui: bool = False
    web_port: int = 8089
    faults: tuple[Fault, ...] = ()
    csv_prefix: str | None = None
    """Where Locust's CSV statistics go (`--csv`), None for none."""
    csv_full_history: bool = False

    @property
    def expected_workers(self) -> int:
        """Local worker processes plus workers expected from other machines."""
        return self.workers + self.remote_workers
