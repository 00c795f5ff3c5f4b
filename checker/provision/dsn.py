"""The DSN provider: an existing server the user points at; we only create databases on it."""

from __future__ import annotations

import psycopg
from sqlalchemy import URL

from checker.errors import InfrastructureError, UsageError, first_line
from checker.provision.base import Provider, Server
from taskhub.db import libpq_url, sqlalchemy_url


def parse_dsn(dsn: str) -> URL:
    """A PostgreSQL URL from user input; UsageError (exit 2) naming what is wrong."""
    if not dsn.strip():
        raise UsageError("--dsn is empty: give a URL like postgresql://user:password@host/db")
    try:
        url = sqlalchemy_url(dsn.strip())
        rendered = libpq_url(url)
        psycopg.conninfo.conninfo_to_dict(rendered)  # what libpq will make of it
    except (ValueError, psycopg.ProgrammingError) as exc:
        # libpq quotes the whole URI (the password with it): keep only the reason.
        reason = first_line(exc).split(' in URI: "')[0].replace(dsn.strip(), "<dsn>")
        raise UsageError(f"bad --dsn: {reason}") from None
    return url if url.database else url.set(database="postgres")


def describe(url: URL) -> str:
    """`user@host:port/db` without the password, for messages."""
    return f"{url.username or ''}@{url.host or 'localhost'}:{url.port or 5432}/{url.database}"


class DsnProvider(Provider):
    """Uses a server that already runs; `stop()` leaves it running (databases are dropped
    by whoever created them, see `checker.janitor`)."""

    name = "dsn"
    summary = ("an existing server (`--dsn` / `CHECKER_DSN`); the checker creates a uniquely "
               "named `checker_*` database and its two runtime login roles on it and drops "
               "them (`WITH (FORCE)`) afterwards")
    cleanup = ("the reaper drops the database and its roles; databases tagged with a dead "
               "owner on this host are dropped at the next start, and roles whose database "
               "is gone (from any host)")
    auto_rank = 0
    takes_dsn = True

    def __init__(self, dsn: str, *, keep: bool = False) -> None:
        super().__init__(keep=keep)
        self.url = parse_dsn(dsn)

    @classmethod
    def create(cls, *, dsn: str | None, keep: bool,
               options: dict[str, str] | None) -> Provider:
        """The `--dsn` server; `options` are for servers the checker starts, not this one."""
        if not dsn:
            raise UsageError(f"--db {cls.name} needs --dsn URL (or CHECKER_DSN)")
        return cls(dsn, keep=keep)

    @classmethod
    def usable(cls, dsn: str | None) -> bool:
        """Whenever a DSN is given."""
        return bool(dsn)

    def start(self) -> Server:
        """Connect once to prove the server answers and the role may create databases."""
        try:
            with psycopg.connect(libpq_url(self.url), connect_timeout=10) as conn:
                row = conn.execute(
                    "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
                ).fetchone()
        except psycopg.Error as exc:
            raise InfrastructureError(f"cannot connect to {describe(self.url)}: "
                                      f"{first_line(exc)}") from None
        if not row or not row[0]:
            raise InfrastructureError(
                f"role {self.url.username!r} on {describe(self.url)} may not CREATE DATABASE"
            )
        return Server(url=self.url, provider=self.name)

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""


PROVIDER = DsnProvider
