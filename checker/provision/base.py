"""What every provider yields (a `Server`) and the interface they share (`Provider`)."""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from sqlalchemy import URL

from checker.errors import InfrastructureError, UsageError

# Settings for a throwaway cluster: no fsync (a PostgreSQL crash still keeps every commit, only an
# OS crash would lose data), synchronous_commit stays on so crash-durability tests mean something.
FAST_CLUSTER_OPTIONS: dict[str, str] = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "on",
    "max_connections": "400",
    "shared_buffers": "256MB",
}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def child_pids(parent: int) -> list[int]:
    """Pids whose parent is `parent` right now (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # the command in (...) may hold spaces
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class Server:
    """A running PostgreSQL server the checker may create databases on.

    `url` is an administrative URL (a role allowed to CREATE DATABASE, on a maintenance database);
    `stop_hint` tells a person how to stop a server that was kept running.
    """

    url: URL
    provider: str
    stop_hint: str = ""


@dataclass(frozen=True)
class Owner:
    """Who started a resource: the sweepers remove what a dead owner on this host left behind."""

    host: str
    pid: int

    @classmethod
    def me(cls) -> Owner:
        """The current process on this host."""
        return cls(socket.gethostname(), os.getpid())

    def tag(self) -> str:
        """A compact text form stored beside the resource."""
        return f"{self.host}:{self.pid}"

    @classmethod
    def parse(cls, tag: str) -> Owner | None:
        """Read a tag back; None when it is not one of ours."""
        host, _, pid = tag.rpartition(":")
        return cls(host, int(pid)) if host and pid.isdigit() else None

    def is_dead_here(self) -> bool:
        """True when this owner ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


@dataclass(frozen=True)
class KeptServer:
    """A server started with `--keep` that still exists: `name` (what `checker db rm` takes),
    its admin `url` (secrets included: for the checker's own use, never printed), the
    `address` clients use, `started` (epoch s), its data's size, and how to remove it."""

    name: str
    provider: str
    url: URL
    address: str
    started: float
    size_bytes: int | None
    remove: Callable[[], None] = field(compare=False, repr=False)


class Capability(Enum):
    """What a provider can do with its server besides serving it (what faults need)."""

    CRASH = "crash and restart"
    """Stop the server as a crash would and start it again on its data and its port."""
    PAUSE = "pause and resume"
    """Freeze every server process, then let them run again."""
    OWNS_SERVER = "own the server"
    """The server is the checker's: it goes when the run ends (a `--dsn` server stays)."""


class Provider(ABC):
    """Starts a PostgreSQL server and removes every trace of it on `stop()`.

    Use as a context manager. With `keep=True` the server outlives the process (nothing is
    stopped on exit) and `Server.stop_hint` says how to stop it by hand.

    A provider module registers itself by exporting `PROVIDER = TheClass`; `--db auto` tries
    the registered providers with an `auto_rank` in rank order and takes the first `usable`.
    What a provider declares in `capabilities` it implements (`crash`, `restart`, `pause`,
    `resume`); the base refuses each.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    """What runs, for the README's table (Markdown)."""
    cleanup: ClassVar[str]
    """How it is cleaned up when its owner is killed outright, for the README's table."""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    auto_rank: ClassVar[int | None] = None
    """Where `--db auto` tries this provider (lowest first); None: never."""
    takes_dsn: ClassVar[bool] = False
    """True for the provider of `--dsn URL` (an existing server)."""

    def __init__(self, *, keep: bool = False, options: dict[str, str] | None = None) -> None:
        self.keep = keep
        self.options = {**FAST_CLUSTER_OPTIONS, **(options or {})}
        self.extensions: tuple[str, ...] = ()
        """Extensions the databases will need: a provider that chooses its installation
        picks one that has them (`select_provider(extensions=...)`)."""

    @classmethod
    def create(cls, *, dsn: str | None, keep: bool,
               options: dict[str, str] | None) -> Provider:
        """The provider `--db NAME` asks for; UsageError for a combination it cannot take."""
        if dsn:
            raise UsageError(f"--dsn names an existing server; it cannot go with --db {cls.name}")
        return cls(keep=keep, options=options)

    @classmethod
    def usable(cls, dsn: str | None) -> bool:
        """Whether `--db auto` may take this provider here (given the `--dsn`, if any)."""
        return not dsn

    @abstractmethod
    def start(self) -> Server:
        """Start (or reach) the server; raise InfrastructureError with a one-line reason."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server and remove its data; safe to call twice and after a failed start."""

    def prepare(self, needs: frozenset[Capability]) -> None:  # noqa: B027 - optional hook
        """Before `start()`: arrange for what the run will use (all in `capabilities`)."""

    def crash(self) -> None:
        """Stop the server as a crash would, keeping its data ([CRASH])."""
        raise self._cannot(Capability.CRASH)

    def restart(self) -> Server:
        """Start a crashed server again on its data and its port ([CRASH])."""
        raise self._cannot(Capability.CRASH)

    def pause(self) -> str:
        """Freeze every server process; a line of detail ([PAUSE])."""
        raise self._cannot(Capability.PAUSE)

    def resume(self) -> None:
        """Let the frozen processes run again ([PAUSE])."""
        raise self._cannot(Capability.PAUSE)

    def server_log(self) -> str:
        """The server's log so far, for a failure message ("" when there is none to read)."""
        return ""

    @classmethod
    def kept_servers(cls) -> list[KeptServer]:
        """The servers of this provider that a `--keep` left running on this host."""
        return []

    def _cannot(self, capability: Capability) -> InfrastructureError:
        return InfrastructureError(f"the {self.name} provider cannot {capability.value}")

    def __enter__(self) -> Server:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.keep:
            self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} keep={self.keep}>"
