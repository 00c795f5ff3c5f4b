"""Base Locust users for the scenarios: a signed-in tenant and a queue worker, whose methods
are taskhub's services recorded by `Recorder` (see `checker.load.recorder`).

Users talk to PostgreSQL through taskhub directly (no HTTP). Each scenario module subclasses
these, weights the tasks, and defines `SEED` (a `checker.seed.SeedSpec`).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import gevent
import jwt
from locust import User, constant

from checker.history import digest
from checker.load.harness import Credential, Harness, harness_of
from checker.load.recorder import Recorder, Result
from checker.seed import SeedTenant
from taskhub import auth, tasks, tokens
from taskhub.db import Database
from taskhub.errors import NotFound, TransitionConflict
from taskhub.lifecycle import SOURCE, Status, check_transition
from taskhub.principal import Principal, Worker
from taskhub.tasks import TaskRecord
from taskhub.uow import UnitOfWork

UNSAFE_PAUSE = 0.005
"""Seconds the broken transition 'works' between its read and its write (a race window)."""


def task_seen(record: TaskRecord) -> dict[str, Any]:
    """What a client observed from one task row."""
    return {"task_ids": [str(record.id)], "owner_ids": [str(record.user_id)]}


def tasks_seen(records: list[TaskRecord]) -> dict[str, Any]:
    """What a client observed from several task rows."""
    return {"task_ids": [str(r.id) for r in records],
            "owner_ids": [str(r.user_id) for r in records]}


class TaskhubUser(User):
    """A simulated client with its own history process name."""

    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        """Find the process's harness (a worker waits for the master's setup)."""
        self.harness: Harness = harness_of(self.environment)
        self.process = self.harness.name()
        self.rec = Recorder(self.environment, self.harness, self.process)
        self.rng = self.harness.rng

    def pause(self, seconds: float) -> None:
        """Think time (cooperative)."""
        gevent.sleep(seconds)


class TenantUser(TaskhubUser):
    """A tenant's client: signs in, then works on its own tasks (and may probe others')."""

    abstract = True

    def on_start(self) -> None:
        """Pick a tenant and sign in."""
        super().on_start()
        self.tenant: SeedTenant = self.harness.next_tenant()
        self.principal: Principal | None = None
        self.known: list[str] = list(self.tenant.task_ids)
        self.sign_in()

    @property
    def uid(self) -> str:
        """The tenant's user id."""
        return self.tenant.user_id

    def sign_in(self, credential: Credential | None = None) -> Principal | None:
        """Log in (with the tenant's current password, as this process knows it) and verify
        the token."""
        h = self.harness
        used = credential if credential is not None else h.passwords[self.uid]
        login = self.rec.call(
            "login", {"email": self.tenant.email, "password_id": used.label},
            lambda: auth.login(h.db, h.settings, self.tenant.email, used.secret),
            tenant=self.uid, observe=_token_claims)
        self.principal = self.verify(login.value) if login.ok and login.value else None
        return self.principal

    def verify(self, token: str) -> Principal | None:
        """`tokens.verify`, recorded; the principal when the token is good."""
        h = self.harness
        checked = self.rec.call("token.verify", {}, lambda: tokens.verify(h.db, h.settings,
                                                                          token),
                                tenant=self.uid, observe=lambda p: {
                                    "user_id": str(p.user_id), "session_id": str(p.session_id)})
        return checked.value if checked.ok else None

    def logout(self) -> None:
        """End the current session."""
        principal, self.principal = self.principal, None
        if principal is not None:
            self.rec.call("logout", {"session_id": str(principal.session_id)},
                          lambda: auth.logout(self.harness.db, principal), tenant=self.uid)

    def signed_in(self) -> Principal | None:
        """The principal, signing in again when there is none."""
        return self.principal or self.sign_in()

    def create(self, title: str = "task") -> str | None:
        """Create a task; its id when acknowledged."""
        principal = self.signed_in()
        if principal is None:
            return None
        payload = {"n": self.rng.randrange(1000)}
        done = self.rec.call("task.create", {"title": title, "wrote": _wrote(title, payload)},
                             lambda: tasks.create(self.harness.db, principal, title, payload),
                             tenant=self.uid, observe=lambda r: {
                                 "task_id": str(r.id), "owner_ids": [str(r.user_id)]})
        if done.ok and done.value is not None:
            self.known.append(str(done.value.id))
            self.harness.created.append((str(done.value.id), self.uid))
            return str(done.value.id)
        return None

    def own_task(self) -> str | None:
        """One of the tenant's known tasks (seeded or created here)."""
        return self.rng.choice(self.known) if self.known else None

    def read(self, task_id: str) -> Result[TaskRecord]:
        """`tasks.get` of one of the tenant's own tasks."""
        principal = self.signed_in()
        return self.rec.call("task.read", {"task_id": task_id},
                             lambda: tasks.get(self.harness.db, _need(principal),
                                               uuid.UUID(task_id)),
                             tenant=self.uid, observe=task_seen)

    def list_own(self, status: str | None = None) -> Result[list[TaskRecord]]:
        """`tasks.list_tasks`, optionally by status."""
        principal = self.signed_in()
        args = {} if status is None else {"status": status}
        return self.rec.call("task.list", args,
                             lambda: tasks.list_tasks(self.harness.db, _need(principal),
                                                      status, limit=50),
                             tenant=self.uid, observe=tasks_seen)

    def update(self, task_id: str, fields: tuple[str, ...] | None = None) -> Result[TaskRecord]:
        """Edit a task's `fields` (title and/or payload; by default one or both at random,
        never its status) to values no other edit writes; the broken read-modify-write edit
        when switched on."""
        principal = self.signed_in()
        if fields is None:
            fields = self.rng.choice((("title",), ("payload",), ("title", "payload")))
        mark = f"{self.process}:{self.rng.randrange(10**9)}"
        title = f"edited {mark}" if "title" in fields else None
        payload = {"edited": mark} if "payload" in fields else None
        edit = unsafe_edit if self.harness.unsafe_edits else tasks.update
        return self.rec.call("task.update", {"task_id": task_id,
                                             "wrote": _wrote(title, payload)},
                             lambda: edit(self.harness.db, _need(principal),
                                          uuid.UUID(task_id), title=title, payload=payload),
                             tenant=self.uid, observe=task_seen)

    def delete(self, task_id: str) -> Result[None]:
        """Delete one of the tenant's tasks."""
        principal = self.signed_in()
        done = self.rec.call("task.delete", {"task_id": task_id},
                             lambda: tasks.delete(self.harness.db, _need(principal),
                                                  uuid.UUID(task_id)), tenant=self.uid)
        if done.ok and task_id in self.known:
            self.known.remove(task_id)
        return done

    def move(self, task_id: str, to: Status) -> Result[TaskRecord]:
        """A transition the tenant makes itself (start, complete or fail its own task)."""
        principal = self.signed_in()
        return transition(self.rec, _need(principal), task_id, to, tenant=self.uid)

    def probe_as_app(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """Raw SQL as the application role for this tenant, always rolled back."""
        with UnitOfWork.account(self.harness.db, uuid.UUID(self.uid)) as uow:
            result = uow.execute(sql, params)
            return list(result.all()) if result.returns_rows else [result.rowcount]


class WorkerUser(TaskhubUser):
    """A queue worker: claims tasks, finishes them, or races for given ones."""

    abstract = True

    def on_start(self) -> None:
        """Name the worker after its history process."""
        super().on_start()
        self.worker = Worker(self.process)
        self.claimed: list[str] = []

    def claim(self, n: int = 1) -> list[str]:
        """Claim up to `n` pending tasks (SKIP LOCKED); their ids."""
        done = self.rec.call("task.claim", {"n": n},
                             lambda: tasks.claim(self.harness.db, self.worker, n),
                             kind="worker", observe=tasks_seen)
        ids = [str(r.id) for r in done.value or []] if done.ok else []
        self.claimed.extend(ids)
        return ids

    def start_task(self, task_id: str) -> Result[TaskRecord]:
        """pending -> processing of a given task."""
        return self.move(task_id, Status.PROCESSING)

    def finish(self, task_id: str) -> Result[TaskRecord]:
        """processing -> completed (most of the time) or failed."""
        to = Status.FAILED if self.rng.random() < 0.2 else Status.COMPLETED
        return self.move(task_id, to)

    def work_queue(self, n: int = 2, idle: float = 0.05, work: float = 0.0) -> None:
        """Claim up to `n` tasks and finish each (after `work` seconds); idle when empty."""
        claimed = self.claim(n)
        if not claimed:
            self.pause(idle)
        for task_id in claimed:
            if work:
                self.pause(work)
            self.finish(task_id)
            self.claimed.remove(task_id)

    def race(self) -> None:
        """All racers of all processes walk the contested tasks in the same order: each tries
        to start the current one, then to finish it; exactly one of each may win. The
        process's cursor moves on once the task is past processing (then: the queue)."""
        contested = self.harness.setup.manifest.contested
        position = int(self.harness.shared.setdefault("cursor", 0))
        if position >= len(contested):
            self.work_queue()
            return
        task_id = contested[position]
        self.start_task(task_id)
        finished = self.finish(task_id)
        if finished.ok or not isinstance(finished.error, TransitionConflict):
            self.harness.shared["cursor"] = max(position + 1,
                                                int(self.harness.shared["cursor"]))

    def move(self, task_id: str, to: Status) -> Result[TaskRecord]:
        """A worker transition: taskhub's, or the deliberately broken one when switched on."""
        if self.harness.unsafe:
            return unsafe_transition(self.rec, self.worker, task_id, to)
        return transition(self.rec, self.worker, task_id, to, tenant=None)


def transition(rec: Recorder, actor: Principal | Worker, task_id: str, to: Status, *,
               tenant: str | None) -> Result[TaskRecord]:
    """taskhub's `start`/`complete`/`fail`, recorded as `task.transition`."""
    db = rec.harness.db
    tid = uuid.UUID(task_id)

    def act() -> TaskRecord:
        if to is Status.PROCESSING:
            return tasks.start(db, actor, tid)
        if to is Status.COMPLETED:
            return tasks.complete(db, actor, tid, {"by": actor.actor})
        return tasks.fail(db, actor, tid, f"failed by {actor.actor}")

    args = {"task_id": task_id, "from_status": SOURCE[to].value, "to_status": to.value}
    return rec.call("task.transition", args, act, tenant=tenant, observe=task_seen,
                    kind="worker" if tenant is None else "tenant")


def unsafe_transition(rec: Recorder, worker: Worker, task_id: str,
                      to: Status) -> Result[TaskRecord]:
    """THE DELIBERATELY BROKEN TRANSITION (CHECKER_UNSAFE_TRANSITIONS=1, tests only): read the
    status, pause, then write without the status condition and without a lock, plus the event.
    Two racing workers can both 'win'; the audit must notice."""
    db = rec.harness.db
    result = {"by": worker.actor} if to is Status.COMPLETED else None
    error = f"failed by {worker.actor}" if to is Status.FAILED else None

    def act() -> TaskRecord:
        with UnitOfWork.worker(db) as uow:
            seen = uow.execute("SELECT status, user_id FROM tasks WHERE id = :id",
                               {"id": task_id}).one_or_none()
            if seen is None:
                raise NotFound(f"task {task_id} not found")
            check_transition(Status(seen.status), to, result=result, error=error)
            gevent.sleep(UNSAFE_PAUSE)
            row = uow.execute(
                "UPDATE tasks SET status = :to, version = version + 1, updated_at = now(), "
                "result = CAST(:result AS jsonb), error = :error WHERE id = :id "
                f"RETURNING {tasks.COLUMNS}",
                {"to": to.value, "id": task_id, "error": error,
                 "result": None if result is None else '{"by": "unsafe"}'}).one()
            uow.execute("INSERT INTO task_events (task_id, user_id, from_status, to_status, "
                        "actor) VALUES (:id, :uid, :from, :to, :actor)",
                        {"id": task_id, "uid": seen.user_id, "from": seen.status,
                         "to": to.value, "actor": worker.actor})
            uow.commit()
        return TaskRecord.from_row(row)

    args = {"task_id": task_id, "from_status": SOURCE[to].value, "to_status": to.value}
    return rec.call("task.transition", args, act, observe=task_seen, kind="worker")


def unsafe_edit(db: Database, principal: Principal, task_id: uuid.UUID, *,
                title: str | None = None, payload: dict[str, Any] | None = None) -> TaskRecord:
    """THE DELIBERATELY BROKEN EDIT (CHECKER_UNSAFE_EDITS=1, tests only): read the task, pause,
    then write back both fields, the one not edited as it was read, without a lock. An edit of
    the other field that commits in between is silently reverted; the audit must notice."""
    with UnitOfWork.tenant(db, principal) as uow:
        seen = uow.execute("SELECT title, payload FROM tasks WHERE id = :id",
                           {"id": task_id}).one_or_none()
        if seen is None:
            raise NotFound(f"task {task_id} not found")
        gevent.sleep(UNSAFE_PAUSE)
        row = uow.execute(
            "UPDATE tasks SET title = :title, payload = CAST(:payload AS jsonb), "
            f"updated_at = now() WHERE id = :id RETURNING {tasks.COLUMNS}",
            {"id": task_id, "title": seen.title if title is None else title,
             "payload": json.dumps(seen.payload if payload is None else payload)}).one()
        uow.commit()
    return TaskRecord.from_row(row)


def _wrote(title: str | None, payload: dict[str, Any] | None) -> dict[str, str]:
    """The history's digests of the fields an operation sets."""
    values = {"title": title, "payload": payload}
    return {name: digest(value) for name, value in values.items() if value is not None}


def _need(principal: Principal | None) -> Principal:
    if principal is None:
        from taskhub.errors import InvalidCredentials

        raise InvalidCredentials("not signed in")
    return principal


def _token_claims(token: str) -> dict[str, Any]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return {name: str(claims[claim]) for name, claim in (("user_id", "sub"),
                                                         ("session_id", "jti"))
            if claims.get(claim)}
