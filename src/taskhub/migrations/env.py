"""Alembic environment: the URL comes from the caller, TASKHUB_DATABASE_URL or alembic.ini."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import URL, Connection, Engine, pool

from taskhub.db import make_engine, sqlalchemy_url
from taskhub.models import Base

config = context.config
target_metadata = Base.metadata

# The checker calls Alembic with its own logging; only the `alembic` command line wants the ini's.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> URL:
    given = config.attributes.get("url") or os.environ.get("TASKHUB_DATABASE_URL")
    given = given or config.get_main_option("sqlalchemy.url")
    if not given:
        raise RuntimeError("no database URL: set TASKHUB_DATABASE_URL or pass --dsn")
    return sqlalchemy_url(given)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL for review instead of executing it (`checker db upgrade --sql`)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        transaction_per_migration=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over the caller's connection, or a short-lived engine on the URL."""
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _configure(given)
        return
    # pytest-alembic hands over an Engine under the same key.
    engine = given if isinstance(given, Engine) else make_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _configure(connection)
            connection.commit()
    finally:
        if engine is not given:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
