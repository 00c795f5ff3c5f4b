"""Tasks: CRUD, the lifecycle with its events, illegal transitions, races, and the queue."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, text

from checker.access import RuntimeAccess
from taskhub import tasks
from taskhub.db import Database
from taskhub.errors import (
    IllegalTransition,
    InputTooLarge,
    InvalidInput,
    NotFound,
    TransitionConflict,
)
from taskhub.lifecycle import Status
from taskhub.principal import Principal, Worker
from tests.integration.helpers import (
    Account,
    as_owner,
    lifecycle_violations,
)
from tests.integration.interleave import all_at_once, returned_or_raised

WORKER = Worker("w1")


@pytest.fixture
def owner(make_account: Callable[..., Account]) -> Principal:
    return make_account().principal


def events(engine: Engine, task_id: uuid.UUID) -> list[tuple[Any, ...]]:
    with as_owner(engine) as conn:
        rows = conn.execute(text("SELECT from_status, to_status, actor, user_id "
                                 "FROM task_events WHERE task_id = :t ORDER BY id"),
                            {"t": task_id}).all()
    return [tuple(row) for row in rows]


def test_create_get_list_update_delete(db: Database, db_engine: Engine, owner: Principal) -> None:
    task = tasks.create(db, owner, "  write report ", {"pages": 3})
    assert (task.title, task.payload, task.status, task.version) == (
        "write report", {"pages": 3}, Status.PENDING, 1)
    assert (task.user_id, task.result, task.error) == (owner.user_id, None, None)
    assert events(db_engine, task.id) == [(None, "pending", owner.actor, owner.user_id)]
    assert tasks.get(db, owner, task.id) == task

    other = tasks.create(db, owner, "second")
    assert other.payload == {}
    assert [t.id for t in tasks.list_tasks(db, owner)] == [task.id, other.id]

    updated = tasks.update(db, owner, task.id, title="final report")
    assert (updated.title, updated.payload, updated.version) == ("final report", {"pages": 3}, 1)
    updated = tasks.update(db, owner, task.id, payload={"pages": 4})
    assert (updated.title, updated.payload) == ("final report", {"pages": 4})
    assert tasks.get(db, owner, task.id) == updated

    tasks.delete(db, owner, task.id)
    with pytest.raises(NotFound):
        tasks.get(db, owner, task.id)
    with pytest.raises(NotFound):
        tasks.delete(db, owner, task.id)
    assert events(db_engine, task.id) == []
    assert [t.id for t in tasks.list_tasks(db, owner)] == [other.id]


def test_list_filters_by_status(db: Database, owner: Principal) -> None:
    a, b, c = (tasks.create(db, owner, name) for name in "abc")
    tasks.start(db, WORKER, b.id)
    tasks.start(db, WORKER, c.id)
    tasks.complete(db, WORKER, c.id, {"ok": True})

    def ids(status: Status | str | None) -> list[uuid.UUID]:
        return [t.id for t in tasks.list_tasks(db, owner, status)]

    assert ids(Status.PENDING) == [a.id]
    assert ids("processing") == [b.id]
    assert ids(Status.COMPLETED) == [c.id]
    assert ids(Status.FAILED) == []
    assert ids(None) == [a.id, b.id, c.id]
    with pytest.raises(InvalidInput):
        ids("archived")


@pytest.mark.parametrize(("title", "error"), [
    ("", InvalidInput), ("   ", InvalidInput), ("x" * (tasks.MAX_TITLE_CHARS + 1), InputTooLarge),
])
def test_bad_titles(db: Database, owner: Principal, title: str,
                    error: type[Exception]) -> None:
    with pytest.raises(error):
        tasks.create(db, owner, title)


def test_bad_payloads(db: Database, db_engine: Engine, owner: Principal) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        tasks.create(db, owner, "t", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="serialisable"):
        tasks.create(db, owner, "t", {"when": object()})
    with pytest.raises(InputTooLarge):
        tasks.create(db, owner, "t", {"blob": "x" * tasks.MAX_JSON_BYTES})
    task = tasks.create(db, owner, "t")
    with pytest.raises(InputTooLarge):
        tasks.update(db, owner, task.id, payload={"blob": "x" * tasks.MAX_JSON_BYTES})
    with as_owner(db_engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM tasks")).scalar_one() == 1


@pytest.mark.parametrize("finish", ["complete", "fail"])
def test_whole_lifecycle(db: Database, db_engine: Engine, owner: Principal, finish: str) -> None:
    task = tasks.create(db, owner, "job")
    started = tasks.start(db, WORKER, task.id)
    assert (started.status, started.version) == (Status.PROCESSING, 2)
    if finish == "complete":
        done = tasks.complete(db, WORKER, task.id, {"answer": 42, "list": [1, None]})
        assert (done.status, done.result, done.error) == (
            Status.COMPLETED, {"answer": 42, "list": [1, None]}, None)
    else:
        done = tasks.fail(db, WORKER, task.id, "disk full")
        assert (done.status, done.result, done.error) == (Status.FAILED, None, "disk full")
    assert done.version == 3
    assert tasks.get(db, owner, task.id) == done
    assert events(db_engine, task.id) == [
        (None, "pending", owner.actor, owner.user_id),
        ("pending", "processing", "worker:w1", owner.user_id),
        ("processing", str(done.status), "worker:w1", owner.user_id),
    ]
    assert lifecycle_violations(db_engine) == []


def test_owner_may_move_own_tasks(db: Database, db_engine: Engine, owner: Principal) -> None:
    task = tasks.create(db, owner, "self-service")
    tasks.start(db, owner, task.id)
    done = tasks.complete(db, owner, task.id, "plain string result")
    assert done.result == "plain string result"
    assert [e[2] for e in events(db_engine, task.id)] == [owner.actor] * 3


MOVES: dict[str, Callable[[Database, uuid.UUID], object]] = {
    "start": lambda db, tid: tasks.start(db, WORKER, tid),
    "complete": lambda db, tid: tasks.complete(db, WORKER, tid, {"ok": 1}),
    "fail": lambda db, tid: tasks.fail(db, WORKER, tid, "boom"),
}
LEGAL_MOVES = {("pending", "start"), ("processing", "complete"), ("processing", "fail")}
PATHS = {"pending": [], "processing": ["start"], "completed": ["start", "complete"],
         "failed": ["start", "fail"]}


@pytest.mark.parametrize("status", list(PATHS))
@pytest.mark.parametrize("move", list(MOVES))
def test_every_illegal_transition_refused(db: Database,
                                          db_engine: Engine, owner: Principal, status: str,
                                          move: str) -> None:
    task = tasks.create(db, owner, "t")
    for step in PATHS[status]:
        MOVES[step](db, task.id)
    before = tasks.get(db, owner, task.id)
    if (status, move) in LEGAL_MOVES:
        MOVES[move](db, task.id)
        assert tasks.get(db, owner, task.id).version == before.version + 1
    else:
        with pytest.raises(IllegalTransition):
            MOVES[move](db, task.id)
        assert tasks.get(db, owner, task.id) == before
    assert lifecycle_violations(db_engine) == []


def test_completion_needs_a_result_and_failure_an_error(db: Database,
        owner: Principal) -> None:
    task = tasks.start(db, WORKER, tasks.create(db, owner, "t").id)
    with pytest.raises(IllegalTransition, match="result"):
        tasks.complete(db, WORKER, task.id, None)
    with pytest.raises(IllegalTransition, match="error"):
        tasks.fail(db, WORKER, task.id, "  ")
    assert tasks.get(db, owner, task.id) == task


def test_transition_of_a_missing_task(db: Database, db_engine: Engine) -> None:
    with pytest.raises(NotFound):
        tasks.start(db, WORKER, uuid.uuid4())


def test_update_does_not_undo_a_concurrent_status_change(db: Database,
        db_engine: Engine, owner: Principal) -> None:
    """Title/payload updates write only their columns, so a status change between the
    tenant's read and write survives (and vice versa)."""
    task = tasks.create(db, owner, "t")
    seen = tasks.get(db, owner, task.id)  # the tenant's (now stale) view
    tasks.start(db, WORKER, task.id)
    updated = tasks.update(db, owner, seen.id, title="renamed", payload={"v": 2})
    assert (updated.status, updated.version, updated.title) == (Status.PROCESSING, 2, "renamed")
    done = tasks.complete(db, WORKER, task.id, 1)
    assert (done.title, done.payload) == ("renamed", {"v": 2})
    assert lifecycle_violations(db_engine) == []


def test_two_sessions_racing_the_same_start(db: Database,
                                            db_engine: Engine, owner: Principal) -> None:
    task = tasks.create(db, owner, "contested")
    outcomes = all_at_once(db_engine, task.id,
                    lambda: tasks.start(db, Worker("a"), task.id),
                    lambda: tasks.start(db, Worker("b"), task.id))
    winners = [o for o in outcomes if isinstance(o, tasks.TaskRecord)]
    losers = [o for o in outcomes if isinstance(o, TransitionConflict)]
    assert (len(winners), len(losers)) == (1, 1)
    assert winners[0].version == 2
    assert [e[:2] for e in events(db_engine, task.id)] == [(None, "pending"),
                                                            ("pending", "processing")]
    assert lifecycle_violations(db_engine) == []


def test_complete_and_fail_racing(db: Database, db_engine: Engine, owner: Principal) -> None:
    task = tasks.start(db, WORKER, tasks.create(db, owner, "contested").id)
    outcomes = all_at_once(db_engine, task.id,
                    lambda: tasks.complete(db, Worker("a"), task.id, "done"),
                    lambda: tasks.fail(db, Worker("b"), task.id, "gave up"))
    winners = [o for o in outcomes if isinstance(o, tasks.TaskRecord)]
    assert len(winners) == 1
    assert sum(isinstance(o, TransitionConflict) for o in outcomes) == 1
    final = tasks.get(db, owner, task.id)
    assert final == winners[0]
    assert (final.result, final.error) in {("done", None), (None, "gave up")}
    assert lifecycle_violations(db_engine) == []


def test_free_running_races(db: Database, db_engine: Engine, owner: Principal) -> None:
    """Without the lock choreography: for each task, two threads start it at once."""
    ids = [tasks.create(db, owner, f"t{i}").id for i in range(15)]
    for task_id in ids:
        barrier = threading.Barrier(2)

        def attempt(name: str, task_id: uuid.UUID = task_id,
                    barrier: threading.Barrier = barrier) -> object:
            barrier.wait()
            return returned_or_raised(lambda: tasks.start(db, Worker(name), task_id))

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(attempt, ["a", "b"]))
        winners = [o for o in outcomes if isinstance(o, tasks.TaskRecord)]
        # The loser read the task before (conflict) or after (illegal) the winner's commit.
        losers = [o for o in outcomes if isinstance(o, TransitionConflict | IllegalTransition)]
        assert (len(winners), len(losers)) == (1, 1), outcomes
    assert all(t.version == 2 for t in tasks.list_tasks(db, owner))
    assert lifecycle_violations(db_engine) == []


def test_claim_moves_the_oldest_pending_tasks(db: Database, db_engine: Engine, owner: Principal,
                                              make_account: Callable[..., Account]) -> None:
    other = make_account().principal
    created = [tasks.create(db, p, f"t{i}") for i, p in enumerate([owner, other] * 3)]
    tasks.start(db, WORKER, created[0].id)
    claimed = tasks.claim(db, Worker("q"), 3)
    assert [t.id for t in claimed] == [t.id for t in created[1:4]]
    assert {t.user_id for t in claimed} == {owner.user_id, other.user_id}  # any tenant
    assert all((t.status, t.version) == (Status.PROCESSING, 2) for t in claimed)
    assert events(db_engine, claimed[0].id)[-1][:3] == ("pending", "processing", "worker:q")
    assert [t.id for t in tasks.claim(db, Worker("q"), 10)] == [
        t.id for t in created[4:]]
    assert tasks.claim(db, Worker("q"), 10) == []
    with pytest.raises(InvalidInput):
        tasks.claim(db, Worker("q"), 0)
    assert lifecycle_violations(db_engine) == []


def test_claim_skips_locked_tasks(db: Database,
                                  db_engine: Engine, db_access: RuntimeAccess,
                                  owner: Principal) -> None:
    first, second = (tasks.create(db, owner, name) for name in ("locked", "free"))
    impatient = db_access.connect(connect_args={"options": "-c lock_timeout=2s"})
    with db_engine.connect() as holder:
        holder.begin()
        holder.execute(text("SELECT 1 FROM tasks WHERE id = :t FOR UPDATE"), {"t": first.id})
        claimed = tasks.claim(impatient, WORKER, 2)  # a lock wait would time out instead
        assert [t.id for t in claimed] == [second.id]
    impatient.dispose()
    assert [t.id for t in tasks.claim(db, WORKER, 2)] == [first.id]


def test_concurrent_claims_are_disjoint(db: Database, db_engine: Engine, owner: Principal) -> None:
    ids = {tasks.create(db, owner, f"t{i}").id for i in range(40)}
    barrier = threading.Barrier(4)

    def drain(name: str) -> list[uuid.UUID]:
        barrier.wait()
        got: list[uuid.UUID] = []
        while batch := tasks.claim(db, Worker(name), 3):
            got += [t.id for t in batch]
        return got

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(drain, ["a", "b", "c", "d"]))
    claimed = [task_id for got in results for task_id in got]
    assert sorted(claimed) == sorted(ids)  # every task once, none twice
    assert lifecycle_violations(db_engine) == []
