"""The embedded provider starts, serves, cleans up (also after an exception and after its
owner is killed), sweeps what dead owners left, and explains a failed start."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psycopg
import pytest

from checker.errors import InfrastructureError
from checker.provision.base import Owner
from checker.provision.embedded import DIR_PREFIX, EmbeddedProvider, base_dir, sweep_stale_dirs
from taskhub.db import libpq_url
from tests.support import answers, eventually, provider_in_child


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_starts_serves_and_leaves_nothing_behind() -> None:
    provider = EmbeddedProvider()
    with provider as server:
        assert server.provider == "embedded"
        assert server.url.host == "127.0.0.1"
        workdir, pid = provider.workdir, provider.process.pid  # type: ignore[union-attr]
        with psycopg.connect(libpq_url(server.url)) as conn:
            assert conn.execute("SELECT current_setting('fsync')").fetchone() == ("off",)
            row = conn.execute("SELECT current_setting('synchronous_commit')").fetchone()
            assert row == ("on",)
            assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
    assert workdir is not None and not workdir.exists()
    assert not _alive(pid)
    assert not answers(str(server.url.render_as_string(hide_password=False)))


def test_a_postmaster_killed_with_sigkill_leaves_no_shared_memory_behind() -> None:
    """What the reaper or a user's `kill -9` does: no /dev/shm segment may outlive it."""
    def segments() -> set[Path]:
        return set(Path("/dev/shm").glob("PostgreSQL.*"))  # noqa: S108 (only listed)

    before = segments()
    provider = EmbeddedProvider()
    with provider as server:
        with psycopg.connect(libpq_url(server.url)) as conn:
            conn.execute("SET max_parallel_workers_per_gather = 2")
            conn.execute("SELECT count(*) FROM generate_series(1, 100000)")  # may use DSM
        assert provider.process is not None
        os.kill(provider.process.pid, signal.SIGKILL)
        provider.process.wait(timeout=30)
    assert segments() - before == set()


def test_cleans_up_after_an_exception() -> None:
    provider = EmbeddedProvider()
    with pytest.raises(RuntimeError, match="boom"), provider:
        workdir, pid = provider.workdir, provider.process.pid  # type: ignore[union-attr]
        raise RuntimeError("boom")
    assert workdir is not None and not workdir.exists()
    assert not _alive(pid)


def test_a_killed_owner_takes_its_server_and_directory_with_it() -> None:
    with provider_in_child("embedded") as (child, info):
        assert answers(info["url"])
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        assert eventually(lambda: not _alive(info["server_pid"]))
        assert eventually(lambda: not Path(info["workdir"]).exists())
    assert not answers(info["url"])


def test_stale_directories_of_dead_owners_are_swept(tmp_path: Path) -> None:
    dead = tmp_path / f"{DIR_PREFIX}dead"
    alive = tmp_path / f"{DIR_PREFIX}alive"
    kept = tmp_path / f"{DIR_PREFIX}kept"
    host = Owner.me().host
    for path, owner, keep in ((dead, f"{host}:{2**22 + 12345}", False),
                              (alive, Owner.me().tag(), False),
                              (kept, f"{host}:{2**22 + 12346}", True)):
        path.mkdir()
        (path / "owner.json").write_text(json.dumps({"owner": owner, "kept": keep}))
    assert sweep_stale_dirs(tmp_path) == [dead]
    assert not dead.exists() and alive.exists() and kept.exists()


def test_a_server_that_fails_to_start_reports_its_log_and_cleans_up() -> None:
    before = set(base_dir().glob(f"{DIR_PREFIX}*"))
    provider = EmbeddedProvider(options={"shared_buffers": "lots"})
    with pytest.raises(InfrastructureError, match="shared_buffers") as failure, provider:
        pass
    assert failure.value.exit_code == 3
    assert set(base_dir().glob(f"{DIR_PREFIX}*")) <= before


def test_kept_server_survives_stop_until_removed_by_hand() -> None:
    provider = EmbeddedProvider(keep=True)
    with provider as server:
        pid, workdir = provider.process.pid, provider.workdir  # type: ignore[union-attr]
    try:
        assert answers(server.url.render_as_string(hide_password=False))
        assert str(pid) in server.stop_hint and str(workdir) in server.stop_hint
    finally:
        provider.keep = False
        provider.stop()
    assert not _alive(pid)
