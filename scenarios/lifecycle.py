"""Tasks end to end, create -> process -> complete or fail, with user edits racing workers.

Owners create tasks, edit their titles and payloads, read and list them, and sometimes move
their own tasks themselves; queue workers claim tasks, spend a moment on each and complete or
fail it. Edits touch only title and payload, transitions only the status columns: neither may
undo the other, and every status change must leave its event.
"""

from __future__ import annotations

from locust import task

from checker.load.scenario import Scenario
from checker.load.users import TenantUser, WorkerUser
from checker.seed import SeedSpec
from taskhub.lifecycle import Status

SEED = SeedSpec(tenants=10, tasks_per_tenant=5)


class Owner(TenantUser):
    """A tenant creating, editing and following its tasks."""

    weight = 3

    @task(3)
    def create_task(self) -> None:
        """Create a task."""
        self.create("lifecycle")

    @task(3)
    def edit_task(self) -> None:
        """Edit a task, probably while a worker holds it."""
        if (task_id := self.own_task()) is not None:
            self.update(task_id)

    @task(2)
    def read_task(self) -> None:
        """Read a task."""
        if (task_id := self.own_task()) is not None:
            self.read(task_id)

    @task(1)
    def follow(self) -> None:
        """List tasks by status."""
        self.list_own(self.rng.choice(["pending", "processing", "completed", "failed"]))

    @task(1)
    def do_it_myself(self) -> None:
        """Start and finish one of its own tasks (racing the workers for it)."""
        if (task_id := self.own_task()) is not None and self.move(task_id,
                                                                  Status.PROCESSING).ok:
            self.move(task_id, Status.COMPLETED)


class QueueWorker(WorkerUser):
    """Claims one task at a time, works on it briefly, completes or fails it."""

    weight = 2

    @task
    def claim_work_finish(self) -> None:
        """Claim, work, finish."""
        self.work_queue(n=1, work=0.02)


SCENARIO = Scenario.define(__name__, __doc__, SEED, Owner, QueueWorker)
