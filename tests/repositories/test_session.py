"""Engine configuration on real MariaDB and SQLite databases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ichnaea.repositories.session import create_engine, is_sqlite, make_sessionmaker


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
        assert pool._pre_ping is True
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
