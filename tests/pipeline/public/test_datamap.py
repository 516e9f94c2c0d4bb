"""The datamap grid tables (spec pipeline.md section 12).

The grid, key encoding and quadrant examples of section 12 are tested with
the codecs in ``tests/test_codecs.py``.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ichnaea.codecs import datamap_grid, datamap_shard_id, decode_datamap_grid, encode_datamap_grid
from ichnaea.models.stats import DATAMAP_SHARDS
from ichnaea.pipeline.public.datamap import cleanup_datamap, update_datamap
from tests._support import RecordingMetrics

TODAY = date(2024, 5, 6)
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """``db_engine`` with empty datamap tables (they outlive each test)."""
    with db_engine.begin() as connection:
        for table in DATAMAP_SHARDS.values():
            connection.execute(sa.delete(table))
    return db_engine


def key(lat_deg: float, lon_deg: float) -> tuple[str, bytes]:
    """The shard and grid key of a position."""
    grid = datamap_grid(lat_deg, lon_deg)
    return datamap_shard_id(*grid), encode_datamap_grid(*grid)


def add_row(engine: Engine, lat_deg: float, lon_deg: float, created: date, modified: date) -> None:
    shard_id, grid = key(lat_deg, lon_deg)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(DATAMAP_SHARDS[shard_id]).values(
                grid=grid, created=created, modified=modified
            )
        )


def all_rows(engine: Engine) -> dict[tuple[int, int], tuple[date | None, date | None]]:
    """Every grid cell of every shard: (lat, lon) -> (created, modified)."""
    rows = {}
    with engine.connect() as connection:
        for shard_id, table in DATAMAP_SHARDS.items():
            for grid, created, modified in connection.execute(
                sa.select(table.grid, table.created, table.modified)
            ):
                cell = decode_datamap_grid(grid)
                assert datamap_shard_id(*cell) == shard_id
                rows[cell] = (created, modified)
    return rows


def queue(
    engine: Engine, positions: list[tuple[float, float]], today: date = TODAY
) -> dict[str, int]:
    """Send the positions through update_datamap, one batch per shard as queued."""
    batches: dict[str, list[bytes]] = {}
    for lat_deg, lon_deg in positions:
        shard_id, grid = key(lat_deg, lon_deg)
        batches.setdefault(shard_id, []).append(grid)
    return {
        shard_id: update_datamap(engine, shard_id, grids, today=today, metrics=RecordingMetrics())
        for shard_id, grids in batches.items()
    }


def test_update_inserts_new_cells_and_redates_old_ones(engine: Engine) -> None:
    add_row(engine, 0, 1, created=YESTERDAY, modified=TODAY)
    add_row(engine, 1, 2, created=YESTERDAY, modified=YESTERDAY)
    add_row(engine, -10, 40, created=YESTERDAY, modified=YESTERDAY)
    written = queue(
        engine,
        [
            (0, 1),
            (1, 2),
            (1, 2),
            (40.0011, 3.0011),
            (40.0012, 3.0012),
            (40.0013, 3.0013),
            (0, 0),
            (1, 2),
            (1.00001, 2.00001),
        ],
    )
    assert all_rows(engine) == {
        (0, 0): (TODAY, TODAY),
        (0, 1000): (YESTERDAY, TODAY),
        (1000, 2000): (YESTERDAY, TODAY),
        (-10000, 40000): (YESTERDAY, YESTERDAY),
        (40001, 3001): (TODAY, TODAY),
    }
    # sw: (0,0) inserted, (1,2) re-dated, (0,1) already today; nw: one insert.
    assert written == {"sw": 2, "nw": 1}


def test_update_is_idempotent_within_a_day(engine: Engine) -> None:
    _, grid = key(50, 10)
    assert update_datamap(engine, "ne", [grid], today=TODAY, metrics=RecordingMetrics()) == 1
    assert update_datamap(engine, "ne", [grid], today=TODAY, metrics=RecordingMetrics()) == 0
    tomorrow = TODAY + timedelta(days=1)
    assert update_datamap(engine, "ne", [grid], today=tomorrow, metrics=RecordingMetrics()) == 1
    assert all_rows(engine) == {(50000, 10000): (TODAY, tomorrow)}


def test_update_skips_grids_of_other_shards_and_malformed_keys(engine: Engine) -> None:
    _, north_east = key(50, 10)
    _, south_west = key(-50, -10)
    written = update_datamap(
        engine,
        "ne",
        [south_west, b"\x00" * 7, north_east],
        today=TODAY,
        metrics=RecordingMetrics(),
    )
    assert written == 1
    assert all_rows(engine) == {(50000, 10000): (TODAY, TODAY)}


def test_update_rejects_unknown_shard(engine: Engine) -> None:
    with pytest.raises(ValueError, match="shard"):
        update_datamap(engine, "north", [], today=TODAY, metrics=RecordingMetrics())


def test_cleanup_deletes_cells_unseen_for_more_than_a_year(engine: Engine) -> None:
    add_row(engine, 50, 10, created=TODAY - timedelta(days=900), modified=TODAY)
    add_row(engine, 50, 11, created=TODAY - timedelta(days=900), modified=TODAY - timedelta(365))
    add_row(engine, 50, 12, created=TODAY - timedelta(days=900), modified=TODAY - timedelta(366))
    add_row(engine, -50, 12, created=TODAY, modified=TODAY - timedelta(days=400))
    assert cleanup_datamap(engine, "ne", today=TODAY) == 1
    assert sorted(all_rows(engine)) == [(-50000, 12000), (50000, 10000), (50000, 11000)]
    assert cleanup_datamap(engine, "se", today=TODAY) == 1
    assert cleanup_datamap(engine, "se", today=TODAY) == 0
