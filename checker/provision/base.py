"""What every provider yields (a `Server`) and the interface they share (`Provider`)."""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

from sqlalchemy import URL

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


class Provider(ABC):
    """Starts a PostgreSQL server and removes every trace of it on `stop()`.

    Use as a context manager. With `keep=True` the server outlives the process (nothing is
    stopped on exit) and `Server.stop_hint` says how to stop it by hand.
    """

    name: ClassVar[str]

    def __init__(self, *, keep: bool = False) -> None:
        self.keep = keep

    @abstractmethod
    def start(self) -> Server:
        """Start (or reach) the server; raise InfrastructureError with a one-line reason."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server and remove its data; safe to call twice and after a failed start."""

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
