"""First-time database setup and schema upgrades (the ``ichnaea migrate`` command).

:func:`migrate` makes the configured database ready to serve, and is safe to
run on every deployment:

1. MySQL/MariaDB: connect to the server without selecting a database and
   ``CREATE DATABASE IF NOT EXISTS`` it (``utf8mb4``). If separate
   read-only and read-write accounts are configured (``DB_RO_USER``,
   ``DB_RW_USER``), create them for any host (``'%'``), set their password
   to the configured one, and grant ``SELECT`` (read-only) or ``SELECT,
   INSERT, UPDATE, DELETE`` (read-write) on that database. An account with
   the same name as the DDL user is left alone.
   SQLite: create the data directory (the database file appears on first
   connection).
2. Run the Alembic migrations up to the head revision, in one transaction
   (atomic on SQLite; MySQL commits each DDL statement on its own).

Where the migrations are: the ``migrations/`` folder at the root of the
source tree, found relative to this package, which is right for a checkout
or an editable install. An installed wheel does not contain that folder; set
``ICHNAEA_MIGRATIONS_DIR`` to a copy of it (the Docker image copies it next
to the application and sets the variable).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from ichnaea.config import DbUser, Settings
from ichnaea.repositories.session import create_engine, is_sqlite

MIGRATIONS_DIR_ENV = "ICHNAEA_MIGRATIONS_DIR"
UNKNOWN_REVISION = "unknown"

READONLY_PRIVILEGES = "SELECT"
READWRITE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


class MigrationsNotFoundError(RuntimeError):
    """The Alembic migrations folder is not where the configuration says."""


def migrations_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the Alembic script folder: ``$ICHNAEA_MIGRATIONS_DIR`` or the source tree's."""
    env = os.environ if environ is None else environ
    configured = env.get(MIGRATIONS_DIR_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser().absolute()
    else:
        path = Path(__file__).resolve().parent.parent / "migrations"
    if not (path / "env.py").is_file():
        raise MigrationsNotFoundError(
            f"no Alembic migrations at {path} (expected env.py there); "
            f"set {MIGRATIONS_DIR_ENV} to the folder holding env.py and versions/"
        )
    return path


def alembic_config(
    connection: Connection | None = None, *, directory: Path | None = None
) -> Config:
    """Return an Alembic configuration for embedding (no ini file, no logging setup).

    With ``connection``, migrations run on it and inside its transaction if
    one is open; otherwise ``env.py`` finds the database from the settings
    or from a ``sqlalchemy.url`` option set by the caller.
    """
    script_location = str(directory if directory is not None else migrations_dir())
    config = Config()
    # ConfigParser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", script_location.replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["configure_logger"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision(directory: Path | None = None) -> str:
    """Return the head revision(s) of the migration scripts, sorted and comma-joined."""
    script = ScriptDirectory.from_config(alembic_config(directory=directory))
    return ",".join(sorted(script.get_heads()))


def current_revision(bind: Engine | Connection) -> str:
    """Return the database's revision(s), sorted and comma-joined, or ``"unknown"``.

    ``"unknown"`` means no revision is recorded (an empty or un-migrated
    database). Connection errors propagate: the caller decides whether a
    down database is an error (the heartbeat reports it as one). A plain
    query, so the heartbeat does not log alembic's context messages.
    """
    if not isinstance(bind, Connection):
        with bind.connect() as connection:
            return current_revision(connection)
    if not sa.inspect(bind).has_table("alembic_version"):
        return UNKNOWN_REVISION
    heads = bind.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return ",".join(sorted(heads)) or UNKNOWN_REVISION


def migrate(settings: Settings, *, echo: Callable[[str], None] = print) -> str:
    """Create the database (and users) if needed, upgrade it to head; return the revision."""
    url = make_url(settings.db_ddl_url)
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        echo(f"Using the SQLite database {url.database}")
    else:
        _prepare_mysql(url, settings, echo)

    engine = create_engine(url, pooled=False)
    try:
        echo(f"Upgrading {url.render_as_string(hide_password=True)} to the head revision")
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
        revision = current_revision(engine)
    finally:
        engine.dispose()
    echo(f"Database schema at revision {revision}")
    return revision


def _prepare_mysql(url: URL, settings: Settings, echo: Callable[[str], None]) -> None:
    database = url.database
    if not database:
        raise ValueError(f"{url.render_as_string(hide_password=True)} names no database to create")
    # URL.set() ignores None, so build the server URL without a database.
    server_url = URL.create(
        url.drivername,
        username=url.username,
        password=url.password,
        host=url.host,
        port=url.port,
        query=url.query,
    )
    server = create_engine(server_url, pooled=False)
    try:
        with server.connect() as connection:
            quoted = connection.dialect.identifier_preparer.quote_identifier(database)
            echo(f"Creating database {quoted} if it does not exist")
            connection.exec_driver_sql(
                f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4"
            )
            accounts = (
                ("read-only", settings.db_readonly_user, READONLY_PRIVILEGES),
                ("read-write", settings.db_readwrite_user, READWRITE_PRIVILEGES),
            )
            for role, user, privileges in accounts:
                if user is None:
                    continue
                if user.name == url.username:
                    echo(f"Not changing {role} user {user.name!r}: it is the DDL user")
                    continue
                _create_user(connection, user, quoted, privileges)
                echo(f"Granted {privileges} on {quoted} to {role} user {user.name!r}@'%'")
                if role == "read-only":
                    granted = _grant_replica_monitor(connection, user)
                    if granted:
                        echo(
                            f"Granted {granted} to {user.name!r}@'%' (the heartbeat's replica lag)"
                        )
            connection.commit()
    finally:
        server.dispose()


def _grant_replica_monitor(connection: Connection, user: DbUser) -> str | None:
    """Let the web role read its replica's state (``SHOW SLAVE STATUS``); the privilege granted.

    ``SLAVE MONITOR`` on MariaDB 10.5.9 and later, ``REPLICATION CLIENT``
    on MySQL and older MariaDB; None if the server refuses both (the
    heartbeat then shows the lag as unknown).
    """
    for privilege in ("SLAVE MONITOR", "REPLICATION CLIENT"):
        try:
            connection.exec_driver_sql(f"GRANT {privilege} ON *.* TO %s@'%%'", (user.name,))
        except DBAPIError:
            continue
        return privilege
    return None


def _create_user(connection: Connection, user: DbUser, database: str, privileges: str) -> None:
    # mysqlclient interpolates %s parameters client-side as quoted string
    # literals, which is what these account statements need; the host
    # wildcard is a literal '%', escaped as %%.
    credentials = (user.name, user.password)
    connection.exec_driver_sql("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", credentials)
    # Keep the password in step with the configuration on re-runs.
    connection.exec_driver_sql("ALTER USER %s@'%%' IDENTIFIED BY %s", credentials)
    connection.exec_driver_sql(f"GRANT {privileges} ON {database}.* TO %s@'%%'", (user.name,))
