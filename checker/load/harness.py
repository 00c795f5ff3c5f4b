"""What one load process shares between its simulated users: the run's setup, the runtime
pools, the history sink (the master/worker wiring is `checker.load.distributed`)."""

from __future__ import annotations

import itertools
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import gevent
import psycopg.waiting
from gevent.event import Event
from locust.env import Environment

from checker.access import RuntimeAccess
from checker.history import SEED_PASSWORD, HistoryRecord
from checker.profiles import load_settings
from checker.seed import Manifest, SeedTenant
from taskhub import passwords
from taskhub.db import Database
from taskhub.settings import Argon2Params

UNSAFE_ENV = "CHECKER_UNSAFE_TRANSITIONS"
"""Test-only switch read by the scenarios alone: workers transition by read-then-write."""
UNSAFE_EDITS_ENV = "CHECKER_UNSAFE_EDITS"
"""Test-only switch read by the scenarios alone: tenants edit by read-modify-write."""
UNSAFE_SWITCHES = {"transitions": UNSAFE_ENV, "edits": UNSAFE_EDITS_ENV}
_ATTR = "checker_harness"


def unsafe_switches() -> tuple[str, ...]:
    """The deliberately broken paths switched on in this process (`transitions`, `edits`)."""
    return tuple(name for name, variable in UNSAFE_SWITCHES.items()
                 if os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on"))


def cooperative() -> bool:
    """Whether psycopg waits cooperatively (it was imported after gevent's patching)."""
    return psycopg.waiting.wait is not getattr(psycopg.waiting, "wait_c", None)


@dataclass(frozen=True)
class Setup:
    """The run as every load process sees it; `process`/`index`/`count` differ per process."""

    access: dict[str, str]  # RuntimeAccess.to_dict(): the runtime roles' URLs, the tenant key
    scenario: str
    seed: int
    argon2: str
    jwt_secret: str
    users: int
    manifest: Manifest
    process: str = "local"
    index: int = 0
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for a Locust message."""
        return {**{k: v for k, v in vars(self).items() if k != "manifest"},
                "manifest": self.manifest.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Setup:
        """The inverse of `to_dict`."""
        return cls(**{**data, "manifest": Manifest.from_dict(data["manifest"])})

    def for_worker(self, index: int, count: int) -> Setup:
        """The setup a worker gets: its own process name and place among the workers."""
        return replace(self, process=f"w{index}", index=index, count=count)


@dataclass(frozen=True)
class Credential:
    """A password this process knows for an account, and the label the history records for
    it instead (`checker.history`: `seed`, `wrong`, or fresh per password)."""

    secret: str = field(repr=False)
    label: str

    @classmethod
    def fresh(cls, secret: str) -> Credential:
        """A new password's credential, with a label no other password has."""
        return cls(secret, new_label())


def new_label() -> str:
    """A password label no other password has (random, unrelated to any password)."""
    return uuid.uuid4().hex[:16]


class BufferSink:
    """History records kept until the worker ships them to the master."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def append(self, record: HistoryRecord) -> None:
        """Keep one record."""
        self._lines.append(record.to_json())

    def drain(self) -> list[str]:
        """The records kept so far, as JSON lines; forgets them."""
        lines, self._lines = self._lines, []
        return lines


class Sink(Protocol):
    """Anything records can be appended to (a HistoryWriter, a BufferSink)."""

    def append(self, record: HistoryRecord) -> None:
        """Keep one record."""


class Harness:
    """Per-process state: settings, the runtime pools sized to the users, the history sink,
    the tenants' current passwords, and names for simulated users."""

    def __init__(self, setup: Setup, sink: Sink) -> None:
        self.setup = setup
        self.settings = replace(load_settings(setup.argon2, setup.jwt_secret),
                                hasher=cooperative_hasher)
        # One pooled connection per simulated user in each pool (SQLAlchemy's default pool
        # stops at 15); no pre-ping: the server is ours, a dead connection shows up as an
        # error anyway.
        self.db: Database = RuntimeAccess.from_dict(setup.access).connect(
            pool_size=setup.users + 2, max_overflow=setup.users + 8, pool_pre_ping=False,
            pool_timeout=60)
        self.sink = sink
        self.rng = random.Random(f"{setup.seed}:{setup.process}")  # noqa: S311 - load choices
        switched = unsafe_switches()
        self.unsafe = "transitions" in switched
        self.unsafe_edits = "edits" in switched
        self.passwords = {t.user_id: Credential(t.password, SEED_PASSWORD)
                          for t in setup.manifest.tenants}
        self.locks: dict[str, Any] = {}
        self.created: list[tuple[str, str]] = []  # (task id, owner) created in this process
        self.shared: dict[str, Any] = {}  # scenario state shared by this process's users
        self._names = itertools.count(1)
        self._tenants = itertools.count(setup.index)

    @property
    def tenants(self) -> tuple[SeedTenant, ...]:
        """The seeded tenants."""
        return self.setup.manifest.tenants

    def name(self) -> str:
        """A new simulated user's process name, e.g. `w1-u7`."""
        return f"{self.setup.process}-u{next(self._names)}"

    def next_tenant(self) -> SeedTenant:
        """Tenants handed out round-robin; processes start at different offsets."""
        return self.tenants[next(self._tenants) % len(self.tenants)]

    def owned_here(self, position: int) -> bool:
        """Whether the tenant at `position` is this process's to rotate passwords for."""
        return position % self.setup.count == self.setup.index

    def lock(self, key: str) -> Any:
        """A per-key gevent lock (one simulated user at a time changes a password)."""
        from gevent.lock import Semaphore

        return self.locks.setdefault(key, Semaphore())

    def close(self) -> None:
        """Close every pooled connection."""
        self.db.dispose()


def attach(environment: Environment, harness: Harness) -> None:
    """Make the harness the one this environment's users find."""
    setattr(environment, _ATTR, harness)
    event = getattr(environment, "checker_ready", None)
    if isinstance(event, Event):
        event.set()


def harness_of(environment: Environment, timeout: float = 60.0) -> Harness:
    """The environment's harness, waiting for a worker's setup message if it is not there."""
    harness = getattr(environment, _ATTR, None)
    if harness is None:
        event = getattr(environment, "checker_ready", None)
        if not isinstance(event, Event):
            event = Event()
            environment.checker_ready = event  # type: ignore[attr-defined]
        event.wait(timeout)
        harness = getattr(environment, _ATTR, None)
    if not isinstance(harness, Harness):
        raise RuntimeError("no checker setup reached this process (is the master a checker?)")
    return harness




def _on_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` on gevent's native thread pool; its exception re-raised here (the pool
    would otherwise print it as an unhandled error)."""
    def run() -> tuple[bool, Any]:
        try:
            return True, fn(*args)
        except Exception as exc:
            return False, exc

    ok, value = gevent.get_hub().threadpool.apply(run)
    if not ok:
        raise value
    return value


class CooperativeHasher:
    """argon2-cffi's hasher with the costly calls run on gevent's native thread pool, so one
    hash (up to ~230 ms of CPU) does not stop every other simulated user."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def hash(self, password: str) -> str:
        """Hash on a native thread."""
        return str(_on_thread(self._inner.hash, password))

    def verify(self, stored: str, password: str) -> bool:
        """Verify on a native thread (raises like argon2-cffi)."""
        return bool(_on_thread(self._inner.verify, stored, password))

    def check_needs_rehash(self, stored: str) -> bool:
        """Cheap: no thread."""
        return bool(self._inner.check_needs_rehash(stored))


def cooperative_hasher(params: Argon2Params) -> CooperativeHasher:
    """taskhub's hasher for `params`, its costly calls on gevent's native thread pool (one
    thread per core): the `Settings.hasher` of every load process."""
    pool = gevent.get_hub().threadpool
    if pool.maxsize < (cores := max(os.cpu_count() or 2, 2)):
        pool.maxsize = cores
    return CooperativeHasher(passwords.hasher(params))
