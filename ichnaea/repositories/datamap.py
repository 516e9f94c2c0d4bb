"""SQL of the coverage map's grid: the four quadrant tables ``datamap_ne/nw/se/sw``.

Each function takes the shard id (one of
:data:`ichnaea.codecs.DATAMAP_SHARD_IDS`) whose table it works on; the
8-byte grid keys are :func:`ichnaea.codecs.encode_datamap_grid`'s. The
writers run on the caller's connection, inside its transaction;
:func:`grid_pages`, the map renderer's read of a whole table, takes the
engine and reads every page on a connection of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ichnaea import _fast
from ichnaea.models.stats import DATAMAP_SHARDS
from ichnaea.repositories.paging import keyset_pages
from ichnaea.repositories.session import is_mysql
from ichnaea.repositories.upsert import binary_literals, driver_rows


def _table_name(shard_id: str) -> str:
    name: str = DATAMAP_SHARDS[shard_id].__tablename__
    return name


def read_modified_for_update(
    connection: Connection, shard_id: str, grids: Sequence[bytes]
) -> dict[bytes, date | None]:
    """``modified`` of the stored grid cells among ``grids``, their rows locked
    (``SELECT ... FOR UPDATE`` on MySQL) until the transaction ends."""
    if not grids:
        return {}
    if is_mysql(connection):
        # The statement as text, like the station rows' (a batch names up
        # to 500 keys: SQLAlchemy's compilation of the IN list and its row
        # processing cost more than the statement).
        sql = (
            f"SELECT `grid`,`modified` FROM `{_table_name(shard_id)}` "
            f"WHERE `grid` IN ({binary_literals(grids)}) FOR UPDATE"
        )
        return {bytes(grid): day for grid, day in driver_rows(connection, sql)}
    table = DATAMAP_SHARDS[shard_id]
    return {
        grid: modified
        for grid, modified in connection.execute(
            sa.select(table.grid, table.modified).where(table.grid.in_(grids)).with_for_update()
        )
    }


def set_modified(connection: Connection, shard_id: str, grids: Sequence[bytes], day: date) -> None:
    """Set ``modified`` of the stored grid cells ``grids`` to ``day``."""
    if not grids:
        return
    if is_mysql(connection):
        connection.exec_driver_sql(
            f"UPDATE `{_table_name(shard_id)}` SET `modified`='{day.isoformat()}' "
            f"WHERE `grid` IN ({binary_literals(grids)})"
        )
        return
    table = DATAMAP_SHARDS[shard_id]
    connection.execute(sa.update(table).where(table.grid.in_(grids)).values(modified=day))


def insert_grids(connection: Connection, shard_id: str, grids: Sequence[bytes], day: date) -> None:
    """Insert ``grids`` with ``created = modified = day``, skipping keys already stored.

    ``INSERT IGNORE`` (``INSERT OR IGNORE`` on SQLite): another worker may
    have inserted the same grid cell since the caller read the table.
    """
    if not grids:
        return
    if is_mysql(connection):
        values = _fast.mysql_values([(bytes(grid), day, day) for grid in grids])
        connection.exec_driver_sql(
            f"INSERT IGNORE INTO `{_table_name(shard_id)}` (`grid`,`created`,`modified`) "
            f"VALUES {values}"
        )
        return
    connection.execute(
        sa.insert(DATAMAP_SHARDS[shard_id])
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("IGNORE", dialect="mariadb")
        .prefix_with("OR IGNORE", dialect="sqlite"),
        [{"grid": grid, "created": day, "modified": day} for grid in grids],
    )


def delete_modified_before(connection: Connection, shard_id: str, cutoff: date) -> int:
    """Delete the grid cells last ``modified`` before ``cutoff``; return how many."""
    table = DATAMAP_SHARDS[shard_id]
    return connection.execute(sa.delete(table).where(table.modified < cutoff)).rowcount


def grid_pages(engine: Engine, shard_id: str, page_size: int) -> Iterator[Sequence[sa.Row[Any]]]:
    """Every ``(grid, modified)`` row of the shard, in grid order, ``page_size`` at a time."""
    table = DATAMAP_SHARDS[shard_id].__table__
    return keyset_pages(engine, sa.select(table.c.grid, table.c.modified), table.c.grid, page_size)
