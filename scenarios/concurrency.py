"""The default mix: parallel logins, simultaneous task transitions and tenant probes.

Tenants sign in, create, list, read and edit their tasks and now and then try to read another
tenant's task; queue workers claim and finish tasks while racers contend for the same tasks;
sign-in users log into the same and different accounts at once and log out; editors send two
edits of one task at once (its title from one tab, its payload from another).
"""

from __future__ import annotations

import gevent
from locust import task

from checker.load.probes import probe_once
from checker.load.scenario import Scenario
from checker.load.users import TaskhubUser, TenantUser, WorkerUser
from checker.seed import SeedSpec

SEED = SeedSpec(tenants=20, tasks_per_tenant=20, legacy_share=0.25, contested=100)


class Tenant(TenantUser):
    """A tenant at work on its own tasks."""

    weight = 4

    @task(3)
    def create_task(self) -> None:
        """Create a task."""
        self.create("work item")

    @task(2)
    def list_tasks(self) -> None:
        """List tasks, sometimes by status."""
        self.list_own(self.rng.choice([None, "pending", "completed"]))

    @task(2)
    def read_task(self) -> None:
        """Read one of its tasks."""
        if (task_id := self.own_task()) is not None:
            self.read(task_id)

    @task(1)
    def edit_task(self) -> None:
        """Edit one of its tasks while workers may be moving it."""
        if (task_id := self.own_task()) is not None:
            self.update(task_id)

    @task(1)
    def probe(self) -> None:
        """Try another tenant's task."""
        probe_once(self)


class QueueWorker(WorkerUser):
    """Claims and finishes tasks."""

    weight = 2

    @task
    def claim_and_finish(self) -> None:
        """One claim, then a transition per claimed task."""
        self.work_queue(n=2)


class Racer(WorkerUser):
    """Contends for the same tasks as every other racer."""

    weight = 1

    @task
    def contend(self) -> None:
        """Start and finish the current contested task, if this racer wins."""
        self.race()


class SignIn(TenantUser):
    """Logs into its account (shared with other users) over and over, and out again."""

    weight = 1

    @task
    def cycle(self) -> None:
        """Sign in, sometimes log out."""
        principal = self.sign_in()
        if principal is not None and self.rng.random() < 0.5:
            self.logout()


class Editor(TenantUser):
    """Edits the first tenant's first task from two tabs at once: every editor of every
    process on the same task, each edit setting one field."""

    weight = 1

    def on_start(self) -> None:
        """Sign in as the first tenant, whatever the round-robin would have given."""
        TaskhubUser.on_start(self)
        self.tenant = self.harness.tenants[0]
        self.principal = None
        self.known = list(self.tenant.task_ids[:1])
        self.sign_in()

    @task
    def edit_in_two_tabs(self) -> None:
        """A title edit and a payload edit of the same task, concurrently."""
        if (task_id := self.own_task()) is None:
            return
        tabs = [gevent.spawn(self.update, task_id, ("title",)),
                gevent.spawn(self.update, task_id, ("payload",))]
        try:
            gevent.joinall(tabs)
        finally:  # stopped meanwhile: each tab records its call as interrupted (unknown)
            gevent.killall(tabs)


SCENARIO = Scenario.define(__name__, __doc__, SEED, Tenant, QueueWorker, Racer, SignIn, Editor)
