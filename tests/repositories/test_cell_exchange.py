"""The cell exchange's SQL: export pages by window, and the import's three statements."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ichnaea.codecs import encode_cellid
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES
from ichnaea.repositories.cell_exchange import (
    export_pages,
    insert_cells,
    read_modified_for_update,
    update_cells,
)

T0 = datetime(2026, 11, 30, 9, 0)
T1 = datetime(2026, 11, 30, 10, 0)


@pytest.fixture
def engine(db_engine: Engine) -> Iterator[Engine]:
    with db_engine.begin() as conn:
        for model in CELL_TABLES.values():
            conn.execute(sa.delete(model))
    yield db_engine
    with db_engine.begin() as conn:
        for model in CELL_TABLES.values():
            conn.execute(sa.delete(model))


def cell(cid: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cellid": encode_cellid(Radio.lte, 262, 1, 5, cid), "radio": int(Radio.lte),
        "mcc": 262, "mnc": 1, "lac": 5, "cid": cid, "lat": 52.5, "lon": 13.4, "samples": 1,
        "modified": T0,
    }  # fmt: skip
    row.update(values)
    return row


def stored(engine: Engine) -> dict[int, Any]:
    table = CELL_TABLES[Radio.lte]
    with engine.connect() as conn:
        return {row.cid: row for row in conn.execute(sa.select(table))}


def test_export_pages_hold_located_cells_of_the_window_in_cellid_order(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_cells(conn, Radio.lte, [
            cell(4), cell(1), cell(2, modified=T1), cell(3, lat=None),
            cell(5, modified=T0.replace(minute=59, hour=8)), cell(6, modified=None),
        ])  # fmt: skip
    pages = list(export_pages(engine, Radio.lte, start=T0, end=T1, page_size=1))
    assert [[row.cid for row in page] for page in pages] == [[1], [4]]
    open_ended = export_pages(engine, Radio.lte, start=T0, end=None, page_size=10)
    assert [row.cid for page in open_ended for row in page] == [1, 2, 4]
    assert list(pages[0][0]._fields) == [
        "cellid", "mcc", "mnc", "lac", "cid", "psc", "lon", "lat",
        "radius", "samples", "created", "modified",
    ]  # fmt: skip
    assert list(export_pages(engine, Radio.gsm, start=T0, end=None, page_size=10)) == []


def test_import_reads_stored_cells_then_updates_only_the_given_columns(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_cells(conn, Radio.lte, [cell(1, samples=3), cell(2, modified=None)])
    ids = [cell(cid)["cellid"] for cid in (1, 2, 3)]
    with engine.begin() as conn:
        assert read_modified_for_update(conn, Radio.lte, ids) == {ids[0]: T0, ids[1]: None}
        update_cells(
            conn,
            Radio.lte,
            [(ids[0], {"lat": 1.5, "samples": 9, "region": "DE"}), (ids[1], {"lat": 2.5})],
            ["lat"],
        )
    rows = stored(engine)
    assert (rows[1].lat, rows[1].samples, rows[1].region, rows[1].lon) == (1.5, 3, None, 13.4)
    assert rows[2].lat == 2.5
