"""The schema the pytest plugin's template database is migrated to: taskhub's (its packaged
Alembic migrations) unless the project names its own Alembic configuration.

A project's `env.py` finds the database in one of the usual ways, and each is served at once:
- the URL in the ini (`config.get_main_option("sqlalchemy.url")`): set to the template's;
- a connection the caller passes (`config.attributes["connection"]`): an open SQLAlchemy
  connection to the template, committed afterwards;
- environment variables it reads (`os.environ["DATABASE_URL"]`, or the parts of one): set,
  for the length of the upgrade, from `env` (`NAME={url}` lines).
Alembic runs from the ini's folder, as `alembic upgrade head` run there would. Afterwards the
template must hold more tables than before (Alembic's version table at least): an `env.py`
that migrated some other database is reported, not trusted.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL

from checker import extensions
from checker.errors import CheckerError, MigrationError, UsageError, first_line

PLACEHOLDERS = ("url", "libpq_url", "host", "port", "user", "password", "database")
"""What an `env` value may name: `{url}` (SQLAlchemy, psycopg driver), `{libpq_url}`
(postgresql://...), and the URL's parts."""


@dataclass(frozen=True)
class ProjectSchema:
    """How to migrate a fresh database: `alembic_ini` None means taskhub's migrations."""

    alembic_ini: Path | None = None
    env: tuple[tuple[str, str], ...] = ()
    """(variable, value template) set while the project's migrations run."""
    extensions: tuple[str, ...] = ()
    """Created on the template before migrating (the provider must have them)."""

    @property
    def is_taskhub(self) -> bool:
        """Whether this is taskhub's schema (the one the checker's audit knows)."""
        return self.alembic_ini is None

    @classmethod
    def of(cls, alembic_ini: str | None, env_lines: list[str], extension_names: list[str],
           base: Path) -> ProjectSchema:
        """From the plugin's settings (paths relative to `base`); UsageError for a missing
        ini, a malformed `NAME={placeholder}` line or a bad extension name."""
        ini = None
        if alembic_ini:
            ini = (base / alembic_ini).resolve()
            if not ini.is_file():
                raise UsageError(f"checker_alembic_ini: no Alembic ini at {ini}")
        env = []
        for line in env_lines:
            name, sep, value = line.partition("=")
            if not sep or not name.strip().isidentifier():
                raise UsageError(f"checker_alembic_env: {line!r} is not NAME=VALUE")
            env.append((name.strip(), value.strip()))
            _render(value.strip(), URL.create("postgresql"))  # refuses unknown placeholders
        return cls(ini, tuple(env), extensions.parse(extension_names))

    def create_extensions(self, url: URL, provider: str) -> None:
        """CREATE EXTENSION each of `extensions` on the database at `url`."""
        from taskhub.db import libpq_url

        extensions.create(libpq_url(url), self.extensions, provider)

    def migrate(self, url: URL, provider: str) -> None:
        """Bring the database at `url` to the schema's head; a revision that needs an
        extension the server lacks is reported naming it and the `provider`."""
        from checker import migrate

        try:
            if self.alembic_ini is None:
                migrate.upgrade(url)
            else:
                self._upgrade(url)
        except MigrationError as exc:
            if (missing := extensions.unavailable_in(str(exc))) is not None:
                raise MigrationError(f"the migrations need extension {missing}: "
                                     f"{extensions.missing_message([missing], provider)}"
                                     ) from None
            raise

    def _upgrade(self, url: URL) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.util.exc import CommandError
        from sqlalchemy import create_engine, pool
        from sqlalchemy.exc import DBAPIError

        from checker.migrate import explained

        assert self.alembic_ini is not None
        config = Config(str(self.alembic_ini))
        # configparser interpolates %: a password may hold one.
        config.set_main_option("sqlalchemy.url",
                               url.render_as_string(hide_password=False).replace("%", "%%"))
        config.attributes["url"] = url
        engine = create_engine(url, poolclass=pool.NullPool)
        try:
            before = _tables(engine)
            with explained(), contextlib.chdir(self.alembic_ini.parent), \
                    _environment({name: _render(value, url) for name, value in self.env}), \
                    engine.connect() as connection:
                config.attributes["connection"] = connection
                try:
                    command.upgrade(config, "head")
                except (CheckerError, DBAPIError, CommandError):
                    raise
                except Exception as exc:  # the project's env.py or a revision of its own
                    raise MigrationError(f"the migrations of {self.alembic_ini} failed: "
                                         f"{type(exc).__name__}: {first_line(exc)}") from exc
                connection.commit()
            after = _tables(engine)
        finally:
            engine.dispose()
        if after <= before:  # Alembic's own version table, at least, had to appear
            raise MigrationError(
                f"the migrations of {self.alembic_ini} created nothing in the database they "
                "were given: their env.py must take its database from sqlalchemy.url, "
                "config.attributes['connection'] or a variable set by checker_alembic_env")


def _tables(engine: Any) -> int:
    """How many tables the database has outside the catalogs."""
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' "
            "AND n.nspname !~ '^pg_'").scalar() or 0)


def _render(template: str, url: URL) -> str:
    """`template` with the placeholders of `url` filled in; UsageError for another name."""
    from taskhub.db import libpq_url

    values: Mapping[str, Any] = {
        "url": url.render_as_string(hide_password=False),
        "libpq_url": libpq_url(url) if url.host else "postgresql://",
        "host": url.host or "", "port": url.port or "", "user": url.username or "",
        "password": url.password or "", "database": url.database or ""}
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(f"checker_alembic_env: {template!r}: use only "
                         f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)} ({exc})") from None


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ for the block; what was there before is put back."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
