"""Engines and URLs: every connection of the data layer uses psycopg 3.

The engines never log what could hold a secret, whatever the logging configuration: bound
parameters are hidden (they include password hashes), and result rows (SQLAlchemy logs
every row at DEBUG; `users.password_hash` among them) are dropped by a filter on the
engines' logger. Statements themselves are still logged at INFO.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import URL, Engine, create_engine, make_url

_DRIVERLESS = {"postgres", "postgresql", "postgresql+psycopg2"}
LOGGING_NAME = "taskhub"
ENGINE_LOGGER = f"sqlalchemy.engine.Engine.{LOGGING_NAME}"
"""The logger of every engine `make_engine` creates."""


class _NoRows(logging.Filter):
    """Drops the engine's DEBUG records: the result rows and their column names."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


logging.getLogger(ENGINE_LOGGER).addFilter(_NoRows())


def sqlalchemy_url(url: str | URL) -> URL:
    """Parse a libpq-style or SQLAlchemy URL and pin the psycopg 3 driver.

    Raises ValueError with a readable message for anything that is not a PostgreSQL URL.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception as exc:  # SQLAlchemy raises ArgumentError with the URL in the text
        raise ValueError(f"not a database URL: {exc.__class__.__name__}") from None
    if parsed.drivername in _DRIVERLESS:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(f"not a PostgreSQL URL (scheme {parsed.drivername!r})")
    return parsed


def libpq_url(url: str | URL) -> str:
    """The same URL in the `postgresql://` form that psql and libpq accept (password shown)."""
    return sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine on psycopg 3 with pre-ping, so a restarted server is noticed, not fatal.

    Bound parameters are hidden from SQLAlchemy's log lines and exception messages
    (`hide_parameters`), and the engine logs to ENGINE_LOGGER, which drops result rows.
    """
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("logging_name", LOGGING_NAME)
    return create_engine(sqlalchemy_url(url), **kwargs)
