"""Durability: what was committed before a crash is all there after restart; nothing else is.

Each test starts a server of its own (not the session's): the embedded one is crashed with an
immediate shutdown (SIGQUIT to the postmaster), the container with `docker kill` (SIGKILL to
PID 1); both restart on the same data directory, which for the container means one started
without the usual tmpfs (Docker empties a tmpfs when a container stops). At the moment of the
crash a writer is committing tasks in a loop, two transactions hold uncommitted writes, and a
registration waits just before its COMMIT. With `synchronous_commit=on` every acknowledged
commit must survive; the in-flight one may go either way; the uncommitted ones must vanish.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import URL, Engine, text

from checker import migrate
from checker.access import RuntimeAccess
from checker.janitor import DatabaseJanitor
from checker.provision import PROVIDERS, Capability, Provider, Server
from checker.provision.embedded import EmbeddedProvider
from taskhub import auth, tasks, tokens, users
from taskhub.db import Database, make_engine
from taskhub.errors import StorageError, TaskhubError
from taskhub.principal import Principal, Worker
from taskhub.settings import Settings
from tests.integration.faults import snapshot
from tests.integration.helpers import lifecycle_violations, password
from tests.integration.interleave import Pause, in_thread
from tests.support import needs_docker

RECOVERED = "automatic recovery in progress"  # logged only when the last shutdown was a crash


@dataclass
class CrashableServer:
    """A dedicated server, the way to crash it, and the way to start it again."""

    provider: Provider
    server: Server

    def crash(self) -> None:
        self.provider.crash()

    def restart(self) -> None:
        self.server = self.provider.restart()

    def log(self) -> str:
        return self.provider.server_log()


@pytest.fixture(params=[pytest.param("embedded"),
                        pytest.param("container", marks=needs_docker)])
def crashable(request: pytest.FixtureRequest) -> Iterator[CrashableServer]:
    provider = PROVIDERS[request.param]()
    provider.prepare(frozenset({Capability.CRASH}))
    with provider as server:
        yield CrashableServer(provider, server)


def _database(server: Server) -> tuple[URL, RuntimeAccess]:
    """A migrated database (its owner's URL) and its runtime access (login roles, key)."""
    janitor = DatabaseJanitor(server.url)
    try:
        url = janitor.create()
        migrate.upgrade(url)
        assert url.database is not None
        access = janitor.runtime_access(url.database)
    finally:
        janitor.close()
    return url, access


def _committed_state(db: Database, settings: Settings) -> tuple[Principal, list[Any]]:
    """Two users with live sessions and tasks in every status, all committed."""
    principals = []
    for n in (1, 2):
        email = f"durable{n}@example.com"
        users.register(db, settings, email, password(n))
        principals.append(tokens.verify(db, settings,
                                        auth.login(db, settings, email, password(n))))
    ids = [tasks.create(db, p, f"task {i}").id for i, p in enumerate(principals * 3)]
    tasks.start(db, Worker("w"), ids[0])
    tasks.complete(db, Worker("w"), tasks.start(db, Worker("w"), ids[1]).id, {"ok": 1})
    tasks.fail(db, Worker("w"), tasks.start(db, Worker("w"), ids[2]).id, "boom")
    return principals[0], ids


def _titles(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {title: task_id for task_id, title in conn.execute(
            text("SELECT id, title FROM tasks"))}


def test_committed_survives_a_crash_and_uncommitted_does_not(
        crashable: CrashableServer, settings: Settings) -> None:
    url, access = _database(crashable.server)
    engine = make_engine(url)  # the owner's: to look, and to hold uncommitted writes
    db, held = access.connect(), access.connect()  # the services'; `held` is paused
    for each in (engine, db.app, db.worker):
        with each.connect() as conn:
            assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
    owner, ids = _committed_state(db, settings)
    committed = snapshot(engine)

    acknowledged: list[Any] = []
    in_flight: list[str] = []
    enough = threading.Event()

    def writer() -> None:
        """Commit tasks until the server dies; remember which commits were acknowledged."""
        for i in range(100_000):
            in_flight.append(f"written {i}")
            try:
                acknowledged.append(tasks.create(db, owner, f"written {i}").id)
            except TaskhubError:
                return
            in_flight.pop()
            if len(acknowledged) >= 20:
                enough.set()

    open_tx = engine.connect()
    with ThreadPoolExecutor(2) as pool, Pause(held, "before_commit") as pause:
        writing = pool.submit(writer)
        open_tx.begin()  # uncommitted: a new task and an edit of a committed one
        open_tx.execute(text("INSERT INTO tasks (user_id, title) VALUES (:u, 'uncommitted')"),
                        {"u": owner.user_id})
        open_tx.execute(text("UPDATE tasks SET title = 'uncommitted edit' WHERE id = :t"),
                        {"t": ids[3]})
        registering = in_thread(pool, lambda: users.register(
            held, settings, "never@example.com", password(9)))
        pause.wait_reached()
        assert enough.wait(30)
        crashable.crash()
        open_tx.invalidate()  # its session died with the server: nothing to roll back
        pause.release()
        assert isinstance(registering.result(timeout=30), StorageError)
        writing.result(timeout=30)
    engine.dispose()
    db.dispose()
    held.dispose()

    crashable.restart()
    assert RECOVERED in crashable.log()  # a crash, not a clean shutdown
    host, port = crashable.server.url.host, crashable.server.url.port
    after = make_engine(url.set(host=host, port=port))
    after_db = Database.connect(access.app_url.set(host=host, port=port),
                                access.worker_url.set(host=host, port=port), access.tenant_key)
    try:
        survived = snapshot(after)
        for table, rows in committed.items():  # rows hold dicts (jsonb): compare as lists
            assert [r for r in rows if r not in survived[table]] == [], f"{table}: rows lost"
        titles = _titles(after)
        assert set(acknowledged) <= set(titles.values()), "an acknowledged commit was lost"
        before = {row[2] for row in committed["tasks"]}  # (id, user_id, title, ...)
        written = {f"written {i}" for i in range(len(acknowledged))}
        assert set(titles) - before - written <= set(in_flight)  # only the commit the crash cut
        assert not {"uncommitted", "uncommitted edit"} & set(titles)
        with after.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM users WHERE email = "
                                     "'never@example.com'")).scalar_one() == 0
        assert lifecycle_violations(after) == []
        tasks.create(after_db, owner, "after the restart")  # and the database works on
    finally:
        after.dispose()
        after_db.dispose()


def test_without_synchronous_commit_the_same_crash_loses_acknowledged_commits() -> None:
    """The control: the check above has teeth. Commits acknowledged with
    `synchronous_commit=off` are only in WAL buffers until the WAL writer runs (here every
    10 s), so the crash takes the latest of them; committed with it on, none are lost."""
    provider = EmbeddedProvider(options={"wal_writer_delay": "10000ms"})
    with provider as server:
        url, _ = _database(server)
        with make_engine(url).begin() as conn:
            conn.execute(text("CREATE TABLE acknowledged (n int, synchronous bool)"))
        for synchronous in (True, False):
            engine = make_engine(url, connect_args={
                "options": f"-c synchronous_commit={'on' if synchronous else 'off'}"})
            for n in range(50):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO acknowledged VALUES (:n, :s)"),
                                 {"n": n, "s": synchronous})
            engine.dispose()
        provider.crash()
        after = make_engine(url.set(port=provider.restart().url.port))
        with after.connect() as conn:
            counts: dict[bool, int] = dict(conn.execute(text(
                "SELECT synchronous, count(*) FROM acknowledged GROUP BY synchronous")).all())
        after.dispose()
    assert counts.get(True) == 50
    assert counts.get(False, 0) < 50
