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
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS
from ichnaea.repositories.session import is_mysql
from ichnaea.repositories.upsert import upsert_values

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


def _key_column(table: sa.Table) -> sa.Column[Any]:
    (column,) = table.primary_key.columns
    return column


def read_for_update(
    conn: Connection, kind: str, shard: str, keys: Sequence[bytes]
) -> dict[bytes, dict[str, Any]]:
    """Lock and return the rows of ``keys`` (all columns, by station key); absent keys
    have no entry."""
    table = station_table(kind, shard)
    key = _key_column(table)
    existing: dict[bytes, dict[str, Any]] = {}
    mysql = is_mysql(conn)
    columns = [column.name for column in table.columns]
    at = columns.index(key.name)
    for start in range(0, len(keys), KEYS_PER_STATEMENT):
        chunk = keys[start : start + KEYS_PER_STATEMENT]
        if mysql:
            # The driver returns the column types as they are (bytes,
            # float, int, date, datetime, str): skip the statement
            # compilation and the result processing, a tenth of the stage.
            rows = _mysql_select_for_update(conn, table.name, columns, key.name, chunk)
            for values in rows:
                existing[bytes(values[at])] = dict(zip(columns, values, strict=True))
            continue
        stmt = sa.select(table).where(key.in_(chunk)).with_for_update()
        for row in conn.execute(stmt).mappings():
            existing[bytes(row[key.name])] = dict(row)
    return existing


def _mysql_select_for_update(
    conn: Connection, table: str, columns: Sequence[str], key: str, keys: Sequence[bytes]
) -> Sequence[tuple[Any, ...]]:
    column_list = ",".join(f"`{name}`" for name in columns)
    key_list = ",".join(f"X'{value.hex()}'" for value in keys)
    sql = f"SELECT {column_list} FROM `{table}` WHERE `{key}` IN ({key_list}) FOR UPDATE"
    # Through SQLAlchemy (no parameters: the driver does no %-formatting), so
    # errors arrive wrapped and the lock-retry and error events see them.
    return conn.exec_driver_sql(sql).all()


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
