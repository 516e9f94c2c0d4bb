"""SQL of the statistics tables (the algorithms: tests/pipeline/ops/test_stats.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ichnaea.enums import StatKey
from ichnaea.models.stats import RegionStat, Stat
from ichnaea.repositories.statistics import (
    DailyCount,
    RegionCount,
    add_to_running_totals,
    delete_stats_before,
    read_daily_counts,
    read_region_counts,
    replace_region_counts,
    use_read_committed,
)

TODAY = date(2024, 5, 6)
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture
def connection(db_engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back, over empty statistics tables."""
    with db_engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(sa.delete(Stat))
            connection.execute(sa.delete(RegionStat))
            yield connection
        finally:
            transaction.rollback()


def test_add_to_running_totals_starts_new_rows_from_the_last_total(
    connection: Connection,
) -> None:
    connection.execute(sa.insert(Stat).values(key=int(StatKey.wifi), time=YESTERDAY, value=10))
    add_to_running_totals(
        connection,
        {(StatKey.wifi, TODAY): 3, (StatKey.wifi, YESTERDAY): 2, (StatKey.blue, TODAY): 0},
    )
    add_to_running_totals(connection, {(StatKey.wifi, TODAY): 1})
    assert read_daily_counts(connection) == [
        DailyCount(StatKey.wifi, YESTERDAY, 12),
        DailyCount(StatKey.wifi, TODAY, 16),
        DailyCount(StatKey.blue, TODAY, 0),
    ]


def test_delete_stats_before_keeps_the_cutoff_day(connection: Connection) -> None:
    for day in (YESTERDAY - timedelta(days=1), YESTERDAY, TODAY):
        connection.execute(sa.insert(Stat).values(key=int(StatKey.cell), time=day, value=1))
    assert delete_stats_before(connection, YESTERDAY) == 1
    assert [count.day for count in read_daily_counts(connection)] == [YESTERDAY, TODAY]


def test_replace_region_counts_leaves_exactly_the_given_rows(connection: Connection) -> None:
    connection.execute(sa.insert(RegionStat).values(region="FR", gsm=1, wifi=2))
    connection.execute(sa.insert(RegionStat).values(region="DE", gsm=99, blue=99))
    counts = [RegionCount("CA", 2, 0, 4, 2, 0), RegionCount("DE", 3, 3, 0, 0, 5)]
    replace_region_counts(connection, counts)
    assert read_region_counts(connection) == counts


def test_use_read_committed_only_on_mysql(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        before = connection.get_isolation_level()
        use_read_committed(connection)
        level = connection.get_isolation_level()
    if db_engine.dialect.name in ("mysql", "mariadb"):
        assert level == "READ COMMITTED"
    else:
        assert level == before
