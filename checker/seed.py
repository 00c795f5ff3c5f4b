"""Seeding a run: tenants with known passwords (hashed before the load), pending tasks, and the
manifest that tells every load process who the tenants are.

The plan is a pure function of the spec and `--seed` (ids, emails, passwords), so a run can be
repeated exactly. Writing it is set-based (COPY) as the database owner; the passwords are
hashed on a pool of native threads first (argon2-cffi releases the GIL). Each seeded task gets
its creation event, and a `task.create` history record (process `seed`), so the history can
say it explains every task of the database (`run.start` with `complete: true`).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import string
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from gevent.threadpool import ThreadPool

from checker.history import HistoryRecord
from taskhub import passwords
from taskhub.confusables import skeleton
from taskhub.settings import Argon2Params, Settings

SEED_PROCESS = "seed"
_ALPHABET = string.ascii_letters + string.digits


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
    task_ids: tuple[str, ...]
    legacy: bool = False


@dataclass(frozen=True)
class Manifest:
    """Everything a load process needs to know about the seeded data (JSON-ready)."""

    tenants: tuple[SeedTenant, ...]
    contested: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for a Locust message or a file)."""
        return {"tenants": [[t.user_id, t.email, t.password, list(t.task_ids), t.legacy]
                            for t in self.tenants], "contested": list(self.contested)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """The inverse of `to_dict`."""
        tenants = tuple(SeedTenant(str(u), str(e), str(p), tuple(map(str, ids)), bool(legacy))
                        for u, e, p, ids, legacy in data["tenants"])
        return cls(tenants, tuple(map(str, data.get("contested", ()))))

    @property
    def task_count(self) -> int:
        """Seeded tasks in all."""
        return sum(len(t.task_ids) for t in self.tenants)


def strong_password(rng: random.Random, length: int = 20) -> str:
    """A random password zxcvbn scores 4 (used for seeds and password changes)."""
    return "".join(rng.choice(_ALPHABET) for _ in range(length))


def plan(spec: SeedSpec, seed: int) -> Manifest:
    """The tenants and tasks to seed, derived from `seed` alone."""
    rng = random.Random(seed)  # noqa: S311 - repeatable test data; secrets stay test-only
    legacy = round(spec.tenants * spec.legacy_share)
    tenants = []
    for i in range(spec.tenants):
        user = uuid.UUID(int=rng.getrandbits(128), version=4)
        tasks = tuple(str(uuid.UUID(int=rng.getrandbits(128), version=4))
                      for _ in range(spec.tasks_per_tenant))
        tenants.append(SeedTenant(str(user), f"tenant{i:04d}.s{seed}@load.test",
                                  strong_password(rng), tasks, legacy=i < legacy))
    # Contested tasks: round-robin over the tenants, so several owners are involved.
    by_round = [t.task_ids[k] for k in range(spec.tasks_per_tenant) for t in tenants]
    return Manifest(tuple(tenants), tuple(by_round[: spec.contested]))


def hash_all(manifest: Manifest, params: Argon2Params, legacy: Argon2Params) -> list[str]:
    """Every tenant's password hash, computed on native threads (one per core)."""
    pool = ThreadPool(os.cpu_count() or 2)
    try:
        jobs = [pool.spawn(passwords.hash_password, t.password,
                           Settings(argon2=legacy if t.legacy else params))
                for t in manifest.tenants]
        return [str(job.get()) for job in jobs]
    finally:
        pool.kill()


def _round_robin(manifest: Manifest) -> Iterator[tuple[SeedTenant, int, str]]:
    """Every seeded task as (tenant, its number, id): first tasks of all tenants first."""
    depth = max((len(t.task_ids) for t in manifest.tenants), default=0)
    for n in range(depth):
        for tenant in manifest.tenants:
            if n < len(tenant.task_ids):
                yield tenant, n, tenant.task_ids[n]


def write(url: str, manifest: Manifest, hashes: list[str]) -> list[HistoryRecord]:
    """Insert the users, their password history, the tasks and their creation events; return
    the `task.create` records of the seeded tasks."""
    started = time.time()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY users (id, email, email_skeleton, password_hash) FROM STDIN") as copy:
            for tenant, hashed in zip(manifest.tenants, hashes, strict=True):
                copy.write_row((tenant.user_id, tenant.email, skeleton(tenant.email), hashed))
        with cur.copy("COPY password_history (user_id, password_hash) FROM STDIN") as copy:
            for tenant, hashed in zip(manifest.tenants, hashes, strict=True):
                copy.write_row((tenant.user_id, hashed))
        # Distinct creation times, in plan order: the workers' queue is ordered by
        # (created_at, id) and indexed on (status, created_at) only, so a batch of equal
        # timestamps would make every claim sort the whole batch.
        base = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        with cur.copy("COPY tasks (id, user_id, title, created_at) FROM STDIN") as copy:
            for k, (tenant, n, task) in enumerate(_round_robin(manifest)):
                copy.write_row((task, tenant.user_id, f"seeded task {n}",
                                base + dt.timedelta(microseconds=k)))
        with cur.copy("COPY task_events (task_id, user_id, from_status, to_status, actor) "
                      "FROM STDIN") as copy:
            for tenant in manifest.tenants:
                for task in tenant.task_ids:
                    copy.write_row((task, tenant.user_id, None, "pending", SEED_PROCESS))
    ended = time.time()
    return [HistoryRecord(SEED_PROCESS, tenant.user_id, "task.create", {"title": "seeded"},
                          started, ended, "ok",
                          {"task_id": task, "owner_ids": [tenant.user_id]})
            for tenant in manifest.tenants for task in tenant.task_ids]
