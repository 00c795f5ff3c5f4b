"""Tenants trying to read, list, update, transition and delete other tenants' tasks: all denied.

Intruders probe other tenants' tasks through every service (by id and by status filters) and
through raw SQL under the application role (select, update, delete, insert for another owner,
events); each attempt is a `probe.*` record that must come back empty-handed. Ordinary tenants
keep working on their own tasks meanwhile, so isolation is tested under load, not on idle data.
"""

from __future__ import annotations

from locust import task

from checker.load.probes import probe_once
from checker.load.scenario import Scenario
from checker.load.users import TenantUser
from checker.seed import SeedSpec

SEED = SeedSpec(tenants=12, tasks_per_tenant=10)


class Intruder(TenantUser):
    """Signs in as itself, then goes after other tenants' tasks."""

    weight = 2

    @task
    def intrude(self) -> None:
        """One cross-tenant attempt, a random way in."""
        probe_once(self)


class Tenant(TenantUser):
    """Works on its own tasks (what it may see must stay visible)."""

    weight = 1

    @task(2)
    def create_task(self) -> None:
        """Create a task."""
        self.create("private")

    @task(2)
    def list_tasks(self) -> None:
        """List its tasks."""
        self.list_own()

    @task(1)
    def read_task(self) -> None:
        """Read one of its tasks."""
        if (task_id := self.own_task()) is not None:
            self.read(task_id)


SCENARIO = Scenario.define(__name__, __doc__, SEED, Intruder, Tenant)
