"""A valid, busy database generated set-based: what a clean audit must pass.

Used by the tests (a clean database passes every check) and by the benchmark (100k and 1M
tasks), with `matching_history`, the history that explains it. Everything is one
`INSERT ... SELECT generate_series(...)` per table, run as the owner.
Ids are derived from the row number (`md5('t' || i)::uuid`), so a test can name a row.

Shape: user `i` owns tasks `i, i + users, i + 2 * users, ...`; task `i` ends in status
`STATUS_CYCLE[i % 10]` and has the legal events leading there (1 to 3), `version` = events.
Every user has one earlier password in `password_history`, one live session created after the
last password change, one revoked and one expired; every 7th user must change a temporary
password (with an expiry).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass

import psycopg

from checker.history import HistoryRecord, digest

STATUS_CYCLE = ("pending", "processing", "processing", "completed", "completed",
                "completed", "completed", "completed", "failed", "failed")
"""Final status of task i is STATUS_CYCLE[i % 10]: every state, mostly terminal."""

ARGON2_PARAMS = "m=1024,t=1,p=1"
"""The test profile (taskhub.settings.TEST_ARGON2); audit with the matching minimum."""


@dataclass(frozen=True)
class Population:
    """How much to generate."""

    users: int = 20
    tasks: int = 200


def user_id(i: int) -> uuid.UUID:
    """Id of the i-th generated user (1-based)."""
    return uuid.UUID(hashlib.md5(f"u{i}".encode()).hexdigest())  # noqa: S324 - ids, not security


def task_id(i: int) -> uuid.UUID:
    """Id of the i-th generated task (1-based)."""
    return uuid.UUID(hashlib.md5(f"t{i}".encode()).hexdigest())  # noqa: S324 - ids, not security


def task_owner(i: int, population: Population) -> uuid.UUID:
    """The owner of task i."""
    return user_id((i - 1) % population.users + 1)


def final_status(i: int) -> str:
    """The status task i ends in."""
    return STATUS_CYCLE[i % 10]


def fake_argon2id(seed: str, params: str = ARGON2_PARAMS) -> str:
    """A well-formed Argon2id PHC string (not the hash of any password) for `seed`."""
    digest = hashlib.sha256(seed.encode()).digest()
    salt = base64.b64encode(digest[:16]).decode().rstrip("=")
    tag = base64.b64encode(digest).decode().rstrip("=")
    return f"$argon2id$v=19${params}${salt}${tag}"


# SQL twins of the helpers above; `%(params)s` is bound.
_HASH_SQL = ("'$argon2id$v=19$' || %(params)s || '$' "
             "|| rtrim(encode(decode(md5({seed}), 'hex'), 'base64'), '=') || '$' "
             "|| rtrim(encode(sha256(convert_to({seed}, 'UTF8')), 'base64'), '=')")
_STATUS_SQL = ("(ARRAY[" + ", ".join(f"'{s}'" for s in STATUS_CYCLE) + "])[i %% 10 + 1]")

_USERS = f"""
INSERT INTO users (id, email, password_hash, must_change_password, temp_password_expires_at,
                   password_changed_at, created_at, updated_at)
SELECT md5('u' || i)::uuid, 'user' || i || '@example.com', {_HASH_SQL.format(seed="'u' || i")},
       i %% 7 = 0, CASE WHEN i %% 7 = 0 THEN now() + interval '1 day' END,
       now() - interval '1 day', now() - interval '30 days', now() - interval '1 day'
FROM generate_series(1, %(users)s) AS i"""

_PASSWORD_HISTORY = f"""
INSERT INTO password_history (user_id, password_hash, created_at)
SELECT md5('u' || i)::uuid, {_HASH_SQL.format(seed="'old' || i")}, now() - interval '30 days'
FROM generate_series(1, %(users)s) AS i"""

_SESSIONS = """
INSERT INTO auth_sessions (user_id, created_at, expires_at, revoked_at)
SELECT md5('u' || i)::uuid, s.created_at, s.expires_at, s.revoked_at
FROM generate_series(1, %(users)s) AS i,
     (VALUES (now() - interval '1 hour', now() + interval '1 hour', NULL::timestamptz),
             (now() - interval '2 days', now() + interval '1 hour', now() - interval '1 day'),
             (now() - interval '3 days', now() - interval '2 days', NULL)
     ) AS s (created_at, expires_at, revoked_at)"""

_TASKS = f"""
INSERT INTO tasks (id, user_id, title, payload, status, result, error, version,
                   created_at, updated_at)
SELECT md5('t' || i)::uuid, md5('u' || ((i - 1) %% %(users)s + 1))::uuid, 'task ' || i,
       jsonb_build_object('n', i), st,
       CASE WHEN st = 'completed' THEN jsonb_build_object('n', i) END,
       CASE WHEN st = 'failed' THEN 'failed on purpose' END,
       CASE st WHEN 'pending' THEN 1 WHEN 'processing' THEN 2 ELSE 3 END,
       now() - interval '1 hour', now()
FROM generate_series(1, %(tasks)s) AS i, LATERAL (SELECT {_STATUS_SQL} AS st) AS s"""

# One statement per step, as a real run interleaves them: creations, then claims, then ends.
_EVENTS = f"""
INSERT INTO task_events (task_id, user_id, from_status, to_status, actor, at)
SELECT md5('t' || i)::uuid, md5('u' || ((i - 1) %% %(users)s + 1))::uuid, step.from_status,
       CASE WHEN step.n = 3 THEN st ELSE step.to_status END, step.actor,
       now() - interval '1 hour' + step.n * interval '1 second'
FROM generate_series(1, %(tasks)s) AS i, LATERAL (SELECT {_STATUS_SQL} AS st) AS s,
     (VALUES (1, NULL, 'pending', 'client'), (2, 'pending', 'processing', 'worker'),
             (3, 'processing', NULL, 'worker')) AS step (n, from_status, to_status, actor)
WHERE step.n = %(step)s AND (step.n = 1 OR st <> 'pending') AND (step.n < 3 OR st IN
      ('completed', 'failed'))"""


def populate(conn: psycopg.Connection[tuple[object, ...]], population: Population,
             argon2_params: str = ARGON2_PARAMS) -> None:
    """Insert the population into an empty migrated database (the caller commits)."""
    params = {"users": population.users, "tasks": population.tasks, "params": argon2_params}
    for statement in (_USERS, _PASSWORD_HISTORY, _SESSIONS, _TASKS):
        conn.execute(statement, params)
    for step in (1, 2, 3):
        conn.execute(_EVENTS, {**params, "step": step})


def matching_history(population: Population, *, start: float,
                     complete: bool = True) -> list[HistoryRecord]:
    """A history that explains a freshly populated database exactly: a run.start at `start`,
    one ok create per task by its owner (with what it wrote), and the ok transitions (claims
    by a worker for every third task) that led each task to its status."""
    t = start
    records = [HistoryRecord.run_start("runner", t, complete=complete, scenario="synthetic")]
    for i in range(1, population.tasks + 1):
        tid, tenant = str(task_id(i)), str(task_owner(i, population))
        t += 0.001
        records.append(HistoryRecord(f"client-{tenant[:4]}", tenant, "task.create",
                                     {"title": f"task {i}", "wrote": {
                                         "title": digest(f"task {i}"),
                                         "payload": digest({"n": i})}},
                                     t, t + 0.0005, "ok",
                                     {"task_id": tid, "owner_ids": [tenant]}))
        status = final_status(i)
        if status == "pending":
            continue
        if i % 3 == 0:
            records.append(HistoryRecord("worker-1", None, "task.claim", {"n": 1}, t, t, "ok",
                                         {"task_ids": [tid]}))
        else:
            records.append(transition_record(i, "pending", "processing", at=t))
        if status in ("completed", "failed"):
            records.append(transition_record(i, "processing", status, at=t))
    return records


def transition_record(i: int, from_status: str, to_status: str, *, at: float,
                      outcome: str = "ok", process: str = "worker-1") -> HistoryRecord:
    """A worker's transition record of task i."""
    return HistoryRecord(process, None, "task.transition",
                         {"task_id": str(task_id(i)), "from_status": from_status,
                          "to_status": to_status}, at, at, outcome,  # type: ignore[arg-type]
                         {"task_ids": [str(task_id(i))]} if outcome == "ok" else {})
