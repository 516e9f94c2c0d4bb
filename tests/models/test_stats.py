"""Counters, region statistics and the four datamap quadrant tables."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ichnaea.codecs import datamap_shard_id, encode_datamap_grid
from ichnaea.enums import StatKey
from ichnaea.models.all import metadata
from ichnaea.models.stats import DATAMAP_SHARDS, DataMap, RegionStat, Stat


def test_datamap_shards_are_the_four_quadrants() -> None:
    assert {s: m.__tablename__ for s, m in DATAMAP_SHARDS.items()} == {
        "ne": "datamap_ne",
        "nw": "datamap_nw",
        "se": "datamap_se",
        "sw": "datamap_sw",
    }
    assert all(issubclass(m, DataMap) for m in DATAMAP_SHARDS.values())
    assert {i.name for i in metadata.tables["datamap_se"].indexes} == {
        "datamap_se_created_idx",
        "datamap_se_modified_idx",
    }


def test_datamap_row_round_trips_in_its_quadrant(db_session: Session) -> None:
    grid = (40001, 3001)
    model = DATAMAP_SHARDS[datamap_shard_id(*grid)]
    db_session.add(
        model(grid=encode_datamap_grid(*grid), created=date(2026, 1, 1), modified=date(2026, 2, 1))
    )
    db_session.flush()
    db_session.expunge_all()
    row = db_session.scalars(select(model)).one()
    assert model.__tablename__ == "datamap_nw"
    assert (row.grid, row.created, row.modified) == (
        encode_datamap_grid(*grid),
        date(2026, 1, 1),
        date(2026, 2, 1),
    )


def test_stat_holds_one_running_total_per_key_and_day(db_session: Session) -> None:
    db_session.add_all(
        [
            Stat(key=StatKey.unique_wifi, time=date(2026, 11, 29), value=2**40),
            Stat(key=StatKey.unique_wifi, time=date(2026, 11, 30), value=2**40 + 1),
            Stat(key=StatKey.blue, time=date(2026, 11, 30), value=0),
        ]
    )
    db_session.flush()
    db_session.expunge_all()
    rows = db_session.execute(select(Stat.key, Stat.time, Stat.value).order_by(Stat.key, Stat.time))
    assert [tuple(r) for r in rows] == [
        (4, date(2026, 11, 29), 2**40),
        (4, date(2026, 11, 30), 2**40 + 1),
        (8, date(2026, 11, 30), 0),
    ]


def test_region_stat_row_round_trips(db_session: Session) -> None:
    db_session.add(RegionStat(region="DE", gsm=3, wcdma=3, lte=0, blue=0, wifi=2**33))
    db_session.flush()
    db_session.expunge_all()
    row = db_session.get_one(RegionStat, "DE")
    assert (row.gsm, row.wcdma, row.lte, row.blue, row.wifi) == (3, 3, 0, 0, 2**33)
