"""Database fixtures: a real MariaDB database per xdist worker and a SQLite file.

Backends:

* ``mysql_server_url`` (session): the server at ``ICHNAEA_TEST_MYSQL_URL``
  (default ``mysql+mysqldb://root@127.0.0.1:3306``), checked once. If it is
  unreachable, MySQL tests are skipped, or fail when ``CI=true``.
* ``mysql_url`` (session): the database ``ichnaea_test_<worker>`` on it,
  dropped and re-created at session start and dropped at the end. Set
  ``ICHNAEA_TEST_DB_PREFIX`` to replace ``ichnaea_test`` when two test runs
  share one server.
* ``sqlite_url`` (session): a database file in the session's tmp dir.

Migrated databases (the schema always comes from the real migrations):

* ``migrated_mysql_url`` / ``migrated_sqlite_url`` (session): the above
  after ``alembic upgrade head``; each backend is migrated once per session.
* ``db_url`` (session, parametrised ``mysql``/``sqlite``; the ``mysql``
  parameter is marked ``mysql``): one of the two migrated URLs.
* ``db_engine`` (session): an engine from ``ichnaea.repositories.session``.
* ``db_session`` (function): a session whose work is rolled back after the
  test. It is bound to a connection inside an outer transaction and turns
  its own commits into SAVEPOINT releases, so code under test may commit.
  On SQLite that outer transaction holds the write lock (``BEGIN
  IMMEDIATE``): code under test must write through this session, not
  through a second connection of ``db_engine``.

Empty databases, for tests of migrations and setup:

* ``empty_db_url`` (function, parametrised): a database with no tables.
* ``mysql_scratch_url`` (function): the URL of a database that does not
  exist yet (``ichnaea_test_<worker>_scratch``); dropped after the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from ichnaea.migrate import alembic_config
from ichnaea.repositories.session import create_engine
from tests._support import backend_unavailable

MYSQL_SERVER_ENV = "ICHNAEA_TEST_MYSQL_URL"
DEFAULT_MYSQL_SERVER = "mysql+mysqldb://root@127.0.0.1:3306"
DB_PREFIX_ENV = "ICHNAEA_TEST_DB_PREFIX"
# The mysql parameter carries the `mysql` marker, so `-m "not mysql"` runs
# the SQLite half alone.
BACKENDS = [pytest.param("mysql", marks=pytest.mark.mysql), "sqlite"]
BACKEND_IDS = ["mysql", "sqlite"]


def db_prefix() -> str:
    """The prefix of test database and account names on the shared server."""
    return os.environ.get(DB_PREFIX_ENV, "ichnaea_test")


def upgrade_to_head(url: str) -> None:
    """Run the real migrations on ``url``, in one transaction."""
    engine = create_engine(url, pooled=False)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()


def _server_engine(server_url: URL) -> Engine:
    return sa.create_engine(server_url, poolclass=NullPool, connect_args={"connect_timeout": 3})


def _database_url(server_url: URL, name: str) -> str:
    url = server_url.set(database=name).update_query_dict({"charset": "utf8mb4"})
    return url.render_as_string(hide_password=False)


def _drop_database(server_url: URL, name: str) -> None:
    engine = _server_engine(server_url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        engine.dispose()


def _recreate_database(server_url: URL, name: str) -> None:
    engine = _server_engine(server_url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            connection.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def mysql_server_url() -> URL:
    url = make_url(os.environ.get(MYSQL_SERVER_ENV, DEFAULT_MYSQL_SERVER))
    engine = _server_engine(url)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        backend_unavailable(
            f"MariaDB/MySQL at {url.render_as_string(hide_password=True)} is unreachable: "
            f"{exc.orig}"
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def mysql_url(mysql_server_url: URL, worker_id: str) -> Iterator[str]:
    name = f"{db_prefix()}_{worker_id}"
    _recreate_database(mysql_server_url, name)
    yield _database_url(mysql_server_url, name)
    _drop_database(mysql_server_url, name)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = Path(tmp_path_factory.mktemp("sqlite")) / "ichnaea.sqlite"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def migrated_mysql_url(mysql_url: str) -> str:
    upgrade_to_head(mysql_url)
    return mysql_url


@pytest.fixture(scope="session")
def migrated_sqlite_url(sqlite_url: str) -> str:
    upgrade_to_head(sqlite_url)
    return sqlite_url


@pytest.fixture(scope="session", params=BACKENDS, ids=BACKEND_IDS)
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"migrated_{request.param}_url")
    return url


@pytest.fixture(scope="session")
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    with db_engine.connect() as connection:
        transaction = connection.begin()
        session = Session(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


@pytest.fixture
def mysql_scratch_url(mysql_server_url: URL, worker_id: str) -> Iterator[str]:
    name = f"{db_prefix()}_{worker_id}_scratch"
    _drop_database(mysql_server_url, name)
    yield _database_url(mysql_server_url, name)
    _drop_database(mysql_server_url, name)


@pytest.fixture(params=BACKENDS, ids=BACKEND_IDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite'}"
    url: str = request.getfixturevalue("mysql_scratch_url")
    server_url: URL = request.getfixturevalue("mysql_server_url")
    name = make_url(url).database
    assert name is not None
    _recreate_database(server_url, name)
    return url
