"""Seeding a run: tenants with known passwords (hashed before the load), pending tasks, and the
manifest that tells every load process who the tenants are.

The plan is a pure function of the spec and `--seed` (ids, emails, passwords), so a run can be
repeated exactly. A seeded task's id is derived, not drawn (`checker.history.seeded_task_id`:
the MD5 of `"{seed}:{tenant}:{n}"` as a UUID, which PostgreSQL computes identically). So the
tasks and their creation events are made on the server by set-based statements (`INSERT ...
SELECT ... generate_series`, one connection per core, each a share of the tenants), the
manifest carries a count per tenant instead of a million ids, the load processes derive the
ids they need, and the history says what was seeded in one `task.seed` record per tenant
(process `seed`), so it can claim to explain every task of the database (`run.start` with
`complete: true`). Users are COPYed as the database owner; their passwords are hashed once per
distinct password and parameter set, on a pool of native threads (argon2-cffi releases the GIL).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import string
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, overload

import psycopg
from gevent.threadpool import ThreadPool

from checker.history import (
    SEEDED_TASK_ID_SQL,
    TASK_SEED,
    HistoryRecord,
    HistoryWriter,
    seeded_task_id,
)
from taskhub import passwords
from taskhub.confusables import skeleton
from taskhub.settings import Argon2Params, Settings

SEED_PROCESS = "seed"
_ALPHABET = string.ascii_letters + string.digits
_TASK_ID = SEEDED_TASK_ID_SQL.format(seed="%(seed)s::bigint", number="(%(first)s + t.number - 1)",
                                     n="n")


@dataclass(frozen=True)
class SeededTaskIds(Sequence[str]):
    """A tenant's seeded task ids, derived on demand (`seeded_task_id`)."""

    seed: int
    tenant: int
    size: int

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.size))]
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError("seeded task index out of range")
        return seeded_task_id(self.seed, self.tenant, index)


@dataclass(frozen=True)
class SeedSpec:
    """How much to seed: tenants, pending tasks each, the share of tenants whose hash must be
    re-hashed at login, and how many tasks transition workers deliberately race for."""

    tenants: int = 20
    tasks_per_tenant: int = 10
    legacy_share: float = 0.0
    contested: int = 0


@dataclass(frozen=True)
class SeedTenant:
    """A seeded user: its id, email, current password and seeded task ids."""

    user_id: str
    email: str
    password: str
    task_ids: Sequence[str] = field(default=())
    legacy: bool = False


@dataclass(frozen=True)
class Manifest:
    """Everything a load process needs to know about the seeded data (JSON-ready)."""

    seed: int
    tenants: tuple[SeedTenant, ...]
    tasks_per_tenant: int
    contested: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for a Locust message or a file): the ids as the seed derives them."""
        return {"seed": self.seed, "tasks_per_tenant": self.tasks_per_tenant,
                "tenants": [[t.user_id, t.email, t.password, t.legacy] for t in self.tenants],
                "contested": list(self.contested)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """The inverse of `to_dict`."""
        seed, per = int(data["seed"]), int(data["tasks_per_tenant"])
        tenants = tuple(SeedTenant(str(u), str(e), str(p), SeededTaskIds(seed, i, per),
                                   bool(legacy))
                        for i, (u, e, p, legacy) in enumerate(data["tenants"]))
        return cls(seed, tenants, per, tuple(map(str, data.get("contested", ()))))

    @property
    def task_count(self) -> int:
        """Seeded tasks in all."""
        return len(self.tenants) * self.tasks_per_tenant


def strong_password(rng: random.Random, length: int = 20) -> str:
    """A random password zxcvbn scores 4 (used for seeds and password changes)."""
    return "".join(rng.choice(_ALPHABET) for _ in range(length))


def plan(spec: SeedSpec, seed: int) -> Manifest:
    """The tenants and tasks to seed, derived from `seed` alone."""
    rng = random.Random(seed)  # noqa: S311 - repeatable test data; secrets stay test-only
    legacy = round(spec.tenants * spec.legacy_share)
    tenants = tuple(
        SeedTenant(str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                   f"tenant{i:04d}.s{seed}@load.test", strong_password(rng),
                   SeededTaskIds(seed, i, spec.tasks_per_tenant), legacy=i < legacy)
        for i in range(spec.tenants))
    # Contested tasks: round-robin over the tenants, so several owners are involved.
    contested = min(spec.contested, len(tenants) * spec.tasks_per_tenant)
    return Manifest(seed, tenants, spec.tasks_per_tenant,
                    tuple(seeded_task_id(seed, k % len(tenants), k // len(tenants))
                          for k in range(contested)))


def hash_all(manifest: Manifest, params: Argon2Params, legacy: Argon2Params) -> list[str]:
    """Every tenant's password hash: one per distinct (password, parameters), computed on
    native threads (one per core)."""
    wanted = [(t.password, legacy if t.legacy else params) for t in manifest.tenants]
    pool = ThreadPool(os.cpu_count() or 2)
    try:
        jobs = {key: pool.spawn(passwords.hash_password, key[0], Settings(argon2=key[1]))
                for key in dict.fromkeys(wanted)}
        hashed = {key: str(job.get()) for key, job in jobs.items()}
    finally:
        pool.kill()
    return [hashed[key] for key in wanted]


_SEED_TASKS = f"""
    WITH created AS (
        INSERT INTO tasks (id, user_id, title, created_at)
        SELECT {_TASK_ID}, t.id, 'seeded task ' || n,
               %(base)s + (n::bigint * %(tenants)s + %(first)s + t.number - 1)
                          * interval '1 microsecond'
        FROM unnest(%(users)s::uuid[]) WITH ORDINALITY AS t (id, number),
             generate_series(0, %(per)s - 1) AS n
        ORDER BY n, t.number
        RETURNING id, user_id)
    INSERT INTO task_events (task_id, user_id, from_status, to_status, actor)
    SELECT id, user_id, NULL, 'pending', %(actor)s FROM created"""
"""The seeded tasks of the tenants numbered `first` on (`users`) and their creation events, in
one statement. Creation times are distinct
and in round-robin order (first tasks of all tenants first): the workers' queue is ordered by
(created_at, id) and indexed on (status, created_at) only, so a batch of equal timestamps
would make every claim sort the whole batch."""


def write(url: str, manifest: Manifest, hashes: list[str]) -> tuple[float, float]:
    """Insert the users, their password history, the tasks and their creation events; the
    epoch seconds the seeding started and ended (the seed records' `start` and `end`)."""
    started = time.time()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY users (id, email, email_skeleton, password_hash) FROM STDIN") as copy:
            for tenant, hashed in zip(manifest.tenants, hashes, strict=True):
                copy.write_row((tenant.user_id, tenant.email, skeleton(tenant.email), hashed))
        with cur.copy("COPY password_history (user_id, password_hash) FROM STDIN") as copy:
            for tenant, hashed in zip(manifest.tenants, hashes, strict=True):
                copy.write_row((tenant.user_id, hashed))
    if manifest.task_count:
        base = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        parts = min(len(manifest.tenants), os.cpu_count() or 2)
        with ThreadPoolExecutor(parts) as pool:
            for done in [pool.submit(_seed_tasks, url, manifest, base, k, parts)
                         for k in range(parts)]:
                done.result()
    ended = time.time()
    # Statistics and hint bits now, not by autovacuum in the middle of the load (the queue's
    # claims would be planned without statistics, and the audit would pay the hint bits).
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) users, password_history, tasks, task_events")
    return started, ended


def _seed_tasks(url: str, manifest: Manifest, base: dt.datetime, part: int,
                parts: int) -> None:
    """Part `part` of `parts` of the tenants' tasks and events, on a connection of its own
    (the server inserts on every core; under gevent the pool's threads are greenlets and
    psycopg yields while the server works)."""
    size = -(-len(manifest.tenants) // parts)
    first = part * size
    tenants = manifest.tenants[first:first + size]
    if not tenants:
        return
    with psycopg.connect(url) as conn:
        conn.execute(_SEED_TASKS, {
            "seed": manifest.seed, "tenants": len(manifest.tenants), "first": first,
            "per": manifest.tasks_per_tenant, "actor": SEED_PROCESS, "base": base,
            "users": [t.user_id for t in tenants]})


def seed_records(manifest: Manifest, started: float, ended: float) -> list[HistoryRecord]:
    """The seed's history: one `task.seed` record per tenant."""
    return [HistoryRecord(SEED_PROCESS, t.user_id, TASK_SEED,
                          {"seed": manifest.seed, "tenant_number": number,
                           "count": manifest.tasks_per_tenant, "title": "seeded"},
                          started, ended, "ok", {"owner_ids": [t.user_id]})
            for number, t in enumerate(manifest.tenants)]


def seed_database(url: str, manifest: Manifest, hashes: list[str],
                  history: HistoryWriter) -> None:
    """`write`, then the seed's records appended to `history`."""
    for record in seed_records(manifest, *write(url, manifest, hashes)):
        history.append(record)
