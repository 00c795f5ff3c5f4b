"""Seeding a run: tenants with known passwords (hashed before the load), pending tasks, and the
manifest that tells every load process who the tenants are.

The plan is a pure function of the spec and `--seed` (ids, emails, passwords), so a run can be
repeated exactly. A seeded task's id is derived, not drawn: `task_id(seed, tenant, n)`, the MD5
of `"{seed}:{tenant}:{n}"` as a UUID, which PostgreSQL computes identically. So the tasks and
their creation events are made on the server by one set-based statement (`INSERT ... SELECT
... generate_series`), the manifest carries a count per tenant instead of a million ids, and
the load processes derive the ids they need. Users are COPYed as the database owner; their
passwords are hashed once per distinct password and parameter set, on a pool of native threads
(argon2-cffi releases the GIL). Each seeded task gets a `task.create` history record (process
`seed`), so the history can say it explains every task of the database (`run.start` with
`complete: true`); those lines are written from a template, without a `HistoryRecord` each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import string
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, overload

import psycopg
from gevent.threadpool import ThreadPool

from checker.history import HistoryWriter
from taskhub import passwords
from taskhub.confusables import skeleton
from taskhub.settings import Argon2Params, Settings

SEED_PROCESS = "seed"
_ALPHABET = string.ascii_letters + string.digits
HISTORY_CHUNK = 20_000
"""Seed records written to the history per write."""


def task_id(seed: int, tenant: int, n: int) -> str:
    """The id of tenant number `tenant`'s seeded task number `n` (SQL: `_TASK_ID`)."""
    hexed = hashlib.md5(f"{seed}:{tenant}:{n}".encode(), usedforsecurity=False).hexdigest()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


_TASK_ID = "md5(%(seed)s::text || ':' || (%(first)s + t.number - 1) || ':' || n)::uuid"
"""`task_id` in SQL, over `%(first)s + t.number - 1` (the tenant's number) and `n`."""


@dataclass(frozen=True)
class SeededTaskIds(Sequence[str]):
    """A tenant's seeded task ids, derived on demand (`task_id`)."""

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
        return task_id(self.seed, self.tenant, index)


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
                    tuple(task_id(seed, k % len(tenants), k // len(tenants))
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
    return started, time.time()


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


def record_lines(manifest: Manifest, started: float, ended: float) -> Iterator[str]:
    """The `task.create` record of every seeded task, as `HistoryRecord.to_json` writes it."""
    when = f'"start":{started!r},"end":{ended!r}'
    for tenant in manifest.tenants:
        head = (f'{{"process":"{SEED_PROCESS}","tenant":"{tenant.user_id}","op":"task.create",'
                f'"args":{{"title":"seeded"}},{when},"outcome":"ok","observed":{{"task_id":"')
        tail = f'","owner_ids":["{tenant.user_id}"]}},"error":null}}'
        for task in tenant.task_ids:
            yield head + task + tail


def seed_database(url: str, manifest: Manifest, hashes: list[str],
                  history: HistoryWriter) -> None:
    """`write`, then the seed's records appended to `history`."""
    started, ended = write(url, manifest, hashes)
    lines = record_lines(manifest, started, ended)
    while chunk := [line for _, line in zip(range(HISTORY_CHUNK), lines, strict=False)]:
        history.append_lines(chunk)

