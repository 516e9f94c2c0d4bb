"""SQL of the station dumps: every table of one station type, read whole in key order.

A type's tables come in a fixed order: ``blue`` and ``wifi`` their 16 shards
``0`` … ``f``, ``cell`` ``cell_gsm``, ``cell_wcdma``, ``cell_lte`` then
``cell_nr``. Each table is read by keyset pages
(:mod:`ichnaea.repositories.paging`), all on the caller's connection.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ichnaea.models.base import Base
from ichnaea.models.cell import CELL_TABLES
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS
from ichnaea.repositories.paging import keyset_pages

DATATYPES = ("blue", "cell", "wifi")


def _tables(datatype: str) -> list[sa.Table]:
    models: list[type[Base]]
    if datatype == "cell":
        models = [CELL_TABLES[radio] for radio in sorted(CELL_TABLES)]
    elif datatype == "wifi":
        models = list(WIFI_SHARDS.values())
    elif datatype == "blue":
        models = list(BLUE_SHARDS.values())
    else:
        raise ValueError(f"datatype must be one of {', '.join(DATATYPES)}, got {datatype!r}")
    return [cast(sa.Table, model.__table__) for model in models]


def _pages(
    connection: Connection,
    table: sa.Table,
    columns: Sequence[str],
    bounds: tuple[float, float, float, float] | None,
    page_size: int,
) -> Iterator[Sequence[sa.Row[Any]]]:
    query = sa.select(*(table.c[name] for name in columns))
    if bounds is not None:
        max_lat, min_lat, max_lon, min_lon = bounds
        query = query.where(
            table.c.lat <= max_lat,
            table.c.lat >= min_lat,
            table.c.lon <= max_lon,
            table.c.lon >= min_lon,
        )
    return keyset_pages(connection, query, table.c[columns[0]], page_size)


def station_pages(
    connection: Connection,
    datatype: str,
    columns: Sequence[str],
    *,
    bounds: tuple[float, float, float, float] | None,
    page_size: int,
) -> Iterator[Sequence[sa.Row[Any]]]:
    """The ``columns`` of every ``datatype`` station, table by table, page by page.

    ``columns[0]`` is the key the pages follow (``mac`` or ``cellid``). With
    ``bounds`` = ``(max_lat, min_lat, max_lon, min_lon)`` only the stations
    with ``min_lat <= lat <= max_lat`` and ``min_lon <= lon <= max_lon``.

    Raises
    ------
    ValueError
        At the call, before any page is read, if ``datatype`` is not one of
        :data:`DATATYPES`.
    """
    tables = _tables(datatype)
    return itertools.chain.from_iterable(
        _pages(connection, table, columns, bounds, page_size) for table in tables
    )
