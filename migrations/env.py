"""Alembic environment: where the database is and what the schema should be.

Connection, in order of precedence:

1. ``config.attributes["connection"]``: an open SQLAlchemy connection given
   by a program (``ichnaea.migrate``, the tests); used as is.
2. The ``sqlalchemy.url`` main option, if a program set one.
3. ``ichnaea.config.load_settings().db_ddl_url``: the deployment's
   environment (``DB_DDL_URI``, ``DB_HOST``…, or the embedded SQLite file).

``target_metadata`` is the complete model metadata, so ``alembic revision
--autogenerate`` and the migration tests compare against every table. On
SQLite, operations run in batch mode (copy-and-move tables), the only way to
alter columns and constraints there.

Logging is configured from the ini file only when the ``alembic`` command
line runs this file, never when a program embeds Alembic (it would replace
the program's logging setup); set ``config.attributes["configure_logger"]``
to False to skip it.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from ichnaea.config import load_settings
from ichnaea.models.all import metadata
from ichnaea.repositories.session import create_engine

config = context.config
target_metadata = metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _database_url() -> str:
    explicit = config.get_main_option("sqlalchemy.url")
    if explicit:
        return explicit
    return load_settings().db_ddl_url


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) instead of running it."""
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = create_engine(_database_url(), pooled=False)
    try:
        with engine.connect() as connection:
            _configure_and_run(connection)
            # Alembic commits its own per-migration transactions; this also
            # commits anything autobegun outside them (e.g. the creation of
            # alembic_version by `alembic stamp`), which SQLite would
            # otherwise roll back when the connection closes.
            connection.commit()
    finally:
        engine.dispose()


if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
