"""`DatabaseJanitor`: the one object that creates, clones and drops databases on a server.

Used alike by the CLI (`checker db up`, `checker run`) and the pytest plugin (a template
database migrated once, a clone per test). Every database it creates carries its owner in the
database comment, so databases left by a killed process on this host are dropped next time;
their runtime login roles (`checker.access`) go with them, and roles whose database is gone
are dropped by the next sweep. A database created with `--keep` is tagged kept instead and is
never swept (`checker db rm` removes it).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg import sql
from sqlalchemy import URL

from checker import access
from checker.access import RuntimeAccess
from checker.errors import InfrastructureError
from checker.provision.base import Owner
from taskhub.db import libpq_url

T = TypeVar("T")

PREFIX = "checker_"
_COMMENT_TAG = "taskhub-checker owner="
_KEPT_TAG = "taskhub-checker kept at="
"""A database created with `--keep`: never swept (`checker db rm` removes it)."""


@dataclass(frozen=True)
class KeptDatabase:
    """A database created with `--keep`: its name, when (epoch s), its size."""

    name: str
    kept_at: float
    size_bytes: int


class DatabaseJanitor:
    """Creates and drops databases through one autocommit admin connection."""

    def __init__(self, server_url: URL) -> None:
        self.server_url = server_url
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._access: dict[str, RuntimeAccess] = {}

    def url_for(self, name: str) -> URL:
        """The URL of database `name` on the same server, same credentials."""
        return self.server_url.set(database=name)

    def create(self, name: str | None = None, *, template: str | None = None,
               kept: bool = False) -> URL:
        """Create a database (empty, or a copy of `template`) and return its URL. A `kept`
        one is never swept, even after its creator exits."""
        name = name or self.new_name()
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self._execute(statement)
        comment = f"{_KEPT_TAG}{time.time():.0f}" if kept else f"{_COMMENT_TAG}{Owner.me().tag()}"
        self._execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(comment)))
        self._run(lambda conn: access.confine_database(conn, name))
        return self.url_for(name)

    def runtime_access(self, name: str) -> RuntimeAccess:
        """The login roles and tenant key of database `name` (migrated to head), created on
        first use; the same object afterwards."""
        if name not in self._access:
            app_url, worker_url = self._run(
                lambda conn: access.create_roles(conn, self.server_url, name))
            key = access.install_tenant_key(self.url_for(name))
            self._access[name] = RuntimeAccess(app_url, worker_url, key)
        return self._access[name]

    def drop(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected to it, and its roles."""
        self._execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        self.drop_roles(name)

    def drop_roles(self, name: str) -> None:
        """Drop the runtime login roles of database `name` (the database stays)."""
        self._run(lambda conn: access.drop_roles(conn, name))
        self._access.pop(name, None)

    def sweep_stale(self) -> list[str]:
        """Drop databases created by processes on this host that no longer exist, and login
        roles whose database is gone (on any host: such a role can never be used again)."""
        rows = self._query(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname LIKE %s",
            (PREFIX.replace("_", r"\_") + "%",),
        )
        dropped = []
        for name, comment in rows:
            if not comment or not str(comment).startswith(_COMMENT_TAG):
                continue
            owner = Owner.parse(str(comment)[len(_COMMENT_TAG):])
            if owner is not None and owner.is_dead_here():
                self.drop(str(name))
                dropped.append(str(name))
        for role in self._run(lambda conn: access.orphaned_roles(conn, PREFIX)):
            self._execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            dropped.append(role)
        return dropped

    def kept(self) -> list[KeptDatabase]:
        """The databases on this server created with `--keep`, oldest first."""
        rows = self._query(
            "SELECT datname, shobj_description(oid, 'pg_database'), pg_database_size(oid) "
            "FROM pg_database WHERE datname LIKE %s AND shobj_description(oid, 'pg_database') "
            "LIKE %s", (PREFIX.replace("_", r"\_") + "%", _KEPT_TAG + "%"))
        found = []
        for name, comment, size in rows:
            at = str(comment)[len(_KEPT_TAG):]
            found.append(KeptDatabase(str(name), float(at) if at.isdigit() else 0.0,
                                      int(str(size))))
        return sorted(found, key=lambda d: d.kept_at)

    @contextmanager
    def ephemeral(self, *, template: str | None = None) -> Iterator[URL]:
        """A database that exists for the duration of the `with` block."""
        url = self.create(template=template)
        try:
            yield url
        finally:
            assert url.database is not None
            self.drop(url.database)

    @staticmethod
    def new_name(kind: str = "db") -> str:
        """A fresh database name: `checker_<kind>_<random>`."""
        return f"{PREFIX}{kind}_{secrets.token_hex(6)}"

    def close(self) -> None:
        """Close the admin connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(libpq_url(self.server_url), autocommit=True,
                                             connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise InfrastructureError(f"cannot reach the server: {exc}") from None
        return self._conn

    def _execute(self, statement: sql.Composed) -> None:
        self._run(lambda conn: conn.execute(statement))

    def _query(self, query: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        return self._run(lambda conn: conn.execute(query, params).fetchall())

    def _run(self, action: Callable[[psycopg.Connection[tuple[object, ...]]], T]) -> T:
        """`action` on the admin connection; once more on a new one if the server dropped
        it (a restarted server: `checker run --faults crash`)."""
        try:
            return action(self._connection())
        except psycopg.OperationalError:
            if self._conn is None or not self._conn.broken:
                raise
            self.close()
            return action(self._connection())
