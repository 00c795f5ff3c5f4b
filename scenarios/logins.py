"""Many users logging into the same and different accounts at once, with password changes.

Sign-in users log into a small pool of accounts concurrently (sessions created in parallel;
half the accounts carry a hash with other Argon2id parameters, so the first logins race to
re-hash), verify their tokens and log out; some try a wrong password or an unknown email.
Rotators change the passwords of a few accounts and reset others with a temporary password
(single use, then a forced change), so logins race password changes and see stale passwords.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from locust import task

from checker.history import WRONG_PASSWORD
from checker.load.harness import Credential, new_label
from checker.load.scenario import Scenario
from checker.load.users import TenantUser
from checker.seed import SeedSpec, SeedTenant, strong_password
from taskhub import auth
from taskhub.principal import Principal

SEED = SeedSpec(tenants=24, tasks_per_tenant=1, legacy_share=0.5)
ROTATING_SHARE = 0.25
"""The first quarter of the tenants have their passwords rotated (each by one process)."""
NO_ROTATION_ENV = "CHECKER_LOGINS_NO_ROTATION"
"""Set to 1 for logins only (the login benchmark): rotators stay idle."""


def rotation_off() -> bool:
    """Whether password rotation is switched off in this process."""
    return os.environ.get(NO_ROTATION_ENV, "") in ("1", "true", "yes")


def rotating(user: TenantUser) -> list[SeedTenant]:
    """The accounts this process rotates."""
    tenants = user.harness.tenants
    count = max(1, int(len(tenants) * ROTATING_SHARE))
    return [t for i, t in enumerate(tenants[:count]) if user.harness.owned_here(i)]


def stable(user: TenantUser) -> list[SeedTenant]:
    """The accounts whose passwords never change."""
    tenants = user.harness.tenants
    return list(tenants[max(1, int(len(tenants) * ROTATING_SHARE)):]) or list(tenants)


class UnsignedTenant(TenantUser):
    """A tenant user that does not sign in up front: its tasks pick the account."""

    abstract = True

    def on_start(self) -> None:
        """Skip TenantUser's sign-in; start with a tenant but no session."""
        super(TenantUser, self).on_start()
        self.tenant = self.harness.next_tenant()
        self.principal = None
        self.known = []


class SignIn(UnsignedTenant):
    """Logs into accounts that other users are logging into at the same moment."""

    weight = 6

    @task(8)
    def login(self) -> None:
        """Sign in to a shared account (sometimes one whose password rotates), maybe out."""
        pool = rotating(self) if self.rng.random() < 0.3 and not rotation_off() else stable(self)
        self.tenant = self.rng.choice(pool or stable(self))
        if self.sign_in() is not None and self.rng.random() < 0.5:
            self.logout()

    @task(1)
    def wrong_password(self) -> None:
        """A wrong password for a real account: refused."""
        self.tenant = self.rng.choice(stable(self))
        self.sign_in(Credential("not-the-password-" + str(self.rng.randrange(10**6)),
                                WRONG_PASSWORD))

    @task(1)
    def unknown_email(self) -> None:
        """An email nobody has: refused, after a dummy verification."""
        h = self.harness
        email = f"nobody-{uuid.uuid4().hex[:12]}@load.test"
        self.rec.call("login", {"email": email, "password_id": WRONG_PASSWORD},
                      lambda: auth.login(h.db, h.settings, email, "whatever it is 123"))


class Rotator(UnsignedTenant):
    """Changes passwords and issues temporary ones for the accounts its process rotates."""

    weight = 1

    @contextmanager
    def _rotating_account(self) -> Iterator[SeedTenant | None]:
        """One of the accounts this process rotates, held against the process's other rotators
        and made this user's tenant; None (after a short pause) when rotation is off."""
        accounts = rotating(self)
        if not accounts or rotation_off():
            self.pause(0.1)
            yield None
            return
        account = self.rng.choice(accounts)
        with self.harness.lock(account.user_id):
            self.tenant = account
            yield account

    @task(2)
    def change_password(self) -> None:
        """Sign in with the current password and change it."""
        with self._rotating_account() as account:
            if account is None:
                return
            old = self.harness.passwords[account.user_id]
            principal = self.sign_in(old)
            if principal is not None:
                self._change(account, principal, old)

    @task(1)
    def temporary_password(self) -> None:
        """An administrator's reset, the single login it allows, and the forced change."""
        with self._rotating_account() as account:
            if account is None:
                return
            h = self.harness
            label = new_label()
            issued = self.rec.call(
                "password.temporary", {"user_id": account.user_id},
                lambda: auth.issue_temporary_password(h.db, h.settings,
                                                      uuid.UUID(account.user_id)),
                tenant=account.user_id, kind="admin", observe=lambda _: {"password_id": label})
            if not issued.ok or issued.value is None:
                return
            temporary = Credential(issued.value, label)
            restricted = self.sign_in(temporary)
            if restricted is not None:
                self._change(account, restricted, temporary, temporary=True)

    def _change(self, account: SeedTenant, principal: Principal, old: Credential,
                **args: object) -> None:
        """`auth.change_password` to a new strong password, remembered once acknowledged."""
        h = self.harness
        new = Credential.fresh(strong_password(self.rng))
        done = self.rec.call("password.change", {"user_id": account.user_id,
                                                 "old_password_id": old.label,
                                                 "new_password_id": new.label, **args},
                             lambda: auth.change_password(h.db, h.settings, principal,
                                                          old.secret, new.secret),
                             tenant=account.user_id)
        if done.ok:
            h.passwords[account.user_id] = new
            # The replaced password (a temporary one included) must now be refused: the
            # ledger holds this login to it (`ledger.password_changes_take_effect`).
            self.sign_in(old)
        self.principal = None


SCENARIO = Scenario.define(__name__, __doc__, SEED, SignIn, Rotator)
