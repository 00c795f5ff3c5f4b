"""PostgreSQL extensions a project's schema needs (`uuid-ossp`, `pgcrypto`, `citext`, ...):
created on a database, or refused in one line that names what is missing, on which provider,
and where to get it."""

from __future__ import annotations

import re
from collections.abc import Iterable

import psycopg
from psycopg import sql

from checker.errors import InfrastructureError, UsageError, first_line

_NAME = re.compile(r"[a-z0-9_][a-z0-9_-]{0,62}")
_NOT_AVAILABLE = re.compile(r'extension "([^"]+)" is not available|'
                            r'could not open extension control file ".*/([^/"]+)\.control"')

WHERE_TO_GET = ("the container provider's postgres image ships every contrib extension; for "
                "the embedded provider, install an installation that has it (Debian: "
                "postgresql-contrib) and the checker picks it, or point CHECKER_PG_BIN at one")


def parse(names: Iterable[str]) -> tuple[str, ...]:
    """Extension names as given (whitespace or comma separated); UsageError for a name that
    cannot be one."""
    found = [n for item in names for n in re.split(r"[\s,]+", item.strip()) if n]
    for name in found:
        if not _NAME.fullmatch(name):
            raise UsageError(f"not an extension name: {name!r}")
    return tuple(dict.fromkeys(found))


def missing_message(names: Iterable[str], provider: str) -> str:
    """The one line that says which extensions the `provider` server lacks, and where to get
    them."""
    listed = ", ".join(names)
    return f"the {provider} server has no extension {listed}: {WHERE_TO_GET}"


def create(conninfo: str, names: Iterable[str], provider: str) -> None:
    """CREATE EXTENSION IF NOT EXISTS each of `names` on the database at `conninfo` (libpq
    URL); InfrastructureError naming every one the server lacks."""
    wanted = tuple(names)
    if not wanted:
        return
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        available = {row[0] for row in conn.execute(
            "SELECT name FROM pg_available_extensions WHERE name = ANY (%s)", (list(wanted),))}
        if missing := [name for name in wanted if name not in available]:
            raise InfrastructureError(missing_message(missing, provider))
        for name in wanted:
            try:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} CASCADE").format(
                    sql.Identifier(name)))
            except psycopg.Error as exc:
                raise InfrastructureError(
                    f"CREATE EXTENSION {name} failed on the {provider} server: "
                    f"{first_line(exc)}") from None


def unavailable_in(message: str) -> str | None:
    """The extension a PostgreSQL error says is not installed on the server, if it says so."""
    match = _NOT_AVAILABLE.search(message)
    return next((group for group in match.groups() if group), None) if match else None
