"""SQL for rebuilding ``cell_area`` rows from the cells of each area.

The cell-area recomputation (:mod:`ichnaea.pipeline.stations.areas`) locks
the rows of a batch of areas (:func:`read_areas_for_update`), reads the
positioned cells of those areas (:func:`fetch_positioned_cells`), then
deletes the areas left without cells (:func:`delete_areas`) and writes the
others in one upsert per table (:func:`write_areas`), all in one
transaction of the caller's.

Areas are named by their binary ids (:func:`ichnaea.codecs.encode_areaid`),
whose first byte is the radio: an NR area lives in ``cell_area_nr``, any
other in ``cell_area`` (:func:`ichnaea.models.cell.area_table`). A batch of
ids may mix both tables; each function runs one statement per table (or,
for the cells, per radio and 500 areas), tables in the order their first
id comes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Connection

from ichnaea.codecs import CELLID_BYTES, NR_CELLID_BYTES
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES, area_table
from ichnaea.repositories.upsert import upsert_rows
from ichnaea.values import as_date

# Key ranges per statement: a few hundred keep the statement small and the
# range optimizer quick.
RANGES_PER_QUERY = 500


def has_cell_table(radio: Radio) -> bool:
    """Whether cells of ``radio`` are stored (every radio but CDMA)."""
    return radio in CELL_TABLES


class CellRow(NamedTuple):
    """The columns of a positioned cell that its area's aggregate is computed from."""

    mcc: int
    mnc: int
    lac: int
    lat: float
    lon: float
    max_lat: float | None
    min_lat: float | None
    max_lon: float | None
    min_lon: float | None
    radius: int | None
    region: str | None
    last_seen: date | None


_CELL_COLUMNS = ", ".join(CellRow._fields)


def _table_of(area_id: bytes) -> sa.Table:
    table: sa.Table = area_table(area_id[0]).__table__  # type: ignore[assignment]
    return table


def _by_table(area_ids: Iterable[bytes]) -> dict[sa.Table, list[bytes]]:
    by_table: dict[sa.Table, list[bytes]] = {}
    for area_id in area_ids:
        by_table.setdefault(_table_of(area_id), []).append(area_id)
    return by_table


def read_areas_for_update(
    connection: Connection, area_ids: Iterable[bytes]
) -> dict[bytes, dict[str, Any]]:
    """Lock and return the existing rows of ``area_ids`` (all columns, by area id).

    ``SELECT ... FOR UPDATE`` on MySQL, so two workers cannot rebuild the
    same area at once; SQLite has no ``FOR UPDATE`` and serialises writers
    anyway.
    """
    existing: dict[bytes, dict[str, Any]] = {}
    for table, ids in _by_table(area_ids).items():
        statement = sa.select(table).where(table.c.areaid.in_(ids)).with_for_update()
        for row in connection.execute(statement).mappings():
            existing[bytes(row["areaid"])] = dict(row)
    return existing


def fetch_positioned_cells(
    connection: Connection, area_ids: Iterable[bytes]
) -> dict[tuple[int, int, int, int], list[CellRow]]:
    """Cells with a position (non-null lat and lon) of the areas, grouped by
    (radio, mcc, mnc, lac).

    A cell id starts with the id of its area (radio, mcc, mnc, lac, then the
    cell id in 4 bytes, or 8 for NR), so the cells of an area are one range
    of the table's primary key. The statements are built as text: the
    literals are hex and the SQL compiler's cost for thousands of bound
    ranges was most of the area update.
    """
    by_radio: dict[Radio, list[bytes]] = {}
    for area_id in area_ids:
        by_radio.setdefault(Radio(area_id[0]), []).append(area_id)
    found: dict[tuple[int, int, int, int], list[CellRow]] = {}
    for radio, ids in by_radio.items():
        table = CELL_TABLES[radio].__tablename__
        pad = (NR_CELLID_BYTES if radio is Radio.nr else CELLID_BYTES) - len(ids[0])
        low, high = "00" * pad, "ff" * pad
        for start in range(0, len(ids), RANGES_PER_QUERY):
            ranges = " OR ".join(
                f"cellid BETWEEN X'{area_id.hex()}{low}' AND X'{area_id.hex()}{high}'"
                for area_id in ids[start : start + RANGES_PER_QUERY]
            )
            sql = (
                f"SELECT {_CELL_COLUMNS} FROM {table} "
                f"WHERE lat IS NOT NULL AND lon IS NOT NULL AND ({ranges})"
            )
            for raw in connection.exec_driver_sql(sql):
                values = tuple(raw)
                row = CellRow._make((*values[:-1], as_date(values[-1])))
                found.setdefault((int(radio), row.mcc, row.mnc, row.lac), []).append(row)
    return found


def delete_areas(connection: Connection, area_ids: Iterable[bytes]) -> None:
    """Delete the rows of ``area_ids`` (ids without a row are ignored)."""
    for table, ids in _by_table(area_ids).items():
        connection.execute(sa.delete(table).where(table.c.areaid.in_(ids)))


def write_areas(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or overwrite ``rows`` by area id, one upsert per table.

    Each row is written whole: a column the row does not name is stored as
    NULL, and a name that is not a column is ignored. A concurrent insert of
    the same area is overwritten rather than failing.
    """
    by_table: dict[sa.Table, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_table.setdefault(_table_of(row["areaid"]), []).append(row)
    for table, table_rows in by_table.items():
        columns = [column.name for column in table.columns]
        upsert_rows(
            connection, table, columns, [{c: row.get(c) for c in columns} for row in table_rows]
        )
