"""What a fault can do to the server itself: crash and restart it, pause and resume it.

Only servers the checker started can be controlled: the embedded server (signals to its
processes) and a container (`docker kill`/`start`, `docker pause`). A `--dsn` server cannot.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Protocol

from checker.errors import InfrastructureError, UsageError
from checker.faults.spec import NEEDS_SERVER, Fault
from checker.provision import Provider
from checker.provision.container import ContainerProvider
from checker.provision.embedded import EmbeddedProvider


class ServerControl(Protocol):
    """Process-level access to the run's server."""

    def crash_restart(self) -> str:
        """Crash the server (immediate shutdown) and start it again; a line of detail."""

    def pause(self) -> str:
        """Freeze every server process; a line of detail."""

    def resume(self) -> None:
        """Let the frozen processes run again."""


class EmbeddedControl:
    """The embedded server: SIGQUIT + restart on the same data dir and port; SIGSTOP/SIGCONT
    to the postmaster and its children."""

    def __init__(self, provider: EmbeddedProvider) -> None:
        self.provider = provider
        self._stopped: list[int] = []

    def crash_restart(self) -> str:
        """`provider.crash()` then `provider.restart()`; refuses a restart on another port
        (the clients' URL would be wrong)."""
        before = self.provider.port
        self.provider.crash()
        server = self.provider.restart()
        if server.url.port != before:
            raise InfrastructureError(f"the restarted server took port {server.url.port}, "
                                      f"not {before}: clients cannot reconnect")
        return f"restarted on port {before}"

    def pause(self) -> str:
        """SIGSTOP the postmaster first (no new children), then each child."""
        process = self.provider.process
        if process is None or process.poll() is not None:
            raise InfrastructureError("the embedded server is not running")
        pids = [process.pid, *_children(process.pid)]
        for pid in pids:
            _signal(pid, signal.SIGSTOP)
        self._stopped = pids
        return f"stopped {len(pids)} processes"

    def resume(self) -> None:
        """SIGCONT the children, then the postmaster."""
        for pid in reversed(self._stopped):
            _signal(pid, signal.SIGCONT)
        self._stopped = []


class ContainerControl:
    """A container: `docker kill` + `docker start` (it must be persistent: its data and its
    host port survive the restart), `docker pause`/`unpause`."""

    def __init__(self, provider: ContainerProvider) -> None:
        self.provider = provider

    def crash_restart(self) -> str:
        """`provider.kill()` then `provider.restart()`; refuses a restart on another port."""
        before = self.provider.container.get_exposed_port(5432)
        self.provider.kill()
        server = self.provider.restart()
        if str(server.url.port) != str(before):
            raise InfrastructureError(f"the restarted container published port "
                                      f"{server.url.port}, not {before}: clients cannot reconnect")
        return f"docker kill + start, port {before}"

    def pause(self) -> str:
        """`docker pause` (the cgroup freezer: every process in the container)."""
        self.provider.container.get_wrapped_container().pause()
        return "docker pause"

    def resume(self) -> None:
        """`docker unpause`."""
        self.provider.container.get_wrapped_container().unpause()


def control_for(provider: Provider, faults: tuple[Fault, ...]) -> ServerControl | None:
    """The control the faults need from this provider; UsageError (exit 2) when it has none."""
    wanted = sorted({f.kind for f in faults} & NEEDS_SERVER)
    if isinstance(provider, EmbeddedProvider):
        return EmbeddedControl(provider)
    if isinstance(provider, ContainerProvider):
        if "crash" in wanted:
            provider.persistent = True  # data and host port must survive `docker start`
        return ContainerControl(provider)
    if wanted:
        raise UsageError(f"--faults {', '.join(wanted)} needs the server's processes, which a "
                         "--dsn server does not give: use --db embedded or --db container")
    return None


def _children(parent: int) -> list[int]:
    """Pids whose parent is `parent` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
