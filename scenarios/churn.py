"""Users deleted while their tasks are being processed (cascades under load), then re-created.

Churners register an account, sign in and create tasks; now and then one deletes its account
while queue workers are claiming and finishing its tasks, and registers again with the same
email (a new user). Deletes cascade to tasks, events, sessions and password history; workers
racing a delete get NotFound; nothing may be left orphaned, and no acknowledged write may be
lost except by a delete.
"""

from __future__ import annotations

from locust import task

from checker.load.harness import Credential
from checker.load.scenario import Scenario
from checker.load.users import TaskhubUser, TenantUser, WorkerUser
from checker.seed import SeedSpec, SeedTenant, strong_password
from taskhub import users

SEED = SeedSpec(tenants=6, tasks_per_tenant=20)


class Churner(TenantUser):
    """An account that comes and goes."""

    weight = 2

    def on_start(self) -> None:
        """Register a fresh account and sign in."""
        TaskhubUser.on_start(self)
        self.email = f"churn-{self.process}.s{self.harness.setup.seed}@load.test"
        self.principal = None
        self.known = []
        self.register()

    def register(self) -> bool:
        """Register (again) with this churner's email; sign in."""
        h = self.harness
        credential = Credential.fresh(strong_password(self.rng))
        done = self.rec.call("user.register", {"email": self.email,
                                               "password_id": credential.label},
                             lambda: users.register(h.db, h.settings, self.email,
                                                    credential.secret),
                             observe=lambda u: {"user_id": str(u.id)})
        if not done.ok or done.value is None:
            self.tenant = SeedTenant("00000000-0000-4000-8000-000000000000", self.email, "", ())
            return False
        self.tenant = SeedTenant(str(done.value.id), self.email, credential.secret, ())
        h.passwords[self.tenant.user_id] = credential
        self.known = []
        self.sign_in()
        return True

    @task(4)
    def create_tasks(self) -> None:
        """Create a task for the workers."""
        if self.principal is None and not self.register():
            return
        self.create("doomed")

    @task(2)
    def list_tasks(self) -> None:
        """See what is left."""
        if self.principal is not None:
            self.list_own()

    @task(1)
    def leave_and_return(self) -> None:
        """Delete the account (its tasks may be in a worker's hands), then register again."""
        principal = self.principal
        if principal is None:
            self.register()
            return
        self.rec.call("user.delete", {"user_id": self.uid},
                      lambda: users.delete(self.harness.db, principal), tenant=self.uid)
        self.principal = None
        self.register()


class QueueWorker(WorkerUser):
    """Claims and finishes tasks, including those of users being deleted."""

    weight = 2

    @task
    def claim_and_finish(self) -> None:
        """One claim, then a transition per claimed task."""
        self.work_queue(n=2, work=0.005)


SCENARIO = Scenario.define(__name__, __doc__, SEED, Churner, QueueWorker)
