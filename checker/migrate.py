"""Alembic's Python API against a URL: upgrade, downgrade, current, history."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import URL, pool
from sqlalchemy.exc import DBAPIError

from checker.errors import MigrationError, UsageError, first_line
from taskhub.db import make_engine
from taskhub.migrations import ALEMBIC_INI


def alembic_config(url: URL | str | None = None, *, stdout: TextIO | None = None) -> Config:
    """An Alembic Config for taskhub's migrations (packaged with it), pointed at `url`."""
    config = Config(str(ALEMBIC_INI), output_buffer=stdout, stdout=stdout or sys.stdout)
    config.attributes["configure_logger"] = False
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade(url: URL | str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`.

    Each revision runs in its own transaction: if one stops (a data guard raising, a failing
    statement), the database stays at the last revision that completed, its data untouched by
    the failed one, and MigrationError carries the reason.
    """
    with explained():
        command.upgrade(alembic_config(url), _target(revision))


def downgrade(url: URL | str, revision: str) -> None:
    """Migrate the database at `url` down to `revision` (`base` removes everything)."""
    with explained():
        command.downgrade(alembic_config(url), _target(revision))


def _target(revision: str) -> str:
    """`revision` stripped; UsageError when there is nothing left."""
    if not revision.strip():
        raise UsageError("the revision is empty: give an id, head, base, +N/-N or A:B")
    return revision.strip()


@contextmanager
def explained(*, offline: bool = False) -> Iterator[None]:
    """Alembic's failures as checker errors: a revision Alembic cannot resolve (or, offline,
    any refusal: nothing ran) is bad usage; a migration that stopped is a MigrationError."""
    try:
        yield
    except DBAPIError as exc:
        diag = getattr(exc.orig, "diag", None)
        message = getattr(diag, "message_primary", None) or str(exc.orig).splitlines()[0]
        raise MigrationError(message) from None
    except CommandError as exc:
        message = first_line(exc)
        if offline or isinstance(exc.__cause__, RevisionError):
            raise UsageError(f"bad revision: {message}") from None
        raise MigrationError(message) from None


def upgrade_sql(url: URL | str, revision: str = "head", start: str | None = None) -> str:
    """The SQL an upgrade would run, for review (Alembic's offline mode); nothing is executed."""
    out = io.StringIO()
    target = f"{start}:{_target(revision)}" if start else _target(revision)
    with explained(offline=True):
        command.upgrade(alembic_config(url, stdout=out), target, sql=True)
    return out.getvalue()


def current(url: URL | str) -> str | None:
    """The revision the database is at, or None for an unversioned database."""
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The single head revision of the repository's history."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"expected one head revision, found {heads}")
    return heads[0]


def history() -> list[tuple[str, str | None, str]]:
    """Every revision from base to head as (revision, down_revision, one-line message)."""
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions("base", "heads"))
    return [
        (rev.revision, rev.down_revision if isinstance(rev.down_revision, str) else None,
         (rev.doc or "").splitlines()[0] if rev.doc else "")
        for rev in reversed(revisions)
    ]
