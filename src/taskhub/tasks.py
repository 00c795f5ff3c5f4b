"""Tasks: tenant CRUD, lifecycle transitions, and the workers' queue claim.

Tenant operations run as `taskhub_app` with `app.user_id` set (row-level security) and also say
`user_id = :uid` in every query. Every status change is one statement: a conditional write
(`... WHERE id = :id AND status = :from`) and its `task_events` row (creation likewise), so
`tasks.version` always equals the task's number of events and `tasks.status` the last event's
`to_status`. Title and payload updates touch only those columns, so they and a status
change never overwrite each other.

Every argument is checked before the database is touched (`taskhub.inputs`): task ids may be
UUIDs or their string form, text may not hold NUL characters or lone surrogates, JSON is capped
in size and depth, and each is refused with InvalidInput (InputTooLarge) otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from taskhub import inputs
from taskhub.db import Database
from taskhub.errors import (
    IllegalTransition,
    InputTooLarge,
    InvalidInput,
    NotFound,
    TransitionConflict,
)
from taskhub.lifecycle import SOURCE, Status, check_transition
from taskhub.principal import Principal, Worker
from taskhub.uow import UnitOfWork, sqlstate_of

FOREIGN_KEY_VIOLATION = "23503"
MAX_TITLE_CHARS = 200
MAX_ERROR_CHARS = 8 * 1024
MAX_WORKER_NAME_CHARS = 200
MAX_JSON_BYTES = inputs.MAX_JSON_BYTES
MAX_LIST = 1000
"""The most tasks one `list_tasks` returns and one `claim` moves."""
COLUMNS = "id, user_id, title, payload, status, result, error, version, created_at, updated_at"
"""The columns a TaskRecord is built from, in its order."""


@dataclass(frozen=True)
class TaskRecord:
    """A task as the services return it."""

    id: uuid.UUID
    user_id: uuid.UUID
    title: str
    payload: dict[str, Any]
    status: Status
    result: Any
    error: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> TaskRecord:
        """Build from a row holding the task columns."""
        values = row._asdict()
        return cls(**{**values, "status": Status(values["status"])})


def create(db: Database, principal: Principal, title: str,
           payload: dict[str, Any] | None = None) -> TaskRecord:
    """A new pending task (version 1) and its creation event, in one statement.

    NotFound when the user no longer exists (deleted, perhaps while this ran: the foreign key
    check waits for the delete to commit and then finds no user).
    """
    payload = {} if payload is None else payload
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object")
    params = {"uid": principal.user_id, "title": _title(title),
              "payload": inputs.json_document(payload, "payload")}
    with UnitOfWork.tenant(db, principal) as uow:
        try:
            row = uow.execute(
                "WITH created AS ("
                "  INSERT INTO tasks (user_id, title, payload) "
                f"  VALUES (:uid, :title, CAST(:payload AS jsonb)) RETURNING {COLUMNS}), "
                "logged AS ("
                "  INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
                "  SELECT id, user_id, NULL, status, :actor FROM created) "
                f"SELECT {COLUMNS} FROM created", {**params, "actor": principal.actor}).one()
        except IntegrityError as exc:
            if sqlstate_of(exc) == FOREIGN_KEY_VIOLATION:
                raise NotFound("user not found") from None
            raise
        uow.commit()
    return TaskRecord.from_row(row)


def get(db: Database, principal: Principal, task_id: uuid.UUID | str) -> TaskRecord:
    """One of the principal's tasks; NotFound for anyone else's."""
    task_id = inputs.uuid_of(task_id, "task id")
    with UnitOfWork.tenant(db, principal) as uow:
        row = uow.execute(f"SELECT {COLUMNS} FROM tasks WHERE id = :id AND user_id = :uid",
                          {"id": task_id, "uid": principal.user_id}).one_or_none()
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return TaskRecord.from_row(row)


def list_tasks(db: Database, principal: Principal, status: Status | str | None = None,
               limit: int = 100) -> list[TaskRecord]:
    """The principal's tasks, oldest first, optionally only those in `status`."""
    try:
        wanted = None if status is None else Status(status).value
    except ValueError:
        raise InvalidInput(f"unknown status {status!r}") from None
    limit = inputs.count(limit, "limit", 1, MAX_LIST)
    with UnitOfWork.tenant(db, principal) as uow:
        rows = uow.execute(
            f"SELECT {COLUMNS} FROM tasks WHERE user_id = :uid "
            "AND (CAST(:status AS text) IS NULL OR status = :status) "
            "ORDER BY created_at, id LIMIT :limit",
            {"uid": principal.user_id, "status": wanted, "limit": limit}).all()
    return [TaskRecord.from_row(row) for row in rows]


def update(db: Database, principal: Principal, task_id: uuid.UUID | str, *,
           title: str | None = None, payload: dict[str, Any] | None = None) -> TaskRecord:
    """Change title and/or payload (never status or version)."""
    task_id = inputs.uuid_of(task_id, "task id")
    if payload is not None and not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object")
    params = {"id": task_id, "uid": principal.user_id,
              "title": None if title is None else _title(title),
              "payload": None if payload is None else inputs.json_document(payload, "payload")}
    with UnitOfWork.tenant(db, principal) as uow:
        row = uow.execute(
            "UPDATE tasks SET title = COALESCE(:title, title), "
            "payload = COALESCE(CAST(:payload AS jsonb), payload), updated_at = now() "
            f"WHERE id = :id AND user_id = :uid RETURNING {COLUMNS}", params).one_or_none()
        if row is None:
            raise NotFound(f"task {task_id} not found")
        uow.commit()
    return TaskRecord.from_row(row)


def delete(db: Database, principal: Principal, task_id: uuid.UUID | str) -> None:
    """Delete one of the principal's tasks (its events go with it)."""
    task_id = inputs.uuid_of(task_id, "task id")
    with UnitOfWork.tenant(db, principal) as uow:
        if uow.execute("DELETE FROM tasks WHERE id = :id AND user_id = :uid",
                       {"id": task_id, "uid": principal.user_id}).rowcount == 0:
            raise NotFound(f"task {task_id} not found")
        uow.commit()


def start(db: Database, actor: Principal | Worker, task_id: uuid.UUID | str) -> TaskRecord:
    """pending -> processing."""
    return _transition(db, actor, task_id, Status.PROCESSING)


def complete(db: Database, actor: Principal | Worker, task_id: uuid.UUID | str,
             result: Any) -> TaskRecord:
    """processing -> completed, storing `result` (any JSON value but None)."""
    encoded = None if result is None else inputs.json_document(result, "result")
    return _transition(db, actor, task_id, Status.COMPLETED, result=encoded)


def fail(db: Database, actor: Principal | Worker, task_id: uuid.UUID | str,
         error: str) -> TaskRecord:
    """processing -> failed, storing the error message (at most MAX_ERROR_CHARS)."""
    if len(inputs.text(error, "error")) > MAX_ERROR_CHARS:
        raise InputTooLarge(f"error longer than {MAX_ERROR_CHARS} characters")
    return _transition(db, actor, task_id, Status.FAILED, error=error)


def claim(db: Database, worker: Worker, n: int) -> list[TaskRecord]:
    """Move up to `n` of the oldest pending tasks (any tenant) to processing for `worker`.

    `FOR UPDATE SKIP LOCKED` lets concurrent workers claim disjoint tasks without waiting.
    """
    n = inputs.count(n, "the number of tasks to claim", 1, MAX_LIST)
    _actor(worker)
    with UnitOfWork.worker(db) as uow:
        rows = uow.execute(
            "WITH picked AS ("
            "  SELECT id FROM tasks WHERE status = 'pending' ORDER BY created_at, id "
            "  LIMIT :n FOR UPDATE SKIP LOCKED), "
            "moved AS ("
            "  UPDATE tasks t SET status = 'processing', version = t.version + 1, "
            "  updated_at = now() FROM picked WHERE t.id = picked.id AND t.status = 'pending' "
            "  RETURNING t.*), "
            "logged AS ("
            "  INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
            "  SELECT id, user_id, 'pending', 'processing', :actor FROM moved) "
            f"SELECT {COLUMNS} FROM moved ORDER BY created_at, id",
            {"n": n, "actor": worker.actor}).all()
        uow.commit()
    return [TaskRecord.from_row(row) for row in rows]


_MOVED = ", ".join(f"moved.{column}" for column in COLUMNS.split(", "))


def _transition(db: Database, actor: Principal | Worker, task_id: uuid.UUID | str,
                to: Status, *, result: str | None = None,
                error: str | None = None) -> TaskRecord:
    """Move a task to `to` in one statement: a conditional write and its event.

    `result` is already JSON text (checked by the caller). The statement reads the status
    (`seen`, the statement's snapshot) and updates the row only `WHERE status = :from`; a
    writer that got there first makes READ COMMITTED re-check that condition on the newest
    row version, so of racing transitions exactly one matches. One round trip instead of
    read, write, insert: the transaction holds the row lock for the shortest time.

    Nothing seen: NotFound. Seen in another status: IllegalTransition. Seen in the right
    status but not moved: the row changed after the snapshot, and a fresh read (a new
    snapshot) tells a deletion (NotFound) from a lost race (TransitionConflict).
    """
    task_id, label = inputs.uuid_of(task_id, "task id"), _actor(actor)
    source = SOURCE[to]
    check_transition(source, to, result=result, error=error)
    if isinstance(actor, Worker):
        uow, uid, tenant = UnitOfWork.worker(db), None, ""
    else:
        uow, uid, tenant = UnitOfWork.tenant(db, actor), actor.user_id, "AND user_id = :uid"
    with uow:
        row = uow.execute(
            f"WITH seen AS (SELECT status FROM tasks WHERE id = :id {tenant}), "
            "moved AS ("
            "  UPDATE tasks SET status = :to, version = version + 1, updated_at = now(), "
            "  result = CAST(:result AS jsonb), error = :error "
            f"  WHERE id = :id AND status = :from {tenant} RETURNING {COLUMNS}), "
            "logged AS ("
            "  INSERT INTO task_events (task_id, user_id, from_status, to_status, actor) "
            "  SELECT id, user_id, :from, :to, :actor FROM moved) "
            f"SELECT seen.status AS seen, {_MOVED} FROM seen LEFT JOIN moved ON true",
            {"to": to.value, "from": source.value, "id": task_id, "uid": uid, "error": error,
             "result": result, "actor": label}).one_or_none()
        if row is None:
            raise NotFound(f"task {task_id} not found")
        if row.seen != source:
            raise IllegalTransition(Status(row.seen), to)
        if row.id is None:
            if uow.execute(f"SELECT 1 FROM tasks WHERE id = :id {tenant}",
                           {"id": task_id, "uid": uid}).first() is None:
                raise NotFound(f"task {task_id} was deleted")
            raise TransitionConflict(f"task {task_id} left {source} before this change to {to}")
        uow.commit()
    moved = {column: value for column, value in row._asdict().items() if column != "seen"}
    return TaskRecord(**{**moved, "status": to})


def _actor(actor: Principal | Worker) -> str:
    """The actor's label for `task_events`, once a worker's self-chosen name is checked."""
    if isinstance(actor, Worker):
        name = inputs.text(actor.name, "worker name")
        if not name.strip() or len(name) > MAX_WORKER_NAME_CHARS:
            raise InvalidInput(f"worker name must be 1 to {MAX_WORKER_NAME_CHARS} characters")
    return actor.actor


def _title(title: str) -> str:
    title = inputs.text(title, "title").strip()
    if not title:
        raise InvalidInput("title must not be blank")
    if len(title) > MAX_TITLE_CHARS:
        raise InputTooLarge(f"title longer than {MAX_TITLE_CHARS} characters")
    return title
