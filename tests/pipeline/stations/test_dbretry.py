"""Lock-conflict retries (spec pipeline.md section 4, the DB retry decorator)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from ichnaea.pipeline.stations.dbretry import lock_error_code, with_lock_retry
from ichnaea.repositories.session import create_engine
from tests._support import RecordingMetrics


class MySQLError(Exception):
    """Stands in for MySQLdb.OperationalError: the server errno is args[0]."""


def mysql_error(errno: int, message: str) -> OperationalError:
    return OperationalError("UPDATE cell_area ...", {}, MySQLError(errno, message))


def failing(errors: list[Exception], result: str = "done") -> Callable[[], str]:
    """A callable that raises each of ``errors`` in turn, then returns ``result``."""
    pending = list(errors)

    def call() -> str:
        if pending:
            raise pending.pop(0)
        return result

    return call


def test_deadlock_is_retried_and_counted() -> None:
    metrics = RecordingMetrics()
    sleeps: list[float] = []
    result = with_lock_retry(
        failing([mysql_error(1213, "Deadlock found when trying to get lock")]),
        metrics=metrics,
        tags={"type": "cellarea"},
        sleep=sleeps.append,
        base_delay_s=0.5,
    )
    assert result == "done"
    assert len(sleeps) == 1
    assert 0.0 <= sleeps[0] <= 0.5
    assert metrics.counts == [("data.station.dberror", 1, {"type": "cellarea", "errno": "1213"})]


def test_lock_wait_timeout_is_retried_under_the_given_metric() -> None:
    metrics = RecordingMetrics()
    result = with_lock_retry(
        failing([mysql_error(1205, "Lock wait timeout exceeded")]),
        metrics=metrics,
        tags={},
        metric="datamaps.dberror",
        sleep=lambda _: None,
    )
    assert result == "done"
    assert metrics.counts == [("datamaps.dberror", 1, {"errno": "1205"})]


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    sleeps: list[float] = []
    errors: list[Exception] = [mysql_error(1213, "Deadlock") for _ in range(4)]
    with_lock_retry(
        failing(errors),
        metrics=RecordingMetrics(),
        tags={},
        attempts=5,
        sleep=sleeps.append,
        base_delay_s=1.0,
    )
    assert len(sleeps) == 4
    for retry, delay in enumerate(sleeps):
        assert 0.0 <= delay <= 2.0**retry


def test_other_database_errors_propagate_without_retry() -> None:
    metrics = RecordingMetrics()
    sleeps: list[float] = []
    error = IntegrityError("INSERT ...", {}, MySQLError(1062, "Duplicate entry"))
    with pytest.raises(IntegrityError):
        with_lock_retry(failing([error]), metrics=metrics, tags={}, sleep=sleeps.append, attempts=3)
    assert sleeps == []
    assert metrics.counts == []


def test_non_database_errors_propagate_without_retry() -> None:
    sleeps: list[float] = []
    with pytest.raises(KeyError):
        with_lock_retry(
            failing([KeyError("x")]), metrics=RecordingMetrics(), tags={}, sleep=sleeps.append
        )
    assert sleeps == []


def test_lock_error_is_reraised_after_the_last_attempt() -> None:
    metrics = RecordingMetrics()
    sleeps: list[float] = []
    errors: list[Exception] = [mysql_error(1213, "Deadlock") for _ in range(3)]
    with pytest.raises(OperationalError) as raised:
        with_lock_retry(failing(errors), metrics=metrics, tags={}, sleep=sleeps.append)
    assert raised.value is errors[2]
    assert len(sleeps) == 2
    assert [tags["errno"] for _, _, tags in metrics.counts] == ["1213"] * 3


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="attempts"):
        with_lock_retry(lambda: 1, metrics=RecordingMetrics(), tags={}, attempts=0)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("database is locked", "sqlite_busy"),
        ("database table is locked", "sqlite_locked"),
        ("database table is locked: cell_area", "sqlite_locked"),
        ("no such table: cell_area", None),
    ],
)
def test_sqlite_lock_errors_are_recognised(message: str, code: str | None) -> None:
    error = OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))
    assert lock_error_code(error) == code


def test_real_sqlite_busy_database_is_retried(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.sqlite'}"
    holder = create_engine(url)
    # A second engine that gives up on the lock at once instead of after 30 s.
    impatient = sa.create_engine(url, connect_args={"timeout": 0.05})
    try:
        with holder.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        held = holder.connect()
        held.begin()  # BEGIN IMMEDIATE: holds the write lock

        def release(_: float) -> None:
            held.rollback()
            held.close()

        def write() -> int:
            with impatient.begin() as connection:
                connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            return 1

        metrics = RecordingMetrics()
        assert with_lock_retry(write, metrics=metrics, tags={}, sleep=release) == 1
        assert [tags["errno"] for _, _, tags in metrics.counts] == ["sqlite_busy"]
        with holder.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    finally:
        impatient.dispose()
        holder.dispose()


@pytest.mark.mysql
def test_real_mysql_lock_wait_timeout_is_retried(migrated_mysql_url: str) -> None:
    engine = create_engine(migrated_mysql_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM region_stat WHERE region = 'ZZ'")
            connection.exec_driver_sql("INSERT INTO region_stat (region, gsm) VALUES ('ZZ', 1)")
        holder = engine.connect()
        holder.begin()
        holder.exec_driver_sql("SELECT gsm FROM region_stat WHERE region = 'ZZ' FOR UPDATE")
        released = threading.Event()

        def release(_: float) -> None:
            holder.rollback()
            holder.close()
            released.set()

        def write() -> int:
            with engine.begin() as connection:
                connection.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
                connection.exec_driver_sql("UPDATE region_stat SET gsm = 2 WHERE region = 'ZZ'")
            return 2

        metrics = RecordingMetrics()
        assert with_lock_retry(write, metrics=metrics, tags={"type": "test"}, sleep=release) == 2
        assert released.is_set()
        assert metrics.counts == [("data.station.dberror", 1, {"type": "test", "errno": "1205"})]
        with engine.begin() as connection:
            value = connection.exec_driver_sql(
                "SELECT gsm FROM region_stat WHERE region = 'ZZ'"
            ).scalar()
            connection.exec_driver_sql("DELETE FROM region_stat WHERE region = 'ZZ'")
        assert value == 2
    finally:
        engine.dispose()
