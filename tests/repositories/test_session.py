"""Engine configuration on real MariaDB and SQLite databases."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from ichnaea.repositories import session
from ichnaea.repositories.session import (
    create_engine,
    date_or_none,
    datetime_or_none,
    is_sqlite,
    make_sessionmaker,
)


def test_sqlite_engine_creates_parent_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "ichnaea.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == 30_000
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA query_only").scalar() == 0
        assert path.is_file()
    finally:
        engine.dispose()


def test_sqlite_engine_supports_savepoints(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            savepoint = connection.begin_nested()
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
            savepoint.rollback()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT x FROM t").scalars().all() == [1]
    finally:
        engine.dispose()


def test_readonly_engine_rejects_writes(db_url: str) -> None:
    engine = create_engine(db_url, readonly=True)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM api_key")).scalar() is not None
            with pytest.raises(OperationalError):
                connection.execute(text("INSERT INTO api_key (valid_key) VALUES ('ro')"))
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_mysql_engine_uses_repeatable_read_utf8mb4_and_spec_pool(mysql_url: str) -> None:
    engine = create_engine(mysql_url)
    try:
        with engine.connect() as connection:
            assert connection.get_isolation_level() == "REPEATABLE READ"
            charset = connection.exec_driver_sql("SELECT @@character_set_connection").scalar()
            assert charset == "utf8mb4"
        pool = engine.pool
        assert (pool.size(), pool.timeout()) == (10, 10.0)  # type: ignore[attr-defined]
        assert pool._max_overflow == 10  # type: ignore[attr-defined]
        assert pool._recycle == 3600
        # Pinged only after an idle second (test below), not at every checkout.
        assert pool._pre_ping is False
    finally:
        engine.dispose()


def test_mysql_engine_raises_operational_error_when_server_is_unreachable() -> None:
    # Nothing listens on port 9 (discard) of the test host.
    engine = create_engine("mysql+mysqldb://nobody@127.0.0.1:9/none", pooled=False)
    try:
        with pytest.raises(OperationalError):
            engine.connect()
    finally:
        engine.dispose()


def test_sessionmaker_keeps_objects_loaded_after_commit(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        factory = make_sessionmaker(engine)
        assert factory.kw["expire_on_commit"] is False
    finally:
        engine.dispose()


def test_is_sqlite_distinguishes_backends() -> None:
    assert is_sqlite("sqlite:///x.sqlite")
    assert not is_sqlite("mysql+mysqldb://root@127.0.0.1/location")


def test_create_engine_rejects_unsupported_backend() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        create_engine("postgresql://localhost/x")


def test_mysql_engine_without_driver_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from ichnaea.repositories.session import MissingDriverError

    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    with pytest.raises(MissingDriverError, match="pip install 'ichnaea\\[mysql\\]'"):
        create_engine("mysql+mysqldb://root@127.0.0.1:3306/location")


def test_mysql_dates_are_read_as_mysqlclient_reads_them(mysql_url: str) -> None:
    """Dates and date-times come through the standard library's C parser: the same
    values as mysqlclient's own converters, fractions included, NULL as None."""
    from MySQLdb.constants import FIELD_TYPE
    from MySQLdb.times import Date_or_None, DateTime_or_None

    engine = create_engine(mysql_url)
    try:
        with engine.connect() as connection:
            row = connection.exec_driver_sql(
                "SELECT CAST('2026-12-07 04:05:06' AS DATETIME),"
                " CAST('2026-12-07 04:05:06.250000' AS DATETIME(6)),"
                " CAST('0001-01-01' AS DATE), CAST(NULL AS DATETIME),"
                " TIMESTAMP('2026-02-28 23:59:59'), CAST('2026-12-07' AS DATE)"
            ).one()
            converter = connection.connection.dbapi_connection.converter  # type: ignore[union-attr]
            assert converter[FIELD_TYPE.DATETIME] is datetime_or_none
            assert converter[FIELD_TYPE.DATE] is date_or_none
        assert tuple(row) == (
            datetime(2026, 12, 7, 4, 5, 6),
            datetime(2026, 12, 7, 4, 5, 6, 250000),
            date(1, 1, 1),
            None,
            datetime(2026, 2, 28, 23, 59, 59),
            date(2026, 12, 7),
        )
    finally:
        engine.dispose()
    for text_value in ("2026-12-07 04:05:06", "2026-12-07 04:05:06.5", "9999-12-31 23:59:59"):
        assert datetime_or_none(text_value) == DateTime_or_None(text_value)
    for text_value in ("2026-12-07", "0001-01-01"):
        assert date_or_none(text_value) == Date_or_None(text_value)
    # Zero dates (allowed by some SQL modes) are None, as mysqlclient reads them.
    assert datetime_or_none("0000-00-00 00:00:00") is DateTime_or_None("0000-00-00 00:00:00")
    assert date_or_none("0000-00-00") is Date_or_None("0000-00-00") is None


def test_mysql_connection_killed_while_idle_is_replaced_and_a_busy_one_is_not_pinged(
    mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(mysql_url, pool_size=1, max_overflow=0)

    def pings(connection: Connection) -> int:
        # COM_PING is one of the session's admin commands.
        status = "SHOW SESSION STATUS LIKE 'Com_admin_commands'"
        return int(connection.exec_driver_sql(status).one()[1])

    try:
        with engine.connect() as connection:
            first = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
            before = pings(connection)
        # Back at once: handed out again, the same connection, without a ping.
        for _ in range(3):
            with engine.connect() as connection:
                assert connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar() == first
        with engine.connect() as connection:
            assert pings(connection) == before
        monkeypatch.setattr(session, "PRE_PING_IDLE_S", 0.0)  # as if a second went by
        with engine.connect() as connection:
            assert pings(connection) == before + 1  # pinged once before use
        with create_engine(mysql_url, pooled=False).connect() as other:
            other.exec_driver_sql(f"KILL CONNECTION {first}")
        # The idle connection is found dead by its ping and replaced.
        with engine.connect() as connection:
            second = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        assert second != first
    finally:
        engine.dispose()
