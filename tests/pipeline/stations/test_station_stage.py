"""The station stage against real storage: spec pipeline.md 9.7 examples 1-14.

The decisions themselves are tested without I/O in ``test_station_plan``;
these tests go through the whole stage, on both backend pairs (MariaDB +
the Redis server, SQLite + the embedded Redis): station rows are seeded in
the database, observations are pushed onto the shard queue in Redis,
:func:`ichnaea.pipeline.stations.updater.process_station_queue` runs once with a
fixed ``now``, and the rows, the Redis side effects (daily stat counters,
cell areas queued for ``update_cellarea``) and the metrics are read back.

Numbers, observation builders and row builders come from
``test_station_plan`` so both files check the same examples: base point
(51.5, -0.1) in GB, accuracy 10 m and the type's default signal (weight 1),
stations at the base point created and modified 10 days ago.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from ichnaea.broker import keyspace
from ichnaea.broker.reliable import SerialQueue
from ichnaea.codecs import encode_areaid, mac_shard_id
from ichnaea.enums import Radio, ReportSource
from ichnaea.geocode import Geocoder
from ichnaea.pipeline.stations.state import StationType, is_blocked
from ichnaea.pipeline.stations.updater import (
    StationQueue,
    encode_observation,
    process_station_queue,
    queue_for_name,
)
from ichnaea.regions import RegionTable
from ichnaea.repositories.session import create_engine
from ichnaea.repositories.station_rows import station_table
from tests.fixtures_pipeline import Pipeline
from tests.pipeline.stations.test_station_plan import (
    ALL_TYPES,
    GNSS,
    LAT,
    LON,
    MAX_DIST_M,
    NOW,
    QUERY,
    TODAY,
    assert_no_position,
    blocked_station,
    blue_change_batch,
    cell_change_inputs,
    days_ago,
    identity,
    key_of,
    new_station_batch,
    no_position_station,
    north,
    obs,
    split_batch,
    station,
    time_ago,
    wifi_change_batch,
    year_old_far_station,
)

OWNER = "station-stage-test"
DAY = f"{TODAY:%Y%m%d}"  # "20250314": the stat counters' day suffix
STAT_COUNTER_TTL_S = 172_800
METRICS = (
    "data.observation.insert",
    "data.station.new",
    "data.station.blocklist",
    "data.station.confirm",
)
BOTH_SOURCES = pytest.mark.parametrize("source", [GNSS, QUERY], ids=["gnss", "query"])
EVERY_TYPE = pytest.mark.parametrize("stype", ALL_TYPES, ids=[t.name for t in ALL_TYPES])


# ---------------------------------------------------------------------------
# Helpers: seed, queue, run, read back
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.load(RegionTable.load())


@pytest.fixture(autouse=True)
def _shared_geocoder(pipeline: Pipeline, geocoder: Geocoder) -> None:
    # Loading the region shapes takes a quarter of a second; the tests of
    # this module share one geocoder instead of loading it per test.
    pipeline.resources.geocoder = geocoder


def shard_queue(stype: StationType) -> StationQueue:
    """The shard queue of every station ``identity`` builds (MACs a8206749xxxx, GSM cells)."""
    if stype is StationType.cell:
        return queue_for_name("update_cell_gsm")
    return queue_for_name(f"update_{stype.name}_{mac_shard_id(identity(stype)['mac'])}")


def shard_table(stype: StationType) -> sa.Table:
    """The table that :func:`shard_queue` feeds."""
    queue = shard_queue(stype)
    return station_table(queue.stype.name, queue.shard)


def seed(pipeline: Pipeline, stype: StationType, *rows: dict[str, Any]) -> None:
    with pipeline.engine.begin() as conn:
        conn.execute(shard_table(stype).insert(), list(rows))


def push(pipeline: Pipeline, stype: StationType, observations: Sequence[dict[str, Any]]) -> None:
    pipeline.redis.rpush(shard_queue(stype).name, *map(encode_observation, observations))


def process(pipeline: Pipeline, stype: StationType, *, engine: sa.Engine | None = None) -> int:
    return process_station_queue(
        shard_queue(stype),
        engine=engine or pipeline.engine,
        client=pipeline.redis,
        geocoder=pipeline.resources.geocoder,
        metrics=pipeline.resources.metrics,  # the same RecordingMetrics as pipeline.metrics
        owner=OWNER,
        now=NOW,
    )


def stored(pipeline: Pipeline, stype: StationType) -> dict[bytes, dict[str, Any]]:
    """Every row of the shard's table, by station key."""
    table = shard_table(stype)
    with pipeline.engine.connect() as conn:
        rows = conn.execute(sa.select(table)).mappings()
        return {bytes(row[stype.key_column]): dict(row) for row in rows}


def run_stage(
    pipeline: Pipeline,
    stype: StationType,
    observations: Sequence[dict[str, Any]],
    *rows: dict[str, Any],
) -> dict[bytes, dict[str, Any]]:
    """Seed ``rows``, queue ``observations``, process one batch; return the table's rows."""
    if rows:
        seed(pipeline, stype, *rows)
    push(pipeline, stype, observations)
    assert process(pipeline, stype) == len(observations)
    serial = SerialQueue(pipeline.redis, shard_queue(stype).name)
    # The batch was acknowledged: nothing queued, nothing in flight.
    assert serial.size() == 0
    assert not pipeline.redis.exists(serial.inflight_key, serial.batch_id_key, serial.lease_key)
    return stored(pipeline, stype)


def counted(pipeline: Pipeline, stype: StationType) -> dict[str, float]:
    """The stage's four counters, tagged with the station type."""
    return {name: pipeline.metrics.total(name, type=stype.name) for name in METRICS}


def metrics(insert: int = 0, new: int = 0, block: int = 0, confirm: int = 0) -> dict[str, float]:
    return dict(zip(METRICS, (insert, new, block, confirm), strict=True))


def stat_counters(pipeline: Pipeline, stype: StationType) -> tuple[int | None, int | None]:
    """Today's ``statcounter_<type>`` and ``statcounter_unique_<type>`` (None: never written)."""
    values = [
        pipeline.redis.get(f"statcounter_{name}_{DAY}")
        for name in (stype.name, f"unique_{stype.name}")
    ]
    return (
        None if values[0] is None else int(values[0]),
        None if values[1] is None else int(values[1]),
    )


def queued_areas(pipeline: Pipeline) -> list[bytes]:
    queued = pipeline.redis.lrange(keyspace.CELL_AREAS, 0, -1)
    areas = [area for area in queued if isinstance(area, bytes)]
    assert len(areas) == pipeline.redis.llen(keyspace.CELL_AREAS)
    return areas


def assert_position(row: dict[str, Any], lat: float = LAT, lon: float = LON) -> None:
    assert row["lat"] == pytest.approx(lat, abs=1e-7)
    assert row["lon"] == pytest.approx(lon, abs=1e-7)


# ---------------------------------------------------------------------------
# 9.7 examples 1-3: new stations
# ---------------------------------------------------------------------------


@EVERY_TYPE
@BOTH_SOURCES
def test_five_observations_store_a_new_station_9_7_1(
    pipeline: Pipeline, stype: StationType, source: int
) -> None:
    rows = run_stage(pipeline, stype, new_station_batch(stype, source))
    row = rows[key_of(stype)]
    assert list(rows) == [key_of(stype)]
    assert_position(row, 51.49996, -0.10004)
    assert row["max_lat"] == pytest.approx(51.5001, abs=1e-7)
    assert row["min_lat"] == pytest.approx(51.4997, abs=1e-7)
    assert row["max_lon"] == pytest.approx(-0.0998, abs=1e-7)
    assert row["min_lon"] == pytest.approx(-0.1004, abs=1e-7)
    assert row["radius"] == 38
    assert row["region"] == "GB"
    assert row["samples"] == 5
    assert row["weight"] == pytest.approx(5.0, abs=1e-6)
    assert row["source"] == source
    assert (row["created"], row["modified"], row["last_seen"]) == (NOW, NOW, TODAY)
    assert (row["block_first"], row["block_last"], row["block_count"]) == (None, None, None)
    if stype is StationType.cell:
        assert {k: row[k] for k in ("radio", "mcc", "mnc", "lac", "cid")} == identity(stype)
    assert counted(pipeline, stype) == metrics(insert=5, new=1)
    assert stat_counters(pipeline, stype) == (5, 1)
    for name in (stype.name, f"unique_{stype.name}"):
        assert 0 < pipeline.redis.ttl(f"statcounter_{name}_{DAY}") <= STAT_COUNTER_TTL_S
    # The acknowledged batch restarts the shard's fill timer (ichnaea.worker.jobs).
    since = pipeline.redis.get(keyspace.since(shard_queue(stype).name))
    assert since is not None and abs(float(since) - time.time()) < 60


@EVERY_TYPE
def test_three_identical_points_store_that_point_with_radius_zero_9_7_2(
    pipeline: Pipeline, stype: StationType
) -> None:
    row = run_stage(pipeline, stype, [obs(stype) for _ in range(3)])[key_of(stype)]
    assert_position(row)
    assert (row["max_lat"], row["min_lat"]) == (pytest.approx(LAT), pytest.approx(LAT))
    assert row["radius"] == 0
    assert row["samples"] == 3
    assert row["weight"] == pytest.approx(3.0, abs=1e-6)


@EVERY_TYPE
def test_three_points_store_their_mean_and_radius_nine_9_7_2(
    pipeline: Pipeline, stype: StationType
) -> None:
    batch = [obs(stype, 51.5, -0.1), obs(stype, 51.5001, -0.1), obs(stype, 51.5, -0.1001)]
    row = run_stage(pipeline, stype, batch)[key_of(stype)]
    assert_position(row, 51.5000333, -0.1000333)
    assert row["radius"] == 9
    assert row["samples"] == 3


@EVERY_TYPE
@BOTH_SOURCES
def test_inconsistent_observations_store_a_blocked_new_station_9_7_3(
    pipeline: Pipeline, stype: StationType, source: int
) -> None:
    row = run_stage(pipeline, stype, split_batch(stype, source))[key_of(stype)]
    assert_no_position(row)
    assert row["region"] is None
    assert (row["created"], row["modified"]) == (NOW, NOW)
    assert (row["block_first"], row["block_last"], row["block_count"]) == (TODAY, TODAY, 1)
    assert counted(pipeline, stype) == metrics(insert=3, new=1, block=1)
    assert stat_counters(pipeline, stype) == (3, 1)


# ---------------------------------------------------------------------------
# 9.7 examples 4-8: existing stations
# ---------------------------------------------------------------------------


@EVERY_TYPE
@pytest.mark.parametrize("station_source", [GNSS, QUERY], ids=["gnss_station", "query_station"])
@pytest.mark.parametrize("obs_source", [GNSS, QUERY], ids=["gnss_obs", "query_obs"])
def test_half_consistent_observations_block_the_station_9_7_4(
    pipeline: Pipeline, stype: StationType, station_source: int, obs_source: int
) -> None:
    half = 0.5 * (MAX_DIST_M[stype] + 10.0)
    batch = [
        obs(stype, source=obs_source),
        obs(stype, *north(half), source=obs_source),
        obs(stype, *north(-half), source=obs_source),
    ]
    existing = station(stype, source=station_source, created=time_ago(40))
    row = run_stage(pipeline, stype, batch, existing)[key_of(stype)]
    assert_no_position(row)
    assert row["region"] == "GB"
    assert (row["created"], row["modified"]) == (time_ago(40), NOW)
    assert (row["block_first"], row["block_last"], row["block_count"]) == (TODAY, TODAY, 1)
    assert counted(pipeline, stype) == metrics(insert=3, block=1)
    assert stat_counters(pipeline, stype) == (3, 0)


@EVERY_TYPE
@BOTH_SOURCES
def test_consistent_observations_far_from_a_recent_station_block_it_9_7_5(
    pipeline: Pipeline, stype: StationType, source: int
) -> None:
    lat, lon = north(MAX_DIST_M[stype] + 10.0)
    existing = station(stype, lat=lat, lon=lon)
    row = run_stage(pipeline, stype, [obs(stype, source=source) for _ in range(3)], existing)
    if source == GNSS:
        # Decision (issue 11): a move. The old position is gone as in 9.7
        # example 5, and the station is learned afresh where the group puts
        # it; three observations leave it blocked (ten relearn it).
        assert_position(row[key_of(stype)])
        assert row[key_of(stype)]["samples"] == 3
        assert is_blocked(row[key_of(stype)], TODAY)
    else:
        assert_no_position(row[key_of(stype)])
    assert row[key_of(stype)]["block_count"] == 1
    assert row[key_of(stype)]["modified"] == NOW
    assert counted(pipeline, stype) == metrics(insert=3, block=1)


@EVERY_TYPE
@BOTH_SOURCES
def test_consistent_observations_far_from_a_year_old_station_replace_it_9_7_5(
    pipeline: Pipeline, stype: StationType, source: int
) -> None:
    existing = year_old_far_station(stype)
    row = run_stage(pipeline, stype, [obs(stype, source=source) for _ in range(3)], existing)[
        key_of(stype)
    ]
    assert_position(row)
    assert (row["max_lat"], row["min_lat"]) == (pytest.approx(LAT), pytest.approx(LAT))
    assert row["radius"] == 0
    assert row["samples"] == 3
    assert row["weight"] == pytest.approx(3.0, abs=1e-6)
    assert row["source"] == source
    assert (row["created"], row["modified"], row["last_seen"]) == (time_ago(400), NOW, TODAY)
    assert (row["block_first"], row["block_last"], row["block_count"]) == (None, None, None)
    assert counted(pipeline, stype) == metrics(insert=3, confirm=1)


@EVERY_TYPE
def test_gnss_observations_replace_a_query_station_9_7_6(
    pipeline: Pipeline, stype: StationType
) -> None:
    existing = station(stype, source=QUERY, samples=10, weight=15.0)
    row = run_stage(pipeline, stype, [obs(stype, source=GNSS) for _ in range(3)], existing)[
        key_of(stype)
    ]
    assert_position(row)
    assert row["samples"] == 3
    assert row["weight"] == pytest.approx(3.0, abs=1e-6)
    assert row["source"] == GNSS
    assert row["created"] == time_ago(10)


@EVERY_TYPE
def test_query_observation_for_a_station_seen_today_changes_nothing_9_7_7(
    pipeline: Pipeline, stype: StationType
) -> None:
    seed(pipeline, stype, station(stype, last_seen=TODAY))
    before = stored(pipeline, stype)
    after = run_stage(pipeline, stype, [obs(stype, source=QUERY)])
    assert after == before
    assert counted(pipeline, stype) == metrics(insert=1)
    assert stat_counters(pipeline, stype) == (1, 0)
    assert queued_areas(pipeline) == []


@EVERY_TYPE
def test_query_observation_confirms_a_station_seen_days_ago_9_7_7(
    pipeline: Pipeline, stype: StationType
) -> None:
    seed(pipeline, stype, station(stype))
    before = stored(pipeline, stype)[key_of(stype)]
    row = run_stage(pipeline, stype, [obs(stype, source=QUERY)])[key_of(stype)]
    assert row == {**before, "last_seen": TODAY}
    assert (row["created"], row["modified"]) == (time_ago(10), time_ago(10))
    assert counted(pipeline, stype) == metrics(insert=1, confirm=1)
    assert stat_counters(pipeline, stype) == (1, 0)
    assert queued_areas(pipeline) == []


@EVERY_TYPE
def test_consistent_observations_give_a_station_without_position_one_9_7_8(
    pipeline: Pipeline, stype: StationType
) -> None:
    existing = no_position_station(stype)
    row = run_stage(pipeline, stype, [obs(stype) for _ in range(3)], existing)[key_of(stype)]
    assert_position(row)
    assert row["radius"] == 0
    assert row["samples"] == 3
    assert row["weight"] == pytest.approx(3.0, abs=1e-6)
    assert row["region"] == "GB"
    assert (row["block_first"], row["block_last"], row["block_count"]) == (
        days_ago(50),
        days_ago(50),
        1,
    )
    assert (row["created"], row["modified"], row["last_seen"]) == (time_ago(50), NOW, TODAY)
    assert counted(pipeline, stype) == metrics(insert=3, confirm=1)


@EVERY_TYPE
def test_inconsistent_observations_leave_a_station_without_position_alone_9_7_8(
    pipeline: Pipeline, stype: StationType
) -> None:
    seed(pipeline, stype, no_position_station(stype))
    before = stored(pipeline, stype)
    assert run_stage(pipeline, stype, split_batch(stype)) == before
    assert counted(pipeline, stype) == metrics(insert=3)
    assert stat_counters(pipeline, stype) == (3, 0)
    assert queued_areas(pipeline) == []


# ---------------------------------------------------------------------------
# 9.7 example 9: blocked stations are counted, not touched
# ---------------------------------------------------------------------------


@EVERY_TYPE
def test_blocked_station_is_counted_but_untouched_9_7_9(
    pipeline: Pipeline, stype: StationType
) -> None:
    seed(pipeline, stype, blocked_station(stype))
    before = stored(pipeline, stype)[key_of(stype, 1)]
    # Counters already hold earlier batches' increments: the stage adds to them.
    pipeline.redis.set(f"statcounter_{stype.name}_{DAY}", 7)
    pipeline.redis.set(f"statcounter_unique_{stype.name}_{DAY}", 7)
    # Query observations: a blocked station is relearned from GNSS ones only
    # (issue 11; tests/pipeline/stations/test_station_plan.py).
    batch = [obs(stype, n=n, source=int(ReportSource.query)) for n in range(3)]
    rows = run_stage(pipeline, stype, batch)
    assert set(rows) == {key_of(stype, 0), key_of(stype, 1), key_of(stype, 2)}
    assert rows[key_of(stype, 1)] == before
    for n in (0, 2):
        assert rows[key_of(stype, n)]["samples"] == 1
        assert rows[key_of(stype, n)]["created"] == NOW
    assert stat_counters(pipeline, stype) == (7 + 3, 7 + 2)
    assert counted(pipeline, stype) == metrics(insert=3, new=2)


# ---------------------------------------------------------------------------
# 9.7 examples 10-13: changes
# ---------------------------------------------------------------------------


def test_wifi_change_merges_weighted_observations_9_7_10(pipeline: Pipeline) -> None:
    wifi = StationType.wifi
    existing = station(wifi, samples=2, weight=3.0)
    row = run_stage(pipeline, wifi, wifi_change_batch(), existing)[key_of(wifi)]
    assert_position(row, LAT, -0.1019971)
    assert (row["max_lat"], row["min_lat"]) == (pytest.approx(LAT), pytest.approx(LAT))
    assert row["max_lon"] == pytest.approx(-0.1, abs=1e-7)
    assert row["min_lon"] == pytest.approx(-0.106, abs=1e-7)
    assert row["radius"] == 278
    assert row["samples"] == 6
    assert row["weight"] == pytest.approx(16.10707, abs=1e-5)
    assert (row["created"], row["modified"], row["last_seen"]) == (time_ago(10), NOW, TODAY)
    # The three weight-0 observations are dropped before counting.
    assert counted(pipeline, wifi) == metrics(insert=4, confirm=1)
    assert stat_counters(pipeline, wifi) == (4, 0)


def test_bluetooth_change_merges_weighted_observations_9_7_11(pipeline: Pipeline) -> None:
    blue = StationType.blue
    existing = station(blue, samples=2, weight=3.0)
    row = run_stage(pipeline, blue, blue_change_batch(), existing)[key_of(blue)]
    assert_position(row, LAT, -0.1000305)
    assert row["min_lon"] == pytest.approx(-0.1002, abs=1e-7)
    assert row["radius"] == 12
    assert row["samples"] == 4
    assert row["weight"] == pytest.approx(3.957107, abs=1e-6)
    assert counted(pipeline, blue) == metrics(insert=2, confirm=1)


def test_gsm_cell_change_merges_weighted_observations_and_queues_its_area_9_7_12(
    pipeline: Pipeline,
) -> None:
    cell = StationType.cell
    existing, batch = cell_change_inputs()
    row = run_stage(pipeline, cell, batch, existing)[key_of(cell)]
    assert_position(row, LAT, -0.1015793)
    assert row["min_lon"] == pytest.approx(-0.104, abs=1e-7)
    assert row["radius"] == 168
    assert row["samples"] == 3
    assert row["weight"] == pytest.approx(9.2452954, abs=1e-6)
    assert queued_areas(pipeline) == [encode_areaid(Radio.gsm, 234, 30, 1200)]
    assert counted(pipeline, cell) == metrics(insert=2, confirm=1)
    assert stat_counters(pipeline, cell) == (2, 0)


@pytest.mark.parametrize(
    ("station_lon", "obs_lon", "region"),
    [(6.77, 6.82, "FR"), (7.4, 7.45, "CH")],
    ids=["stays_fr", "becomes_ch"],
)
def test_change_keeps_the_region_while_inside_its_buffered_shape_9_7_13(
    pipeline: Pipeline, station_lon: float, obs_lon: float, region: str
) -> None:
    # A cell: a Wi-Fi group 3.8 km from its station is a move since issue 11
    # (tests/pipeline/stations/test_station_plan.py); the region rule is the same.
    cell = StationType.cell
    existing = station(cell, lat=46.2884, lon=station_lon, region="FR")
    batch = [obs(cell, 46.2884, obs_lon) for _ in range(5)]
    row = run_stage(pipeline, cell, batch, existing)[key_of(cell)]
    assert row["region"] == region
    assert station_lon < row["lon"] < obs_lon
    # Without stickiness the new centre would be Swiss in both cases.
    assert pipeline.resources.geocoder.region(row["lat"], row["lon"]) == "CH"


# ---------------------------------------------------------------------------
# 9.7 example 14 and spec 4: a lock conflict is retried
# ---------------------------------------------------------------------------


@pytest.fixture
def short_lock_wait_engine(pipeline: Pipeline) -> Iterator[sa.Engine]:
    """A read-write engine like the stage's whose lock waits give up quickly.

    MariaDB waits 1 s for a row lock (the least ``innodb_lock_wait_timeout``
    allows) instead of 50 s, SQLite 0.3 s for the write lock instead of 30 s.
    """
    engine = create_engine(pipeline.settings.db_readwrite_url, pooled=False)

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if engine.dialect.name == "sqlite":
                cursor.execute("PRAGMA busy_timeout = 300")
            else:
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
        finally:
            cursor.close()

    yield engine
    engine.dispose()


def test_lock_conflict_is_retried_once_and_then_applied_9_7_14(
    pipeline: Pipeline, short_lock_wait_engine: sa.Engine
) -> None:
    """A real lock conflict on the first attempt; the retry commits.

    A second connection holds the lock the stage's first statement needs:
    on MariaDB a ``SELECT ... FOR UPDATE`` of the cell's row in an open
    transaction, so the stage's own ``FOR UPDATE`` read fails with 1205
    (lock wait timeout); on SQLite the write lock (``BEGIN IMMEDIATE``), so
    the stage's ``BEGIN IMMEDIATE`` fails with ``database is locked``. The
    holder lets go as soon as the stage's engine reports that first error,
    so the retry finds the lock free.
    """
    cell = StationType.cell
    table = shard_table(cell)
    seed(pipeline, cell, station(cell, samples=10, weight=10.0, created=time_ago(30)))
    push(pipeline, cell, [obs(cell)])

    held, release = threading.Event(), threading.Event()
    stage_errors: list[BaseException] = []
    holder_errors: list[BaseException] = []

    @event.listens_for(short_lock_wait_engine, "handle_error")
    def _first_failure(context: Any) -> None:
        stage_errors.append(context.original_exception)
        release.set()

    def hold_lock() -> None:
        holder = create_engine(pipeline.settings.db_readwrite_url, pooled=False)
        try:
            with holder.begin() as conn:
                key = table.c[cell.key_column] == key_of(cell)
                assert conn.execute(sa.select(table).where(key).with_for_update()).all()
                held.set()
                release.wait(timeout=30)
        except BaseException as exc:
            holder_errors.append(exc)
            raise
        finally:
            holder.dispose()

    holder_thread = threading.Thread(target=hold_lock, name="lock-holder")
    holder_thread.start()
    try:
        assert held.wait(timeout=10), holder_errors
        assert process(pipeline, cell, engine=short_lock_wait_engine) == 1
    finally:
        release.set()
        holder_thread.join(timeout=10)
    assert not holder_errors

    errno = "sqlite_busy" if pipeline.engine.dialect.name == "sqlite" else "1205"
    assert len(stage_errors) == 1
    assert "locked" in str(stage_errors[0]) or "Lock wait timeout" in str(stage_errors[0])
    assert pipeline.metrics.total("data.station.dberror", type="cell", errno=errno) == 1
    assert counted(pipeline, cell) == metrics(insert=1, confirm=1)
    row = stored(pipeline, cell)[key_of(cell)]
    assert row["samples"] == 11
    assert row["weight"] == pytest.approx(11.0)
    assert (row["created"], row["modified"]) == (time_ago(30), NOW)
    assert stat_counters(pipeline, cell) == (1, 0)
    assert queued_areas(pipeline) == [encode_areaid(Radio.gsm, 234, 30, 1200)]


# ---------------------------------------------------------------------------
# Exactly-once: a batch committed but not acknowledged is not applied again
# ---------------------------------------------------------------------------


class WorkerCrash(BaseException):
    """Stands for the worker process dying (SIGKILL) right after its commit."""


def _changed_and_new_cell(pipeline: Pipeline) -> None:
    cell = StationType.cell
    seed(pipeline, cell, station(cell, n=0, samples=10, weight=10.0))
    push(pipeline, cell, [obs(cell, n=0), obs(cell, n=1)])


def _assert_applied_once(pipeline: Pipeline) -> None:
    cell = StationType.cell
    rows = stored(pipeline, cell)
    assert rows[key_of(cell, 0)]["samples"] == 11
    assert rows[key_of(cell, 1)]["samples"] == 1
    assert stat_counters(pipeline, cell) == (2, 1)
    assert sorted(queued_areas(pipeline)) == [
        encode_areaid(Radio.gsm, 234, 30, 1200),
        encode_areaid(Radio.gsm, 234, 30, 1201),
    ]
    (recorded,) = pipeline.rows("pipeline_batch")
    assert recorded["queue"] == "update_cell_gsm"
    serial = SerialQueue(pipeline.redis, "update_cell_gsm")
    assert not pipeline.redis.exists(serial.inflight_key, serial.batch_id_key, serial.lease_key)


def test_batch_committed_before_a_crash_is_applied_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker dies between commit and ack; the next one resumes the same batch.

    The crash is a ``BaseException`` raised where the acknowledgement would
    start, so the commit happened and Redis still holds the batch in
    flight. Deleting the lease key stands for the lease running out.
    """
    cell = StationType.cell
    serial = SerialQueue(pipeline.redis, shard_queue(cell).name)
    _changed_and_new_cell(pipeline)

    def crash(self: SerialQueue, owner: str, effects: Any = None) -> None:
        raise WorkerCrash

    with monkeypatch.context() as patched:
        patched.setattr(SerialQueue, "ack", crash)
        with pytest.raises(WorkerCrash):
            process(pipeline, cell)
    batch_id = pipeline.redis.get(serial.batch_id_key)
    assert isinstance(batch_id, bytes)
    assert pipeline.redis.llen(serial.inflight_key) == 2
    # Committed: the rows changed, but no Redis effect was applied yet.
    assert stored(pipeline, cell)[key_of(cell, 0)]["samples"] == 11
    assert stat_counters(pipeline, cell) == (None, None)
    assert queued_areas(pipeline) == []
    assert [row["batch_id"] for row in pipeline.rows("pipeline_batch")] == [batch_id.decode()]

    assert counted(pipeline, cell) == metrics()  # the crashed run counted nothing

    pipeline.redis.delete(serial.lease_key)
    assert process(pipeline, cell) == 2
    _assert_applied_once(pipeline)
    # The resuming worker counts the batch's metrics, from its recorded effects.
    assert counted(pipeline, cell) == metrics(insert=2, new=1, confirm=1)


def test_batch_whose_lease_ran_out_during_the_commit_is_applied_once(
    pipeline: Pipeline,
) -> None:
    """The lease expires while the transaction commits; the next holder only acks.

    The first worker's acknowledgement then fails (``LostLease``, logged),
    the batch stays in flight with its id, and the second worker finds the
    id committed: it applies the stored Redis effects once and acks.
    """
    cell = StationType.cell
    serial = SerialQueue(pipeline.redis, shard_queue(cell).name)
    _changed_and_new_cell(pipeline)
    engine = create_engine(pipeline.settings.db_readwrite_url, pooled=False)

    @event.listens_for(engine, "commit")
    def _lease_expires(_conn: Any) -> None:
        pipeline.redis.delete(serial.lease_key)

    try:
        assert process(pipeline, cell, engine=engine) == 2
    finally:
        engine.dispose()
    assert pipeline.redis.llen(serial.inflight_key) == 2
    assert stat_counters(pipeline, cell) == (None, None)

    assert process(pipeline, cell) == 2
    _assert_applied_once(pipeline)
    # Counted once, by the worker that acknowledged (the second one).
    assert counted(pipeline, cell) == metrics(insert=2, new=1, confirm=1)
