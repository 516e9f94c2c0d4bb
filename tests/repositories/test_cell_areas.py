"""SQL of the cell-area rebuild: cells by area, area rows of both tables, on MariaDB and SQLite.

The aggregates themselves are tested through
:func:`ichnaea.pipeline.stations.areas.update_areas` in
``tests/pipeline/stations/test_areas.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ichnaea.codecs import encode_areaid, encode_cellid
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES, CellArea, CellAreaNr
from ichnaea.repositories import cell_areas
from ichnaea.repositories.cell_areas import (
    CellRow,
    delete_areas,
    fetch_positioned_cells,
    has_cell_table,
    read_areas_for_update,
    write_areas,
)

NOW = datetime(2026, 12, 6, 12, 0, 0)
GSM = (Radio.gsm, 234, 10, 123)
NR = (Radio.nr, 234, 30, 2**20)  # a 24-bit TAC: only the NR layout holds it


def add_cell(conn: Connection, area: tuple[Radio, int, int, int], cid: int, **values: Any) -> None:
    radio, mcc, mnc, lac = area
    row = {"cellid": encode_cellid(radio, mcc, mnc, lac, cid), "radio": int(radio), "mcc": mcc,
           "mnc": mnc, "lac": lac, "cid": cid, "lat": 51.5, "lon": -0.1, "radius": 1000,
           "region": "GB", "last_seen": date(2026, 12, 1), **values}  # fmt: skip
    conn.execute(sa.insert(CELL_TABLES[radio]).values(row))


def area_row(area: tuple[Radio, int, int, int], **values: Any) -> dict[str, Any]:
    radio, mcc, mnc, lac = area
    return {"areaid": encode_areaid(*area), "radio": int(radio), "mcc": mcc, "mnc": mnc,
            "lac": lac, "lat": 51.5, "lon": -0.1, "num_cells": 1, "created": NOW,
            "modified": NOW, **values}  # fmt: skip


def test_only_cdma_has_no_cell_table() -> None:
    assert [radio for radio in Radio if not has_cell_table(radio)] == [Radio.cdma]


def test_positioned_cells_are_grouped_by_area(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = db_session.connection()
    neighbour = (Radio.gsm, 234, 10, 124)
    add_cell(conn, GSM, 1)
    add_cell(conn, GSM, 2**32 - 1, lat=None)  # no position: left out
    add_cell(conn, neighbour, 0)
    add_cell(conn, (Radio.gsm, 234, 10, 125), 0)  # an area not asked for
    add_cell(conn, NR, 2**36 - 1, region=None, last_seen=None)
    # One area per statement, so the ranges are split over statements too.
    monkeypatch.setattr(cell_areas, "RANGES_PER_QUERY", 1)

    found = fetch_positioned_cells(conn, [encode_areaid(*a) for a in (GSM, neighbour, NR)])
    assert sorted(found) == [(0, 234, 10, 123), (0, 234, 10, 124), (4, 234, 30, 2**20)]
    assert found[(0, 234, 10, 123)] == [
        CellRow(234, 10, 123, 51.5, -0.1, None, None, None, None, 1000, "GB", date(2026, 12, 1))
    ]
    assert found[(4, 234, 30, 2**20)] == [
        CellRow(234, 30, 2**20, 51.5, -0.1, None, None, None, None, 1000, None, None)
    ]


def test_area_rows_of_both_tables_are_written_read_and_deleted(db_session: Session) -> None:
    conn = db_session.connection()
    gsm, nr = encode_areaid(*GSM), encode_areaid(*NR)
    write_areas(conn, [area_row(GSM, not_a_column=1), area_row(NR, region="GB")])
    assert conn.execute(sa.select(CellArea.areaid)).scalars().all() == [gsm]
    assert conn.execute(sa.select(CellAreaNr.areaid)).scalars().all() == [nr]

    existing = read_areas_for_update(conn, [gsm, nr, encode_areaid(Radio.lte, 1, 1, 1)])
    assert sorted(existing) == sorted([gsm, nr])
    assert existing[nr] == {**area_row(NR, region="GB"), "radius": None, "avg_cell_radius": None,
                            "last_seen": None}  # fmt: skip

    write_areas(conn, [dict(existing[gsm], num_cells=3)])
    delete_areas(conn, [nr])
    left = read_areas_for_update(conn, [gsm, nr])
    assert {key: row["num_cells"] for key, row in left.items()} == {gsm: 3}


def test_nothing_to_delete_or_write_is_a_no_op(db_session: Session) -> None:
    conn = db_session.connection()
    delete_areas(conn, [])
    write_areas(conn, [])
    assert read_areas_for_update(conn, []) == {}
    assert fetch_positioned_cells(conn, []) == {}
