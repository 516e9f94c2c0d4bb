"""The rows of the station index: streamed for a build, read again to keep it fresh.

Three reads over the same columns (the key, then the value columns of
:mod:`ichnaea.index.format`), on MariaDB and SQLite alike:

* :func:`stream_table`: a table's located rows in key order, with keyset
  pagination (``WHERE key > :last ORDER BY key LIMIT :page_rows``), so a
  build holds one page per table in memory, never a whole table;
* :func:`rows_by_keys`: the rows of keys that the pipeline announced as
  changed, located or not (a row without a position, or no row at all,
  removes the station from the index);
* :func:`rows_modified_since`: the rows whose ``modified`` is at or after a
  moment, over the ``*_modified_idx`` index of every station table; the
  catch-up read of a host that missed announcements.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ichnaea.codecs import NR_AREAID_BYTES, mac_shard_id
from ichnaea.enums import Radio
from ichnaea.models.cell import AREA_TABLES, CELL_TABLES, CellArea, CellAreaNr
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS

STATION_COLUMNS = (
    "lat", "lon", "radius", "samples", "created", "modified",
    "last_seen", "block_last", "block_count", "region",
)  # fmt: skip
AREA_COLUMNS = (
    "lat", "lon", "radius", "num_cells", "created", "modified", "last_seen", "region",
)  # fmt: skip
# Keys per ``IN (...)`` list: far below every backend's limit on bound parameters.
KEYS_PER_STATEMENT = 500


def sources(kind: str) -> tuple[list[sa.Table], str, tuple[str, ...]]:
    """The tables, key column and value columns of a station kind."""
    if kind == "wifi":
        return [s.__table__ for s in WIFI_SHARDS.values()], "mac", STATION_COLUMNS  # type: ignore[misc]
    if kind == "blue":
        return [s.__table__ for s in BLUE_SHARDS.values()], "mac", STATION_COLUMNS  # type: ignore[misc]
    if kind == "cell":
        return [c.__table__ for c in CELL_TABLES.values()], "cellid", STATION_COLUMNS  # type: ignore[misc]
    if kind == "area":
        return [a.__table__ for a in AREA_TABLES], "areaid", AREA_COLUMNS  # type: ignore[misc]
    raise ValueError(f"unknown station kind {kind!r}")


def _select(table: sa.Table, key: str, columns: Sequence[str]) -> sa.Select[Any]:
    return sa.select(table.c[key], *(table.c[c] for c in columns))


def stream_table(
    conn: Connection, table: sa.Table, key: str, columns: Sequence[str], page_rows: int
) -> Iterator[Sequence[Any]]:
    """The located rows of ``table`` in key order, one page in memory at a time."""
    key_col = table.c[key]
    base = (
        _select(table, key, columns)
        .where(table.c.lat.is_not(None), table.c.lon.is_not(None))
        .order_by(key_col)
        .limit(page_rows)
    )
    last: bytes | None = None
    while True:
        query = base if last is None else base.where(key_col > last)
        page = conn.execute(query).all()
        yield from page
        if len(page) < page_rows:
            return
        last = page[-1][0]


def _table_of(kind: str, key: bytes) -> sa.Table:
    if kind == "wifi":
        return WIFI_SHARDS[mac_shard_id(key.hex())].__table__  # type: ignore[return-value]
    if kind == "blue":
        return BLUE_SHARDS[mac_shard_id(key.hex())].__table__  # type: ignore[return-value]
    if kind == "cell":
        return CELL_TABLES[Radio(key[0])].__table__  # type: ignore[return-value]
    area = CellAreaNr if len(key) == NR_AREAID_BYTES else CellArea
    return area.__table__  # type: ignore[return-value]


def rows_by_keys(conn: Connection, kind: str, keys: Sequence[bytes]) -> list[Sequence[Any]]:
    """The rows (``key, *value columns``) of ``keys``, with or without a position.

    Keys are the codec's bytes (6-byte MACs, 11/17-byte cells, 7/9-byte
    areas); a key without a row is absent from the answer.
    """
    _, key, columns = sources(kind)
    by_table: dict[sa.Table, list[bytes]] = {}
    for item in keys:
        by_table.setdefault(_table_of(kind, item), []).append(item)
    rows: list[Sequence[Any]] = []
    for table, ids in by_table.items():
        for start in range(0, len(ids), KEYS_PER_STATEMENT):
            chunk = ids[start : start + KEYS_PER_STATEMENT]
            query = _select(table, key, columns).where(table.c[key].in_(chunk))
            rows += conn.execute(query).all()
    return rows


def rows_modified_since(
    conn: Connection, kind: str, since: datetime, *, page_rows: int = 5_000
) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows (``key, *value columns``) of ``kind`` whose ``modified`` is ``since`` or later,
    ``page_rows`` at a time (streamed from the server: one page in memory)."""
    tables, key, columns = sources(kind)
    streamed = conn.execution_options(stream_results=True, yield_per=page_rows)
    for table in tables:
        query = _select(table, key, columns).where(table.c.modified >= since)
        yield from streamed.execute(query).partitions()
