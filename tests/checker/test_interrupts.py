"""Ctrl-C as a terminal sends it: SIGINT to the command's whole process group (servers, initdb
and workers included, unless they run in a session of their own), at each phase. The run
still audits what happened, writes the full report, removes what it created and exits 130 with
one line and no traceback; a second Ctrl-C skips the audit but still cleans up; `explore`
treats a Ctrl-C during its load as its normal end; `db up` removes its database."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import psycopg
import pytest

from checker.interrupts import Interrupts
from checker.provision import Server
from checker.provision.base import Owner, free_port
from checker.provision.embedded import base_dir, owned_dirs
from taskhub.db import libpq_url
from tests.checker.run_support import Run, started
from tests.support import eventually, needs_docker

QUICK = ("--users", "6", "--spawn-rate", "50", "--argon2", "test", "--seed", "5",
         "--stop-timeout", "5s")
BIG_SEED = ("--tenants", "40", "--tasks-per-tenant", "1000")  # 40k tasks: a second or two


def _run(reports: Path, code: int, out: str, err: str) -> Run:
    folders = sorted(reports.glob("*-concurrency"))
    return Run(code, out, err, folders[-1] if folders else None)


def assert_wound_down(run: Run, phases: set[str], *, audited: bool = True) -> None:
    """Exit 130, one closing line, no traceback, the whole report, the phase recorded."""
    everything = run.stdout + run.stderr
    assert run.returncode == 130, everything[-4000:]
    assert "Traceback" not in everything, everything[-4000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIGINT during "), last
    assert run.folder is not None
    for name in ("summary.json", "report.html", "locust.html", "history.jsonl"):
        assert (run.folder / name).is_file(), name
    summary = run.summary
    assert summary["parameters"]["interrupted"] is True
    assert summary["parameters"]["interrupted_in"] in phases, summary["parameters"]
    assert summary["audit"]["skipped"] is not audited
    if audited:
        assert summary["audit"]["ok"], summary["audit"]
        assert "audit clean" in last
    else:
        assert not summary["ok"] and "audit skipped" in last
        assert any("audit was skipped" in p for p in summary["problems"])


def database_gone(server: Server, name: str) -> bool:
    with psycopg.connect(libpq_url(server.url)) as conn:
        rows = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s UNION ALL "
                            "SELECT 1 FROM pg_roles WHERE rolname LIKE %s",
                            (name, name + "\\_%")).fetchall()
    return not rows


def owned_by(pid: int, server: Server) -> list[str]:
    """Databases on `server` that process `pid` of this host created (their comment)."""
    tag = f"taskhub-checker owner={Owner(socket.gethostname(), pid).tag()}"
    with psycopg.connect(libpq_url(server.url)) as conn:
        rows = conn.execute("SELECT datname FROM pg_database "
                            "WHERE shobj_description(oid, 'pg_database') = %s", (tag,))
        return [str(r[0]) for r in rows.fetchall()]


def embedded_dirs_of(pid: int) -> list[Path]:
    """Data directories of embedded servers that process `pid` started."""
    mine = Owner(socket.gethostname(), pid).tag()
    return [workdir for workdir, meta in owned_dirs(base_dir()) if meta.get("owner") == mine]


@pytest.mark.parametrize(("phase", "after", "phases"), [
    # The signal lands in the phase asked for, or (on a fast machine) in a later one.
    ("provision", None, {"provision", "migrate", "seed"}),  # its database exists: migrating
    ("seed", "seeding", {"seed", "load"}),
    ("load", "users running", {"load"}),
])
def test_one_ctrl_c_in_each_phase_audits_reports_and_cleans_up(
        pg_server: Server, tmp_path: Path, phase: str, after: str | None,
        phases: set[str]) -> None:
    seed = BIG_SEED if phase == "seed" else ()
    with started("run", "concurrency", "--dsn", libpq_url(pg_server.url), "--report-dir",
                 str(tmp_path), "--duration", "120s", *QUICK, *seed) as job:
        if after is None:
            job.when(lambda: bool(owned_by(job.proc.pid, pg_server)))
        else:
            job.wait_for(after)
        job.ctrl_c()
        run = _run(tmp_path, *job.finish())
        pid = job.proc.pid
    assert_wound_down(run, phases)
    assert database_gone(pg_server, run.summary["parameters"]["database"])
    assert owned_by(pid, pg_server) == []
    ran = run.summary["totals"]["requests"]
    if run.summary["parameters"]["interrupted_in"] != "load":  # nothing was tested
        assert ran == 0 and not run.summary["ok"]
        assert "no load ran" in run.stderr.strip().splitlines()[-1]
    if phase == "load":
        assert ran > 0


def test_a_second_ctrl_c_skips_the_audit_but_still_cleans_up(pg_server: Server,
                                                             tmp_path: Path) -> None:
    with started("run", "concurrency", "--dsn", libpq_url(pg_server.url), "--report-dir",
                 str(tmp_path), "--duration", "120s", *QUICK) as job:
        job.wait_for("users running")
        job.ctrl_c()
        job.wait_for("winding down")  # the first one has been handled
        job.ctrl_c()
        run = _run(tmp_path, *job.finish())
    assert_wound_down(run, {"load"}, audited=False)
    assert "second interrupt" in run.stderr
    assert database_gone(pg_server, run.summary["parameters"]["database"])


def test_a_second_interrupt_during_the_audit_cuts_it_short() -> None:
    """In this process: the handler raises only for the second signal, only in the audit
    (the pipeline then reports the audit skipped); before that it only takes note."""
    interrupts = Interrupts()
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        interrupts.install()
        interrupts.enter("audit")
        os.kill(os.getpid(), signal.SIGINT)
        assert eventually(lambda: interrupts.requested, 5)
        assert (interrupts.arrived_in, interrupts.skip_audit) == ("audit", False)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            eventually(lambda: False, 5)  # the handler raises here, at the next bytecode
        assert interrupts.skip_audit
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def test_ctrl_c_reaches_neither_the_embedded_server_nor_initdb(tmp_path: Path) -> None:
    for early in (True, False):
        reports = tmp_path / str(early)
        with started("run", "concurrency", "--db", "embedded", "--report-dir", str(reports),
                     "--duration", "120s", *QUICK) as job:
            if early:  # its data directory exists: initdb or the server is starting
                job.when(lambda: bool(embedded_dirs_of(job.proc.pid)))
            else:
                job.wait_for("users running")
            job.ctrl_c()
            run = _run(reports, *job.finish())
            pid = job.proc.pid
        assert_wound_down(run, {"provision", "migrate"} if early else {"load"})
        assert embedded_dirs_of(pid) == []


@needs_docker
def test_ctrl_c_in_a_container_run(tmp_path: Path) -> None:
    import docker

    with started("run", "concurrency", "--db", "container", "--report-dir", str(tmp_path),
                 "--duration", "120s", *QUICK) as job:
        job.wait_for("users running")
        job.ctrl_c()
        run = _run(tmp_path, *job.finish())
        pid = job.proc.pid
    assert_wound_down(run, {"load"})
    client = docker.from_env()
    label = f"io.taskhub-checker.owner={socket.gethostname()}:{pid}"
    assert client.containers.list(all=True, filters={"label": label}) == []


def test_ctrl_c_in_a_distributed_run_stops_the_workers_too(pg_server: Server,
                                                           tmp_path: Path) -> None:
    with started("run", "concurrency", "--dsn", libpq_url(pg_server.url), "--report-dir",
                 str(tmp_path), "--duration", "120s", "--workers", "2", *QUICK) as job:
        job.wait_for("users running")
        time.sleep(1)  # let both workers record something
        job.ctrl_c()
        run = _run(tmp_path, *job.finish())
    assert_wound_down(run, {"load"})
    assert {r.process.split("-")[0] for r in run.history} >= {"w0", "w1"}
    assert run.folder is not None
    for log in run.folder.glob("worker-*.log"):
        assert "Traceback" not in log.read_text(), log.read_text()[-2000:]


def test_explore_ends_at_ctrl_c_during_its_load_but_not_before(pg_server: Server,
                                                               tmp_path: Path) -> None:
    dsn = libpq_url(pg_server.url)
    with started("explore", "concurrency", "--dsn", dsn, "--report-dir", str(tmp_path / "a"),
                 "--web-port", str(free_port()), "--argon2", "test") as job:
        job.wait_for("Locust web UI")
        job.ctrl_c()
        code, out, err = job.finish()
    # Nobody pressed start in the UI: ended as a session does (no 130), failing as not run.
    assert code == 1 and "Traceback" not in out + err, err[-3000:]
    assert "the load ran no operation" in out
    with started("explore", "concurrency", "--dsn", dsn, "--report-dir", str(tmp_path / "b"),
                 "--web-port", str(free_port()), "--argon2", "test", *BIG_SEED) as job:
        job.wait_for("seeding")
        job.ctrl_c()
        code, out, err = job.finish()
    assert code == 130 and "Traceback" not in out + err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("interrupted (SIGINT during seed)")


def test_db_up_interrupted_while_setting_up_removes_its_database(pg_server: Server) -> None:
    with started("db", "up", "--dsn", libpq_url(pg_server.url)) as job:
        job.when(lambda: bool(owned_by(job.proc.pid, pg_server)))  # created, not yet ready
        job.ctrl_c()
        code, out, err = job.finish()
        pid = job.proc.pid
    assert code in (0, 130) and "Traceback" not in out + err, err
    assert owned_by(pid, pg_server) == []
