"""Engines, URLs and the `Database` the services take: every connection uses psycopg 3.

The engines never log what could hold a secret, whatever the logging configuration: bound
parameters are hidden (they include password hashes), and result rows (SQLAlchemy logs
every row at DEBUG; `users.password_hash` among them) are dropped by a filter on the
engines' logger. Statements themselves are still logged at INFO.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import URL, Engine, create_engine, event, make_url

_DRIVERLESS = {"postgres", "postgresql", "postgresql+psycopg2"}
LOGGING_NAME = "taskhub"
ENGINE_LOGGER = f"sqlalchemy.engine.Engine.{LOGGING_NAME}"
"""The logger of every engine `make_engine` creates."""
MIN_TENANT_KEY_BYTES = 32


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
    """The same URL in the `postgresql://` form that psql and libpq accept (password shown).

    Query parameters are percent-encoded (a space as `%20`): SQLAlchemy renders a space as
    `+`, which libpq does not decode, so `options=-c%20statement_timeout%3D1` would reach the
    server as `-c+statement_timeout=1`."""
    parsed = sqlalchemy_url(url).set(drivername="postgresql")
    base = parsed.set(query={}).render_as_string(hide_password=False)
    query = urlencode(parsed.query, doseq=True, quote_via=quote)
    return f"{base}?{query}" if query else base


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine on psycopg 3 with pre-ping, so a restarted server is noticed, not fatal.

    Bound parameters are hidden from SQLAlchemy's log lines and exception messages
    (`hide_parameters`), and the engine logs to ENGINE_LOGGER, which drops result rows.
    """
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("logging_name", LOGGING_NAME)
    return create_engine(sqlalchemy_url(url), **kwargs)


RUNTIME_ENGINE_DEFAULTS: dict[str, Any] = {
    # psycopg prepares a statement after its 5th execution on a connection (its default,
    # kept: planning the transition statement costs more than running it); the unit of work
    # guards those statements against a `PREPARE` that would stand in for one.
    "connect_args": {"prepare_threshold": 5},
    # The unit of work sends BEGIN itself, with its first statement (one round trip less
    # than the driver's separate BEGIN), and ends the transaction itself.
    "isolation_level": "AUTOCOMMIT",
}
PREPARED_MAX = 12
"""Prepared statements psycopg keeps per runtime connection (its default is 100): the hot
statements fit, and the guard that lists them at the end of every unit of work stays cheap."""


def _limit_prepared(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.prepared_max = PREPARED_MAX


@dataclass(frozen=True)
class Database:
    """What the services use: a pool per runtime login role, and the tenant key.

    `app` connects as the tenant role's login (a member of `taskhub_app`), `worker` as the
    worker's (a member of `taskhub_worker`); neither is the owner. `tenant_key` proves to
    the database which tenant a transaction acts for (see `taskhub.tenancy`).
    """

    app: Engine
    worker: Engine
    tenant_key: bytes = field(repr=False)

    @classmethod
    def connect(cls, app_url: str | URL, worker_url: str | URL, tenant_key: bytes,
                **engine_kwargs: Any) -> Database:
        """Both pools (created lazily by SQLAlchemy: nothing connects yet)."""
        if len(tenant_key) < MIN_TENANT_KEY_BYTES:
            raise ValueError(f"the tenant key must be at least {MIN_TENANT_KEY_BYTES} bytes")
        options = {**RUNTIME_ENGINE_DEFAULTS, **engine_kwargs}
        options["connect_args"] = {**RUNTIME_ENGINE_DEFAULTS["connect_args"],
                                   **engine_kwargs.get("connect_args", {})}
        app, worker = make_engine(app_url, **options), make_engine(worker_url, **options)
        for engine in (app, worker):
            event.listen(engine, "connect", _limit_prepared)
        return cls(app, worker, tenant_key)

    def dispose(self) -> None:
        """Close every pooled connection of both pools."""
        self.app.dispose()
        self.worker.dispose()
