"""What `--keep` left behind: the kept servers on this host (every provider's) and the kept
databases on them or on a `--dsn` server. `checker db list` shows them and `checker db rm`
removes them; nothing else ever does (the sweepers skip whatever was kept)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import URL

from checker.errors import CheckerError, UsageError
from checker.janitor import DatabaseJanitor
from checker.provision import PROVIDERS
from checker.provision.dsn import describe


@dataclass(frozen=True)
class KeptItem:
    """A kept server or database, as `db list` shows it; `remove` removes it."""

    kind: str
    name: str
    where: str
    url: str
    age_s: float
    size_bytes: int | None
    remove: Callable[[], None] = field(compare=False, repr=False)
    server: str | None = None
    """The kept server a database lives in (None: a server, or a `--dsn` database)."""


def kept_items(dsn: URL | None = None) -> list[KeptItem]:
    """Every kept server here with its kept databases, then the kept databases at `dsn`."""
    now = time.time()
    items = []
    for provider in PROVIDERS.values():
        for server in provider.kept_servers():
            items.append(KeptItem("server", server.name, server.provider,
                                  f"postgresql://{server.url.username}@{server.address}/",
                                  now - server.started, server.size_bytes, server.remove))
            items += _databases(server.url, f"{server.provider} {server.name}",
                                server.address, server.name)
    if dsn is not None:
        items += _databases(dsn, describe(dsn), f"{dsn.host or 'localhost'}:{dsn.port or 5432}")
    return items


def _databases(url: URL, where: str, address: str,
               server: str | None = None) -> list[KeptItem]:
    janitor = DatabaseJanitor(url)
    try:
        kept = janitor.kept()
    except CheckerError:
        return []  # a kept server that no longer answers: listed itself, nothing inside
    finally:
        janitor.close()
    now = time.time()
    return [KeptItem("database", db.name, where, f"postgresql://{address}/{db.name}",
                     now - db.kept_at if db.kept_at else 0.0, db.size_bytes,
                     partial(_drop, url, db.name), server) for db in kept]


def _drop(url: URL, name: str) -> None:
    janitor = DatabaseJanitor(url)
    try:
        janitor.drop(name)
    finally:
        janitor.close()


def remove(items: list[KeptItem], names: Iterable[str], everything: bool) -> list[KeptItem]:
    """Remove the items named (or all); UsageError naming an unknown one. A server goes with
    its databases, so those are not removed twice."""
    wanted = list(names)
    if everything == bool(wanted):
        raise UsageError("name what to remove (see `checker db list`), or --all")
    known = {item.name for item in items}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise UsageError(f"nothing kept is called {', '.join(map(repr, unknown))} "
                         "(see `checker db list`)")
    chosen = [item for item in items if everything or item.name in wanted]
    servers = {item.name for item in chosen if item.kind == "server"}
    removed = []
    for item in chosen:
        if item.server in servers:
            continue  # goes with its server
        item.remove()
        removed.append(item)
    return removed
