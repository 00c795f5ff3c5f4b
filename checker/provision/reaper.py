"""A watchdog process that cleans up after its owner if the owner dies without doing so.

Ryuk does this for testcontainers, but its image cannot always be pulled; this is the same idea
with no image: a detached Python process holds the read end of a pipe whose write end lives only
in the owner. A clean shutdown writes one byte (`release()`): the reaper exits doing nothing.
If the owner dies, even by SIGKILL, the kernel closes the write end, the read returns EOF and the
reaper carries out its actions: kill a process, remove a container, drop a database, remove a
directory.

Run as `python -m checker.provision.reaper FD` with the actions as JSON on stdin.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

Action = dict[str, Any]


class Reaper:
    """Handle on a running reaper; `release()` when the owner has cleaned up by itself."""

    def __init__(self, actions: list[Action]) -> None:
        read_end, self._write_end = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "checker.provision.reaper", str(read_end)],
                pass_fds=(read_end,),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal must not reach the reaper
            )
        finally:
            os.close(read_end)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(actions).encode())
        proc.stdin.close()
        self.pid = proc.pid
        self._released = False

    def release(self) -> None:
        """Tell the reaper its owner finished cleanly; it exits without acting."""
        if not self._released:
            self._released = True
            os.write(self._write_end, b"x")
            os.close(self._write_end)


def _kill(action: Action) -> None:
    pid, sig = int(action["pid"]), int(action.get("signal", signal.SIGKILL))
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + float(action.get("wait", 10))
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _docker_rm(action: Action) -> None:
    import docker

    docker.from_env().containers.get(action["container"]).remove(force=True, v=True)


def _drop_database(action: Action) -> None:
    import psycopg
    from psycopg import sql

    from checker.access import drop_roles

    with psycopg.connect(action["conninfo"], autocommit=True, connect_timeout=10) as conn:
        name = sql.Identifier(action["name"])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        drop_roles(conn, action["name"])  # its runtime login roles


def _rmtree(action: Action) -> None:
    shutil.rmtree(action["path"], ignore_errors=True)


HANDLERS = {"kill": _kill, "docker_rm": _docker_rm, "drop_database": _drop_database,
            "rmtree": _rmtree}


def main(argv: list[str]) -> int:
    """Wait for the owner to release or die; on death run every action, in order."""
    actions: list[Action] = json.loads(sys.stdin.read() or "[]")
    with os.fdopen(int(argv[1]), "rb", buffering=0) as pipe:
        released = pipe.read(1) == b"x"
    if released:
        return 0
    for action in actions:
        try:
            HANDLERS[action["kind"]](action)
        except Exception as exc:
            print(f"reaper: {action['kind']} failed: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(main(sys.argv))
