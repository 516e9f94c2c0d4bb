"""Cell tables per radio, the NR table's wide identifiers, and cell areas."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ichnaea.codecs import encode_areaid, encode_cellid
from ichnaea.enums import Radio
from ichnaea.models.all import metadata
from ichnaea.models.cell import CELL_TABLES, CellArea

NR_MAX_CID = 2**36 - 1  # 68719476735
NR_MAX_TAC = 2**24 - 1


def test_cell_tables_exist_for_each_radio_except_cdma() -> None:
    assert {radio: model.__tablename__ for radio, model in CELL_TABLES.items()} == {
        Radio.gsm: "cell_gsm",
        Radio.wcdma: "cell_wcdma",
        Radio.lte: "cell_lte",
        Radio.nr: "cell_nr",
    }


@pytest.mark.parametrize("radio", list(CELL_TABLES))
def test_cell_tables_have_the_spec_constraint_and_index_names(radio: Radio) -> None:
    table = metadata.tables[CELL_TABLES[radio].__tablename__]
    name = table.name
    unique = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    assert [(c.name, [col.name for col in c.columns]) for c in unique] == [
        (f"{name}_cellid_unique", ["radio", "mcc", "mnc", "lac", "cid"])
    ]
    assert {i.name for i in table.indexes} == {
        f"{name}_region_idx",
        f"{name}_created_idx",
        f"{name}_modified_idx",
        f"{name}_latlon_idx",
    }


def test_cell_nr_row_stores_36_bit_cid_and_24_bit_tac(db_session: Session) -> None:
    model = CELL_TABLES[Radio.nr]
    cellid = encode_cellid(Radio.nr, 310, 410, NR_MAX_TAC, NR_MAX_CID)
    db_session.add(
        model(
            cellid=cellid,
            radio=Radio.nr,
            mcc=310,
            mnc=410,
            lac=NR_MAX_TAC,
            cid=NR_MAX_CID,
            psc=1007,
            lat=40.7,
            lon=-74.0,
            radius=1500,
        )
    )
    db_session.flush()
    db_session.expunge_all()

    row = db_session.scalars(select(model).where(model.cellid == cellid)).one()
    assert len(row.cellid) == 17
    assert (row.radio, row.mcc, row.mnc, row.lac, row.cid) == (4, 310, 410, NR_MAX_TAC, 68719476735)
    assert row.psc == 1007
    by_identity = select(model.cellid).where(model.cid == NR_MAX_CID, model.lac == NR_MAX_TAC)
    assert db_session.scalars(by_identity).one() == cellid


def test_cell_lte_row_round_trips_with_unsigned_extremes(db_session: Session) -> None:
    model = CELL_TABLES[Radio.lte]
    cellid = encode_cellid(Radio.lte, 262, 1, 65535, 4_294_967_295)
    db_session.add(
        model(cellid=cellid, radio=Radio.lte, mcc=262, mnc=1, lac=65535, cid=4_294_967_295)
    )
    db_session.flush()
    db_session.expunge_all()
    row = db_session.scalars(select(model)).one()
    assert (row.lac, row.cid, row.psc) == (65535, 4_294_967_295, None)


def test_cell_identity_is_unique_even_under_another_key(db_session: Session) -> None:
    model = CELL_TABLES[Radio.gsm]
    identity = {"radio": Radio.gsm, "mcc": 262, "mnc": 1, "lac": 2, "cid": 3}
    db_session.add(model(cellid=encode_cellid(**identity), **identity))
    db_session.flush()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(model(cellid=b"\x00" * 11, **identity))
        db_session.flush()


def test_cell_area_row_round_trips(db_session: Session) -> None:
    areaid = encode_areaid(Radio.wcdma, 262, 2, 513)
    modified = datetime(2026, 11, 30, 12, 0, 0)
    db_session.add(
        CellArea(
            areaid=areaid,
            radio=Radio.wcdma,
            mcc=262,
            mnc=2,
            lac=513,
            lat=52.5,
            lon=13.4,
            radius=-1,
            region="DE",
            avg_cell_radius=2000,
            num_cells=7,
            created=modified,
            modified=modified,
        )
    )
    db_session.flush()
    db_session.expunge_all()
    row = db_session.get_one(CellArea, areaid)
    assert (row.radio, row.lac, row.radius, row.num_cells, row.modified) == (
        2,
        513,
        -1,
        7,
        modified,
    )
