"""Adopting a database that predates Alembic: recognise its schema, stamp it, upgrade it.

The known schema states are not hand-written lists that could drift from the migrations: a
scratch database on the same server is migrated one revision at a time and fingerprinted at
each step. An unversioned database whose fingerprint equals one of them is stamped with that
revision and upgraded to head; anything else is refused with the difference from the closest
known state.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from alembic import command
from sqlalchemy import URL

from checker import migrate
from checker.errors import CheckerError, UsageError
from checker.janitor import DatabaseJanitor
from taskhub.db import libpq_url

Fingerprint = frozenset[str]

_CATALOG_QUERIES = (
    # columns: name, type, nullability, default
    """SELECT format('column %s.%s %s%s%s', c.relname, a.attname,
                     format_type(a.atttypid, a.atttypmod),
                     CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                     coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''))
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
         AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> 'alembic_version'""",
    # constraints: primary, unique, foreign keys, checks, with their definitions
    """SELECT format('constraint %s.%s %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
       WHERE c.relnamespace = 'public'::regnamespace AND c.relname <> 'alembic_version'""",
    """SELECT format('index %s', indexdef) FROM pg_indexes
       WHERE schemaname = 'public' AND tablename <> 'alembic_version'""",
    """SELECT format('table %s rls=%s force=%s', relname, relrowsecurity, relforcerowsecurity)
       FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
         AND relname <> 'alembic_version'""",
    """SELECT format('policy %s.%s %s to %s using %s check %s', tablename, policyname, cmd,
                     roles, qual, with_check)
       FROM pg_policies WHERE schemaname = 'public'""",
)


@dataclass(frozen=True)
class Adoption:
    """What `adopt` found and did."""

    recognised: str
    upgraded_to: str


class UnrecognisedSchema(CheckerError):
    """The database matches no known schema state; the message lists what differs."""

    exit_code = 1


def fingerprint(url: URL) -> Fingerprint:
    """Everything about a database's public schema that the migrations decide."""
    with psycopg.connect(libpq_url(url)) as conn:
        return frozenset(str(row[0]) for query in _CATALOG_QUERIES
                         for row in conn.execute(query))


def known_states(server_url: URL) -> dict[str, Fingerprint]:
    """Fingerprint of every revision (plus `base`), built in a scratch database."""
    janitor = DatabaseJanitor(server_url)
    try:
        with janitor.ephemeral() as scratch:
            states = {"base": fingerprint(scratch)}
            for revision, _down, _message in migrate.history():
                migrate.upgrade(scratch, revision)
                states[revision] = fingerprint(scratch)
            return states
    finally:
        janitor.close()


def describe_difference(actual: Fingerprint, expected: Fingerprint, limit: int = 25) -> str:
    """A diff: `- ` what the known state has and the database lacks, `+ ` what it adds."""
    lines = [f"- {item}" for item in sorted(expected - actual)]
    lines += [f"+ {item}" for item in sorted(actual - expected)]
    more = f"\n  ... and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n  ".join(lines[:limit]) + more


def recognise(url: URL) -> str:
    """The revision whose schema the unversioned database at `url` has exactly."""
    if migrate.current(url) is not None:
        raise UsageError(f"{url.database} is already versioned at {migrate.current(url)}: "
                         "use `checker db upgrade`")
    actual = fingerprint(url)
    states = known_states(url)
    for revision, state in states.items():
        if state == actual and revision != "base":
            return revision
    if not actual:
        raise UnrecognisedSchema(f"{url.database} has no tables: use `checker db upgrade`")
    closest = min(states, key=lambda rev: len(states[rev] ^ actual))
    raise UnrecognisedSchema(
        f"{url.database} matches no known schema state; closest is {closest}:\n  "
        + describe_difference(actual, states[closest])
    )


def adopt(url: URL) -> Adoption:
    """Recognise an unversioned database, stamp it with that revision, upgrade it to head."""
    revision = recognise(url)
    command.stamp(migrate.alembic_config(url), revision)
    migrate.upgrade(url)
    return Adoption(recognised=revision, upgraded_to=migrate.head())
