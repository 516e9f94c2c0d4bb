"""Database engines and session factories for MySQL/MariaDB and SQLite.

:func:`create_engine` is the one place that knows how to connect:

* MySQL/MariaDB (``mysql+mysqldb://``): a pool of 10 connections plus 10
  overflow, a 10 s wait for a free connection, connections recycled after
  an hour and pinged before use if they were idle for a second or more
  (the server drops idle ones; a busy worker or web process skips the
  round trip on the connections it keeps using), REPEATABLE
  READ isolation, ``utf8mb4``, and a 5 s connect timeout so that a server
  that is down fails a request quickly instead of hanging it.
* SQLite (embedded single-host mode): WAL journal so readers never block
  the writer, a 30 s busy timeout, foreign keys on, connections shareable
  across threads (the pool hands them out one at a time), and the parent
  directory of the database file created on first use. pysqlite's own
  transaction handling is switched off in favour of explicit ``BEGIN``
  statements, so that SAVEPOINTs and transactional DDL work; read-write
  engines use ``BEGIN IMMEDIATE`` to take the write lock up front, which
  avoids "database is locked" failures when two read-modify-write
  transactions race.

MySQL URLs need the optional ``mysqlclient`` driver (the ``mysql`` extra,
built against the MariaDB client headers); :func:`require_driver` turns its
absence into a :class:`MissingDriverError` that says what to install, which
the CLI checks once at start-up for every configured URL.

``readonly=True`` makes the connection refuse writes (MySQL ``SET SESSION
TRANSACTION READ ONLY``, SQLite ``PRAGMA query_only``): the web role reads
only and should not be able to write by mistake.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ichnaea.repositories.drivers import MYSQL_DIALECTS as MYSQL_DIALECTS
from ichnaea.repositories.drivers import MYSQL_DRIVER_HINT as MYSQL_DRIVER_HINT
from ichnaea.repositories.drivers import MissingDriverError as MissingDriverError
from ichnaea.repositories.drivers import require_driver as require_driver

MYSQL_POOL_SIZE = 10
MYSQL_MAX_OVERFLOW = 10
POOL_TIMEOUT_S = 10.0
POOL_RECYCLE_S = 3600
MYSQL_CONNECT_TIMEOUT_S = 5
# A MySQL connection idle at least this long is pinged before it is used.
PRE_PING_IDLE_S = 1.0
SQLITE_BUSY_TIMEOUT_S = 30


def mysqldb_conversions() -> dict[Any, Any]:
    """mysqlclient's conversions, with dates and times read by the standard library's
    C parser (``fromisoformat``) instead of mysqlclient's Python one, which took a
    fifth of the CPU of reading station rows (two date-times and up to three dates
    a row). The values are the same; a zero date is None, as mysqlclient has it."""
    from MySQLdb.constants import FIELD_TYPE
    from MySQLdb.converters import conversions

    conv = dict(conversions)
    conv[FIELD_TYPE.DATETIME] = conv[FIELD_TYPE.TIMESTAMP] = datetime_or_none
    conv[FIELD_TYPE.DATE] = date_or_none
    return conv


def datetime_or_none(text: str) -> datetime | None:
    """A DATETIME or TIMESTAMP column's text as a naive datetime; None for a zero date."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def date_or_none(text: str) -> date | None:
    """A DATE column's text as a date; None for a zero date."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def is_sqlite(url: str | URL) -> bool:
    """True for ``sqlite://`` URLs."""
    return make_url(url).get_backend_name() == "sqlite"


def is_mysql(connection: Connection) -> bool:
    """Whether ``connection`` talks to MySQL or MariaDB (their SQL, their driver)."""
    return connection.dialect.name in MYSQL_DIALECTS


def create_engine(
    url: str | URL,
    *,
    readonly: bool = False,
    pooled: bool = True,
    pool_size: int = MYSQL_POOL_SIZE,
    max_overflow: int = MYSQL_MAX_OVERFLOW,
    pool_timeout_s: float = POOL_TIMEOUT_S,
    pool_recycle_s: int = POOL_RECYCLE_S,
    connect_timeout_s: int = MYSQL_CONNECT_TIMEOUT_S,
    echo: bool = False,
) -> Engine:
    """Return an engine for ``url`` configured as described in the module docstring.

    ``pooled=False`` opens a fresh connection per checkout (``NullPool``),
    for short-lived tools such as migrations.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    pool_args: dict[str, Any]
    if pooled:
        pool_args = {
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout_s,
            "pool_recycle": pool_recycle_s,
        }
    else:
        pool_args = {"poolclass": NullPool}

    if readonly and pooled:
        # The read-only engines serve single-statement lookups on the request
        # path: autocommit, so returning a connection to the pool costs no
        # ROLLBACK round trip.
        pool_args["pool_reset_on_return"] = None
    if backend in MYSQL_DIALECTS:
        require_driver(parsed)
        engine = sqlalchemy.create_engine(
            parsed,
            isolation_level="AUTOCOMMIT" if readonly else "REPEATABLE READ",
            connect_args={
                "charset": "utf8mb4",
                "connect_timeout": connect_timeout_s,
                "conv": mysqldb_conversions(),
            },
            echo=echo,
            **pool_args,
        )
        if readonly:
            event.listen(engine, "connect", _mysql_readonly)
        event.listen(engine, "checkout", _ping_if_idle)
        event.listen(engine, "checkin", _mark_checked_in)
        return engine

    if backend == "sqlite":
        _create_sqlite_directory(parsed)
        engine = sqlalchemy.create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
            echo=echo,
            **pool_args,
        )
        event.listen(engine, "connect", _sqlite_readonly if readonly else _sqlite_readwrite)
        if not readonly:
            # Read-only connections stay in autocommit: every lookup is one
            # statement, and WAL gives each statement a consistent snapshot.
            event.listen(engine, "begin", lambda conn: _sqlite_begin(conn, "BEGIN IMMEDIATE"))
        return engine

    raise ValueError(f"unsupported database backend {backend!r} in {parsed!r}")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory for ``engine``.

    Objects stay usable after commit (``expire_on_commit=False``): services
    return ORM rows to callers after their transaction ended.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


def _create_sqlite_directory(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection idle for ``PRE_PING_IDLE_S`` or more before it is handed out.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip per
    transaction, about 2 % of a busy worker's CPU. A connection returned
    less than a second ago was working then; a dead one still fails its
    statement, as it could right after any ping.
    """
    checked_in = record.info.get("checked_in")
    if checked_in is not None and time.monotonic() - checked_in < PRE_PING_IDLE_S:
        return
    try:
        dbapi_connection.ping()
    except Exception as exc:
        # The pool drops the connection and checks out a fresh one.
        raise DisconnectionError(f"connection lost while idle: {exc}") from exc


def _mark_checked_in(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["checked_in"] = time.monotonic()


def _mysql_readonly(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION TRANSACTION READ ONLY")
    finally:
        cursor.close()


def _sqlite_setup(dbapi_connection: Any, pragmas: tuple[str, ...]) -> None:
    # Take transaction control away from pysqlite; the "begin" listener
    # emits BEGIN itself (SQLAlchemy's documented recipe for SAVEPOINT
    # support with pysqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in pragmas:
            cursor.execute(pragma)
    finally:
        cursor.close()


_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}",
    "PRAGMA foreign_keys=ON",
)


def _sqlite_readwrite(dbapi_connection: Any, _record: Any) -> None:
    _sqlite_setup(dbapi_connection, _SQLITE_PRAGMAS)


def _sqlite_readonly(dbapi_connection: Any, _record: Any) -> None:
    # journal_mode=WAL is persistent in the file; set it before query_only.
    _sqlite_setup(dbapi_connection, (*_SQLITE_PRAGMAS, "PRAGMA query_only=ON"))


def _sqlite_begin(connection: Connection, statement: str) -> None:
    connection.exec_driver_sql(statement)
