"""Errors the checker reports to people; the CLI maps each kind to one exit code."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none): what a
    one-line error shows of a driver's or a library's multi-line text."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class CheckerError(Exception):
    """A failure explained in one line; `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(CheckerError):
    """Bad usage or configuration: a wrong flag, a malformed URL, an unknown provider."""

    exit_code = 2


class InfrastructureError(CheckerError):
    """PostgreSQL could not be provided: Docker unreachable, server failed, DSN unreachable."""

    exit_code = 3


class MigrationError(CheckerError):
    """A migration refused to run (e.g. a data guard found rows it will not guess about)."""

    exit_code = 1
