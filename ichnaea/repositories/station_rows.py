"""The station rows of one shard table, read for update and written back by the updater.

A batch of the station updater (:mod:`ichnaea.pipeline.stations.updater`)
costs two statements per 500 stations: :func:`read_for_update` locks and
reads every row the batch names (``SELECT ... FOR UPDATE``), and
:func:`write_rows` inserts or overwrites every new and changed row in one
upsert (:func:`ichnaea.repositories.upsert.upsert_values`).

A shard table is named by its station kind and shard, as the shard queues
are: ``wifi`` or ``blue`` with a shard id ``0``-``f``
(:data:`ichnaea.models.station.WIFI_SHARDS`), or ``cell`` with a radio name
(``gsm``, ``wcdma``, ``lte``, ``nr``; :data:`ichnaea.models.cell.CELL_TABLES`).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from ichnaea import _fast
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS
from ichnaea.repositories.session import is_mysql
from ichnaea.repositories.upsert import binary_literals, driver_rows, upsert_values

# Keys per ``IN (...)`` list: well inside any backend's parameter limit.
KEYS_PER_STATEMENT = 500


def station_table(kind: str, shard: str) -> sa.Table:
    """The table of one shard: ``kind`` ``wifi``/``blue`` with a shard id, or ``cell`` with a
    radio name."""
    if kind == "wifi":
        model: Any = WIFI_SHARDS[shard]
    elif kind == "blue":
        model = BLUE_SHARDS[shard]
    elif kind == "cell":
        model = CELL_TABLES[Radio[shard]]
    else:
        raise ValueError(f"unknown station kind {kind!r}")
    table: sa.Table = model.__table__
    return table


@dataclass(frozen=True, slots=True)
class LockedRows:
    """Stored station rows as the read returns them: sequences in ``columns`` order,
    and the position in ``rows`` of each station key."""

    columns: tuple[str, ...]
    rows: list[Sequence[Any]]
    index: dict[bytes, int]

    @classmethod
    def from_mappings(
        cls, columns: Sequence[str], key: str, rows: Iterable[Mapping[str, Any]]
    ) -> LockedRows:
        """Rows given as column mappings (a column a row does not name is null)."""
        values: list[Sequence[Any]] = [tuple(row.get(name) for name in columns) for row in rows]
        at = list(columns).index(key)
        index = {bytes(row[at] or b""): i for i, row in enumerate(values)}
        return cls(tuple(columns), values, index)

    def mapping(self, key: bytes) -> dict[str, Any] | None:
        """The stored row of ``key`` by column name, or None."""
        at = self.index.get(key)
        return None if at is None else dict(zip(self.columns, self.rows[at], strict=True))


def _key_column(table: sa.Table) -> sa.Column[Any]:
    (column,) = table.primary_key.columns
    return column


def read_for_update(conn: Connection, kind: str, shard: str, keys: Sequence[bytes]) -> LockedRows:
    """Lock and return the rows of ``keys`` (every column, in table order); absent keys
    have no row."""
    table = station_table(kind, shard)
    key = _key_column(table)
    mysql = is_mysql(conn)
    columns = tuple(column.name for column in table.columns)
    at = columns.index(key.name)
    rows: list[Sequence[Any]] = []
    for start in range(0, len(keys), KEYS_PER_STATEMENT):
        chunk = keys[start : start + KEYS_PER_STATEMENT]
        if mysql:
            rows.extend(_mysql_select_for_update(conn, table, key, chunk))
            continue
        stmt = sa.select(table).where(key.in_(chunk)).with_for_update()
        rows.extend(tuple(row) for row in conn.execute(stmt))
    return LockedRows(columns, rows, {bytes(row[at]): i for i, row in enumerate(rows)})


def _json_value(column: sa.Column[Any]) -> str:
    """SQL for one column's value as JSON text (``null`` for NULL)."""
    name = f"`{column.name}`"
    if isinstance(column.type, (sa.String, sa.Date, sa.DateTime)):
        return f"COALESCE(JSON_QUOTE({name}),'null')"
    return f"COALESCE({name},'null')"


def _mysql_select_for_update(
    conn: Connection, table: sa.Table, key: sa.Column[Any], keys: Sequence[bytes]
) -> list[list[Any]]:
    """The rows of ``keys``, locked, each a list in table order.

    The server writes each row's other columns as one JSON array, and one
    ``orjson.loads`` reads them all (an integral double comes as an int and
    is made a float again): mysqlclient converts a DOUBLE at about 0.6 µs,
    and a station row has seven. The server spends a little more on the
    statement than on a plain SELECT (``benchmarks/bench_station_io.py``
    measures both sides). MariaDB writes a double as the shortest text that reads back as
    the same double, as it does on the wire (tests/repositories/test_station_rows.py
    holds the values equal to what was written); the dates come as text and
    are read by ``fromisoformat``, a zero date as None, as the driver's own
    conversion (:func:`ichnaea.repositories.session.mysqldb_conversions`).
    """
    others = [column for column in table.columns if column is not key]
    array = ",',',".join(_json_value(column) for column in others)
    sql = (
        f"SELECT `{key.name}`,CONCAT('[',{array},']') FROM `{table.name}` "
        f"WHERE `{key.name}` IN ({binary_literals(keys)}) FOR UPDATE"
    )
    found = driver_rows(conn, sql)
    if not found:
        return []
    rows: list[list[Any]] = orjson.loads("[" + ",".join([text for _, text in found]) + "]")
    # An integral double reads as an int (MariaDB writes 3.0 as 3).
    doubles = tuple(j for j, column in enumerate(others) if isinstance(column.type, sa.Float))
    _fast.ints_to_floats(rows, doubles)
    # The dates come as text: date_or_none / datetime_or_none of each, in C.
    _fast.dates_from_text(
        rows,
        tuple(j for j, column in enumerate(others) if type(column.type) is sa.Date),
        tuple(j for j, column in enumerate(others) if type(column.type) is sa.DateTime),
    )
    at = list(table.columns).index(key)
    for row, (station, _) in zip(rows, found, strict=True):
        row.insert(at, station)
    return rows


def write_values(
    conn: Connection, kind: str, shard: str, columns: Sequence[str], values: Sequence[Sequence[Any]]
) -> None:
    """Insert or overwrite rows given as values in ``columns`` order, in one statement."""
    upsert_values(conn, station_table(kind, shard), columns, values)


def write_rows(conn: Connection, kind: str, shard: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or overwrite ``rows`` by station key in one statement.

    Each row is written whole: a column the row does not name is stored as
    NULL, and a name that is not a column is ignored.
    """
    table = station_table(kind, shard)
    columns = [column.name for column in table.columns]
    whole = operator.itemgetter(*columns)
    try:
        values = [whole(row) for row in rows]
    except KeyError:
        values = [[row.get(name) for name in columns] for row in rows]
    upsert_values(conn, table, columns, values)
