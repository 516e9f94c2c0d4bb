"""Daily stat counters and region statistics (spec pipeline.md sections 13 and 23.8)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import date, timedelta

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ichnaea.broker import keyspace
from ichnaea.codecs import encode_areaid, encode_mac, mac_shard_id
from ichnaea.enums import Radio, StatKey
from ichnaea.models.cell import CellArea, CellAreaNr, area_table
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS, MacStation
from ichnaea.models.stats import RegionStat, Stat
from ichnaea.pipeline.ops.stats import (
    cleanup_stat,
    incr_stat_counters,
    update_region_stats,
    update_stat_counters,
)

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster

TODAY = date(2024, 5, 6)
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """``db_engine`` with empty statistics and station tables (they outlive each test)."""
    with db_engine.begin() as connection:
        connection.execute(sa.delete(Stat))
        connection.execute(sa.delete(RegionStat))
        connection.execute(sa.delete(CellArea))
        connection.execute(sa.delete(CellAreaNr))
        for table in (*BLUE_SHARDS.values(), *WIFI_SHARDS.values()):
            connection.execute(sa.delete(table))
    return db_engine


def add_stat(engine: Engine, stat_key: StatKey, day: date, value: int) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(Stat).values(key=int(stat_key), time=day, value=value))


def stat_values(engine: Engine, stat_key: StatKey) -> dict[date, int | None]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(Stat.time, Stat.value).where(Stat.key == int(stat_key)).order_by(Stat.time)
        )
        return {day: value for day, value in rows}


def counter(redis_client: redis.Redis, stat_key: StatKey, day: date) -> int:
    raw = redis_client.get(keyspace.stat_counter(stat_key.name, day))
    return int(raw) if raw is not None else 0


def test_counter_key_names_the_stat_and_day() -> None:
    assert (
        keyspace.stat_counter(StatKey.unique_wifi.name, TODAY) == "statcounter_unique_wifi_20240506"
    )
    assert keyspace.stat_counter(StatKey.cell.name, date(2016, 1, 2)) == "statcounter_cell_20160102"


def test_incr_stat_counters_adds_and_expires_even_zero_counts(redis_client: redis.Redis) -> None:
    with redis_client.pipeline() as pipe:
        incr_stat_counters(pipe, {StatKey.wifi: 3, StatKey.unique_wifi: 0}, TODAY)
        incr_stat_counters(pipe, {StatKey.wifi: 2}, TODAY)
        pipe.execute()
    assert counter(redis_client, StatKey.wifi, TODAY) == 5
    unique_key = keyspace.stat_counter(StatKey.unique_wifi.name, TODAY)
    assert redis_client.get(unique_key) == b"0"
    assert 172_790 <= int(redis_client.ttl(unique_key)) <= 172_800


def test_first_counter_creates_running_total(engine: Engine, redis_client: redis.Redis) -> None:
    redis_client.set(keyspace.stat_counter(StatKey.cell.name, TODAY), 3)
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.cell) == {YESTERDAY: 0, TODAY: 3}
    assert counter(redis_client, StatKey.cell, TODAY) == 0


def test_counter_adds_to_yesterdays_total_then_to_todays(
    engine: Engine, redis_client: redis.Redis
) -> None:
    add_stat(engine, StatKey.unique_cell, YESTERDAY, 5)
    redis_client.set(keyspace.stat_counter(StatKey.unique_cell.name, TODAY), 4)
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.unique_cell)[TODAY] == 9
    redis_client.incrby(keyspace.stat_counter(StatKey.unique_cell.name, TODAY), 3)
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.unique_cell) == {YESTERDAY: 5, TODAY: 12}


def test_running_total_carries_over_missing_days(engine: Engine, redis_client: redis.Redis) -> None:
    add_stat(engine, StatKey.wifi, TODAY - timedelta(days=7), 7)
    redis_client.set(keyspace.stat_counter(StatKey.wifi.name, TODAY), 3)
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.wifi) == {
        TODAY - timedelta(days=7): 7,
        YESTERDAY: 7,
        TODAY: 10,
    }


def test_yesterdays_counter_is_persisted_before_todays(
    engine: Engine, redis_client: redis.Redis
) -> None:
    add_stat(engine, StatKey.blue, TODAY - timedelta(days=2), 1)
    add_stat(engine, StatKey.blue, YESTERDAY, 3)
    redis_client.set(keyspace.stat_counter(StatKey.blue.name, YESTERDAY), 5)
    redis_client.set(keyspace.stat_counter(StatKey.blue.name, TODAY), 7)
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.blue) == {
        TODAY - timedelta(days=2): 1,
        YESTERDAY: 8,
        TODAY: 15,
    }
    assert counter(redis_client, StatKey.blue, YESTERDAY) == 0
    assert counter(redis_client, StatKey.blue, TODAY) == 0


def test_station_counts_flow_into_running_totals(engine: Engine, redis_client: redis.Redis) -> None:
    # Spec 23.8: the updater's counters, then update_statcounter.
    add_stat(engine, StatKey.unique_wifi, YESTERDAY, 100)
    with redis_client.pipeline() as pipe:
        incr_stat_counters(pipe, {StatKey.wifi: 4, StatKey.unique_wifi: 2}, TODAY)
        pipe.execute()
    assert counter(redis_client, StatKey.wifi, TODAY) == 4
    assert counter(redis_client, StatKey.unique_wifi, TODAY) == 2
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.wifi)[TODAY] == 4
    assert stat_values(engine, StatKey.unique_wifi)[TODAY] == 102
    assert redis_client.get(keyspace.stat_counter(StatKey.wifi.name, TODAY)) == b"0"
    assert redis_client.get(keyspace.stat_counter(StatKey.unique_wifi.name, TODAY)) == b"0"
    # Every stat key has a row for both days (the one for yesterday existed).
    with engine.connect() as connection:
        rows = connection.execute(sa.select(Stat.key, Stat.time)).all()
    assert sorted(rows) == sorted((int(k), day) for k in StatKey for day in (YESTERDAY, TODAY))


@pytest.fixture
def increment_on_commit(
    engine: Engine, redis_client: redis.Redis
) -> Iterator[list[tuple[str, int]]]:
    """Increments sent to Redis when the next transaction of ``engine`` commits."""
    pending: list[tuple[str, int]] = []

    def on_commit(_: Connection) -> None:
        while pending:
            redis_client.incrby(*pending.pop())

    event.listen(engine, "commit", on_commit)
    yield pending
    event.remove(engine, "commit", on_commit)


def test_increments_during_the_update_are_kept_for_the_next_run(
    engine: Engine, redis_client: redis.Redis, increment_on_commit: list[tuple[str, int]]
) -> None:
    key = keyspace.stat_counter(StatKey.wifi.name, TODAY)
    redis_client.set(key, 3)
    increment_on_commit.append((key, 2))  # arrives after the read, before the DECRBY
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.wifi)[TODAY] == 3
    assert counter(redis_client, StatKey.wifi, TODAY) == 2
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.wifi)[TODAY] == 5
    assert counter(redis_client, StatKey.wifi, TODAY) == 0


def test_overlapping_run_does_nothing(engine: Engine, redis_client: redis.Redis) -> None:
    redis_client.set(keyspace.stat_counter(StatKey.wifi.name, TODAY), 3)
    other_run = redis_client.lock(keyspace.STAT_COUNTER_LOCK, timeout=60)
    assert other_run.acquire(blocking=False)
    try:
        update_stat_counters(engine, redis_client, today=TODAY)
    finally:
        other_run.release()
    assert stat_values(engine, StatKey.wifi) == {}
    assert counter(redis_client, StatKey.wifi, TODAY) == 3
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.wifi)[TODAY] == 3
    assert not redis_client.exists(keyspace.STAT_COUNTER_LOCK)


def test_cleanup_stat_keeps_two_years(engine: Engine) -> None:
    add_stat(engine, StatKey.cell, TODAY - timedelta(days=731), 1)
    add_stat(engine, StatKey.wifi, TODAY - timedelta(days=731), 1)
    add_stat(engine, StatKey.cell, TODAY - timedelta(days=730), 2)
    add_stat(engine, StatKey.cell, TODAY, 3)
    assert cleanup_stat(engine, today=TODAY) == 2
    assert stat_values(engine, StatKey.cell) == {TODAY - timedelta(days=730): 2, TODAY: 3}
    assert stat_values(engine, StatKey.wifi) == {}


def add_stations(
    engine: Engine,
    shards: Mapping[str, type[MacStation]],
    region: str | None,
    count: int,
    start: int,
) -> None:
    with engine.begin() as connection:
        for n in range(start, start + count):
            # Vary the 5th hex digit so the stations spread over the shards.
            mac = f"0123{n % 16:x}{n:07x}"
            connection.execute(
                sa.insert(shards[mac_shard_id(mac)]).values(
                    mac=encode_mac(mac), lat=1.0, lon=2.0, region=region
                )
            )


def add_area(engine: Engine, radio: Radio, lac: int, region: str | None, num_cells: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(area_table(radio)).values(
                areaid=encode_areaid(radio, 1, 1, lac),
                radio=int(radio),
                mcc=1,
                mnc=1,
                lac=lac,
                region=region,
                num_cells=num_cells,
            )
        )


def region_rows(engine: Engine) -> dict[str, tuple[int | None, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                RegionStat.region,
                RegionStat.gsm,
                RegionStat.wcdma,
                RegionStat.lte,
                RegionStat.blue,
                RegionStat.wifi,
            )
        )
        return {row[0]: tuple(row[1:]) for row in rows}


def test_region_stats_count_cells_and_stations_per_region(
    engine: Engine, redis_client: redis.Redis
) -> None:
    add_stations(engine, BLUE_SHARDS, "CA", 2, start=0)
    add_stations(engine, BLUE_SHARDS, "GB", 3, start=10)
    add_stations(engine, BLUE_SHARDS, None, 4, start=20)
    add_area(engine, Radio.gsm, 1, "DE", 1)
    add_area(engine, Radio.gsm, 2, "DE", 2)
    add_area(engine, Radio.gsm, 3, "CA", 2)
    add_area(engine, Radio.wcdma, 4, "DE", 3)
    add_area(engine, Radio.lte, 5, "CA", 4)
    add_area(engine, Radio.lte, 6, None, 9)
    add_area(engine, Radio.nr, 7, "CA", 8)  # region_stat has no NR column
    add_stations(engine, WIFI_SHARDS, "DE", 5, start=30)
    add_stations(engine, WIFI_SHARDS, "US", 6, start=40)
    # A stale row and a cached page to be dropped.
    with engine.begin() as connection:
        connection.execute(sa.insert(RegionStat).values(region="FR", gsm=1, wifi=2))
        connection.execute(sa.insert(RegionStat).values(region="DE", gsm=99, blue=99))
    redis_client.set(keyspace.REGION_STATS_CACHE, "cached")

    update_region_stats(engine, redis_client)

    assert region_rows(engine) == {
        "CA": (2, 0, 4, 2, 0),
        "DE": (3, 3, 0, 0, 5),
        "GB": (0, 0, 0, 3, 0),
        "US": (0, 0, 0, 0, 6),
    }
    assert not redis_client.exists(keyspace.REGION_STATS_CACHE)


def test_region_stats_unchanged_when_nothing_is_counted(
    engine: Engine, redis_client: redis.Redis
) -> None:
    add_stations(engine, WIFI_SHARDS, None, 3, start=0)
    with engine.begin() as connection:
        connection.execute(sa.insert(RegionStat).values(region="FR", gsm=1, wifi=2))
    redis_client.set(keyspace.REGION_STATS_CACHE, "cached")
    update_region_stats(engine, redis_client)
    assert region_rows(engine) == {"FR": (1, None, None, None, 2)}
    assert redis_client.get(keyspace.REGION_STATS_CACHE) == b"cached"


def test_a_run_stopped_before_its_commit_is_finished_by_the_next_one(
    engine: Engine, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ichnaea.pipeline.ops.stats as stats

    redis_client.set(keyspace.stat_counter(StatKey.wifi.name, TODAY), 5)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(stats, "_apply_pending", crash)
        with pytest.raises(RuntimeError):
            update_stat_counters(engine, redis_client, today=TODAY)
    # The value left the counter but is kept, pending.
    assert counter(redis_client, StatKey.wifi, TODAY) == 0
    assert stat_values(engine, StatKey.wifi) == {}
    redis_client.incrby(keyspace.stat_counter(StatKey.wifi.name, TODAY), 2)  # meanwhile
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.wifi) == {YESTERDAY: 0, TODAY: 7}
    pending = keyspace.stat_counter_pending(keyspace.stat_counter(StatKey.wifi.name, TODAY))
    assert redis_client.exists(pending) == 0


def test_a_run_stopped_after_its_commit_counts_nothing_twice_original_quirk_fixed(
    engine: Engine, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_client.set(keyspace.stat_counter(StatKey.blue.name, TODAY), 4)
    real_delete = redis_client.delete

    def crash_on_pending(*names: str) -> int:
        if any(name.endswith("}:pending") for name in names):
            raise redis.ConnectionError("worker killed after the commit")
        return int(real_delete(*names))

    with monkeypatch.context() as patch:
        patch.setattr(redis_client, "delete", crash_on_pending)
        with pytest.raises(redis.ConnectionError):
            update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.blue) == {YESTERDAY: 0, TODAY: 4}
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.blue) == {YESTERDAY: 0, TODAY: 4}  # the original: 8
    assert counter(redis_client, StatKey.blue, TODAY) == 0


def test_values_an_older_version_left_pending_are_stored_once(
    engine: Engine, redis_client: redis.Redis
) -> None:
    # Before 2026-12 one hash held every taken value of a run that stopped.
    counter_key = keyspace.stat_counter(StatKey.wifi.name, TODAY)
    redis_client.hset(
        keyspace.LEGACY_STAT_COUNTER_PENDING, mapping={"_run": uuid.uuid4().hex, counter_key: "3"}
    )
    redis_client.set(counter_key, 4)
    update_stat_counters(engine, redis_client, today=TODAY)
    update_stat_counters(engine, redis_client, today=TODAY)
    assert stat_values(engine, StatKey.wifi) == {YESTERDAY: 0, TODAY: 7}
    assert redis_client.exists(keyspace.LEGACY_STAT_COUNTER_PENDING) == 0
