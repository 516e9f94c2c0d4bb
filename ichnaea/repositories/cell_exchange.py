"""SQL of the public cell exchange: the export's reads and the import's writes.

One table per radio (:data:`ichnaea.models.cell.CELL_TABLES`), keyed by the
binary ``cellid``:

* :func:`export_pages` reads the located cells of one table modified in a
  window, in cellid order, by keyset pages (:mod:`ichnaea.repositories.paging`)
  each on a connection of its own;
* :func:`read_modified_for_update`, :func:`insert_cells` and
  :func:`update_cells` are the three statements per table of one import
  chunk, run on the caller's connection inside its transaction: read and
  lock the stored cells, insert the new ones, overwrite the changed ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES
from ichnaea.repositories.paging import keyset_pages


def _table(radio: Radio) -> sa.Table:
    return cast(sa.Table, CELL_TABLES[radio].__table__)


def export_pages(
    engine: Engine, radio: Radio, *, start: datetime, end: datetime | None, page_size: int
) -> Iterator[Sequence[sa.Row[Any]]]:
    """Pages of the located ``radio`` cells with ``start <= modified < end`` (no
    ``end``: no upper bound), in cellid order.

    Rows have the columns ``cellid, mcc, mnc, lac, cid, psc, lon, lat, radius,
    samples, created, modified``.
    """
    c = _table(radio).c
    query = sa.select(
        c.cellid,
        c.mcc,
        c.mnc,
        c.lac,
        c.cid,
        c.psc,
        c.lon,
        c.lat,
        c.radius,
        c.samples,
        c.created,
        c.modified,
    ).where(c.lat.is_not(None), c.lon.is_not(None), c.modified >= start)
    if end is not None:
        query = query.where(c.modified < end)
    return keyset_pages(engine, query, c.cellid, page_size)


def read_modified_for_update(
    connection: Connection, radio: Radio, cellids: Sequence[bytes]
) -> dict[bytes, datetime | None]:
    """``modified`` of the stored cells among ``cellids``, their rows locked
    (``SELECT ... FOR UPDATE``) until the transaction ends."""
    table = _table(radio)
    return {
        cellid: modified
        for cellid, modified in connection.execute(
            sa.select(table.c.cellid, table.c.modified)
            .where(table.c.cellid.in_(cellids))
            .with_for_update()
        )
    }


def insert_cells(connection: Connection, radio: Radio, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (column name -> value, ``cellid`` included) into the ``radio`` table."""
    connection.execute(sa.insert(_table(radio)), rows)


def update_cells(
    connection: Connection,
    radio: Radio,
    changes: Sequence[tuple[bytes, Mapping[str, Any]]],
    columns: Sequence[str],
) -> None:
    """Set ``columns`` of stored cells to their values, one ``(cellid, values)``
    pair per cell, in one executemany."""
    table = _table(radio)
    statement = (
        sa.update(table)
        # The key's parameter is named apart from the column: an UPDATE's
        # SET parameters take the column names.
        .where(table.c.cellid == sa.bindparam("b_cellid"))
        .values({c: sa.bindparam(c) for c in columns})
    )
    connection.execute(
        statement,
        [{"b_cellid": cellid, **{c: values[c] for c in columns}} for cellid, values in changes],
    )
