"""Keyset pages over a real table, on an engine and on a connection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event

from ichnaea.models.stats import DATAMAP_SHARDS
from ichnaea.repositories.paging import keyset_pages

TABLE: sa.Table = DATAMAP_SHARDS["ne"].__table__  # type: ignore[assignment]
DAY = date(2024, 5, 6)


@pytest.fixture
def engine(db_engine: Engine) -> Iterator[Engine]:
    with db_engine.begin() as conn:
        conn.execute(TABLE.delete())
    yield db_engine
    with db_engine.begin() as conn:
        conn.execute(TABLE.delete())


def add_grids(engine: Engine, count: int) -> list[bytes]:
    # Inserted in reverse, so that insertion order is not key order.
    grids = [i.to_bytes(8, "big") for i in range(count)]
    rows = [{"grid": grid, "created": DAY, "modified": DAY} for grid in reversed(grids)]
    if rows:
        with engine.begin() as conn:
            conn.execute(sa.insert(TABLE), rows)
    return grids


def page_keys(
    bind: Engine | sa.Connection, page_size: int, query: sa.Select[Any] | None = None
) -> list[list[bytes]]:
    """The keys of each page of ``query`` (default: the whole table)."""
    query = sa.select(TABLE.c.grid, TABLE.c.modified) if query is None else query
    pages = keyset_pages(bind, query, TABLE.c.grid, page_size)
    return [[row[0] for row in page] for page in pages]


@pytest.mark.parametrize(("rows", "sizes"), [(7, [3, 3, 1]), (6, [3, 3]), (0, [])])
def test_pages_follow_the_key_and_are_never_empty(
    engine: Engine, rows: int, sizes: list[int]
) -> None:
    grids = add_grids(engine, rows)
    pages = page_keys(engine, 3)
    assert [len(page) for page in pages] == sizes
    assert [grid for page in pages for grid in page] == grids


def test_a_page_size_of_zero_reads_nothing(engine: Engine) -> None:
    add_grids(engine, 2)
    assert page_keys(engine, 0) == []


def test_the_query_filter_applies_to_every_page(engine: Engine) -> None:
    grids = add_grids(engine, 5)
    query = sa.select(TABLE.c.grid).where(TABLE.c.grid != grids[1])
    assert page_keys(engine, 2, query) == [[grids[0], grids[2]], [grids[3], grids[4]]]


def test_an_engine_lends_a_connection_per_page_and_none_between(engine: Engine) -> None:
    add_grids(engine, 5)
    connects: list[object] = []

    def count(connection: object) -> None:
        connects.append(connection)

    event.listen(engine, "engine_connect", count)
    try:
        for _ in keyset_pages(engine, sa.select(TABLE.c.grid), TABLE.c.grid, 2):
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        event.remove(engine, "engine_connect", count)
    assert len(connects) == 3


def test_a_connection_reads_every_page_inside_its_transaction(engine: Engine) -> None:
    grids = add_grids(engine, 5)
    with engine.connect() as conn:
        conn.execute(sa.delete(TABLE).where(TABLE.c.grid == grids[4]))  # not committed
        pages = page_keys(conn, 2)
        conn.rollback()
    assert pages == [grids[0:2], grids[2:4]]
