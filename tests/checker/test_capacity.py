"""A run sizes the server it starts for its users, and refuses (exit 2, one line, before any
load) a server that cannot take them instead of failing operations with "too many clients"."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from checker import capacity
from checker.errors import UsageError
from checker.provision import Server
from checker.provision.embedded import EmbeddedProvider
from taskhub.db import libpq_url
from tests.checker.run_support import checker


def test_the_need_grows_with_users_and_processes() -> None:
    assert capacity.connections_needed(1000, 1) == 1250 + 4 + 10
    assert capacity.connections_needed(1000, 4) > capacity.connections_needed(1000, 1)
    assert capacity.server_options(20, 1) == {"max_connections": "400"}  # the default suffices
    assert capacity.server_options(1000, 1) == {"max_connections": "1274"}


def test_a_server_started_for_a_big_run_takes_its_connections() -> None:
    with EmbeddedProvider(options=capacity.server_options(600, 2)) as server:
        with psycopg.connect(libpq_url(server.url)) as conn:
            row = conn.execute("SHOW max_connections").fetchone()
        assert row is not None and int(row[0]) == capacity.connections_needed(600, 2) + 10
        assert capacity.require_room(libpq_url(server.url), 600, 2) >= 600


def test_a_server_too_small_is_refused(pg_server: Server) -> None:
    with pytest.raises(UsageError, match=r"connections free and --users 1000 needs about 1264"):
        capacity.require_room(libpq_url(pg_server.url), 1000, 1)


def test_the_run_is_refused_before_any_load(pg_server: Server, tmp_path: Path) -> None:
    done = checker("run", "transitions", "--dsn", libpq_url(pg_server.url), "--users", "1000",
                   "--duration", "3s", "--argon2", "test", "--report-dir", str(tmp_path))
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()[-1:]
    assert "needs about 1264" in line and "max_connections" in line
    assert not list(tmp_path.glob("*/history.jsonl")) or all(
        p.stat().st_size == 0 for p in tmp_path.glob("*/history.jsonl"))
