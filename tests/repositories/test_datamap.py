"""The datamap grid tables' SQL, one quadrant table at a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ichnaea.codecs import encode_datamap_grid
from ichnaea.models.stats import DATAMAP_SHARDS
from ichnaea.repositories.datamap import (
    delete_modified_before,
    grid_pages,
    insert_grids,
    read_modified_for_update,
    set_modified,
)

DAY = date(2024, 5, 6)
EARLIER = DAY - timedelta(days=10)
# Three grid cells of the north-east quadrant, in key order.
GRIDS = [encode_datamap_grid(50_000, 10_000 + i) for i in range(3)]


@pytest.fixture
def engine(db_engine: Engine) -> Iterator[Engine]:
    with db_engine.begin() as conn:
        for model in DATAMAP_SHARDS.values():
            conn.execute(sa.delete(model))
    yield db_engine
    with db_engine.begin() as conn:
        for model in DATAMAP_SHARDS.values():
            conn.execute(sa.delete(model))


def rows(engine: Engine) -> dict[bytes, tuple[date | None, date | None]]:
    table = DATAMAP_SHARDS["ne"]
    with engine.connect() as conn:
        query = sa.select(table.grid, table.created, table.modified)
        return {grid: (created, modified) for grid, created, modified in conn.execute(query)}


def test_insert_skips_stored_keys_and_set_modified_redates(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_grids(conn, "ne", GRIDS[:2], EARLIER)
    with engine.begin() as conn:
        assert read_modified_for_update(conn, "ne", GRIDS) == {g: EARLIER for g in GRIDS[:2]}
        insert_grids(conn, "ne", GRIDS[1:], DAY)  # GRIDS[1] is stored: left alone
        set_modified(conn, "ne", GRIDS[:1], DAY)
    assert rows(engine) == {
        GRIDS[0]: (EARLIER, DAY),
        GRIDS[1]: (EARLIER, EARLIER),
        GRIDS[2]: (DAY, DAY),
    }


def test_delete_modified_before_counts_what_it_deleted(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_grids(conn, "ne", GRIDS[:1], EARLIER)
        insert_grids(conn, "ne", GRIDS[1:], DAY)
    with engine.begin() as conn:
        assert delete_modified_before(conn, "ne", DAY) == 1
        assert delete_modified_before(conn, "ne", DAY) == 0
    assert sorted(rows(engine)) == GRIDS[1:]


def test_grid_pages_read_one_shard_in_grid_order(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_grids(conn, "ne", GRIDS[::-1], DAY)
    pages = list(grid_pages(engine, "ne", 2))
    assert [[tuple(row) for row in page] for page in pages] == [
        [(GRIDS[0], DAY), (GRIDS[1], DAY)],
        [(GRIDS[2], DAY)],
    ]
    assert list(grid_pages(engine, "sw", 2)) == []
