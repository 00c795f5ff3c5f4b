"""Workers racing for the same tasks: SKIP LOCKED queue claims and contested direct transitions.

Queue workers claim pending tasks (`FOR UPDATE SKIP LOCKED`) and finish them; racers all walk
the same list of contested tasks, each trying to start and then to finish the current one, so
every step of those tasks has several contenders and exactly one may win (claims compete for
them too); a producer keeps the queue fed. With CHECKER_UNSAFE_TRANSITIONS=1 (tests only)
worker transitions become an unguarded read-then-write, which the audit must catch.
"""

from __future__ import annotations

from locust import task

from checker.load.scenario import Scenario
from checker.load.users import TenantUser, WorkerUser
from checker.seed import SeedSpec

SEED = SeedSpec(tenants=10, tasks_per_tenant=60, contested=300)


class QueueWorker(WorkerUser):
    """Claims two pending tasks at a time and finishes them."""

    weight = 3

    @task
    def claim_and_finish(self) -> None:
        """One claim, then a transition per claimed task."""
        self.work_queue(n=2)


class Racer(WorkerUser):
    """Races every other racer for the contested tasks."""

    weight = 3

    @task
    def contend(self) -> None:
        """Start and finish the current contested task, if this racer wins."""
        self.race()


class Producer(TenantUser):
    """A tenant adding work to the queue."""

    weight = 1

    @task
    def produce(self) -> None:
        """Create a task."""
        self.create("job")
        self.pause(0.01)


SCENARIO = Scenario.define(__name__, __doc__, SEED, QueueWorker, Racer, Producer)
