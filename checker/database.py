"""A migrated, uniquely named database on a provider's server: what `db up` and `run` use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from sqlalchemy import URL

from checker import migrate
from checker.access import RuntimeAccess
from checker.janitor import DatabaseJanitor
from checker.provision import Capability, Provider, Server
from checker.provision.reaper import Reaper
from taskhub.db import libpq_url


@dataclass(frozen=True)
class MigratedDatabase:
    """A database at head (`url`, the owner's) on a running server, and the runtime access
    its services use."""

    server: Server
    url: URL
    access: RuntimeAccess


@contextmanager
def migrated_database(provider: Provider, phase: Callable[[str], None] = lambda _name: None
                      ) -> Iterator[MigratedDatabase]:
    """Start the provider, create a fresh database, migrate it to head, yield its URL.

    On exit the database and the server go, unless the provider keeps them (`--keep`).
    `phase` hears when the migration starts (`checker.interrupts`).
    """
    with provider as server, ExitStack() as cleanup:
        janitor = DatabaseJanitor(server.url)
        cleanup.callback(janitor.close)
        janitor.sweep_stale()
        url = janitor.create(kept=provider.keep)
        assert url.database is not None
        if not provider.keep:
            if Capability.OWNS_SERVER not in provider.capabilities:
                # The server outlives us: if we are killed, the reaper drops the database.
                reaper = Reaper([{"kind": "drop_database", "conninfo": libpq_url(server.url),
                                  "name": url.database}])
                cleanup.callback(reaper.release)
            cleanup.callback(janitor.drop, url.database)
        phase("migrate")
        migrate.upgrade(url)
        yield MigratedDatabase(server, url, janitor.runtime_access(url.database))
