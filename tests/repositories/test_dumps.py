"""The station dump's SQL: every table of a type, in table then key order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ichnaea.codecs import encode_cellid, encode_mac, mac_shard_id
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS
from ichnaea.repositories.dumps import station_pages

MODELS = (*WIFI_SHARDS.values(), *BLUE_SHARDS.values(), *CELL_TABLES.values())


@pytest.fixture
def engine(db_engine: Engine) -> Iterator[Engine]:
    with db_engine.begin() as conn:
        for model in MODELS:
            conn.execute(sa.delete(model))
    yield db_engine
    with db_engine.begin() as conn:
        for model in MODELS:
            conn.execute(sa.delete(model))


def dump(engine: Engine, datatype: str, columns: tuple[str, ...], **kwargs: Any) -> list[Any]:
    """The rows of every page, as tuples."""
    with engine.connect() as conn:
        pages = station_pages(conn, datatype, columns, **kwargs)
        return [[tuple(row) for row in page] for page in pages]


def test_cells_come_table_by_table_then_in_key_order(engine: Engine) -> None:
    radios = (Radio.nr, Radio.gsm, Radio.lte, Radio.gsm, Radio.wcdma)
    with engine.begin() as conn:
        for i, radio in enumerate(radios):
            key = {"radio": int(radio), "mcc": 1, "mnc": 1, "lac": 1, "cid": 10 - i}
            cellid = encode_cellid(radio, 1, 1, 1, 10 - i)
            conn.execute(sa.insert(CELL_TABLES[radio]).values(cellid=cellid, **key))
    pages = dump(engine, "cell", ("cellid", "radio", "cid"), bounds=None, page_size=1)
    assert [[row[1:] for row in page] for page in pages] == [
        [(Radio.gsm, 7)], [(Radio.gsm, 9)], [(Radio.wcdma, 6)], [(Radio.lte, 8)], [(Radio.nr, 10)],
    ]  # fmt: skip


def test_bounds_keep_the_stations_inside_the_box(engine: Engine) -> None:
    positions = {"0000000000a1": (51.5, -0.1), "0000000000b2": (48.8, 2.3), "f000000000c3": None}
    with engine.begin() as conn:
        for mac, position in positions.items():
            lat, lon = position or (None, None)
            model = WIFI_SHARDS[mac_shard_id(mac)]
            conn.execute(sa.insert(model).values(mac=encode_mac(mac), lat=lat, lon=lon))
    everything = dump(engine, "wifi", ("mac",), bounds=None, page_size=10)
    assert [row[0] for page in everything for row in page] == [encode_mac(mac) for mac in positions]
    inside = dump(engine, "wifi", ("mac", "lat"), bounds=(52.0, 51.0, 0.0, -1.0), page_size=10)
    assert inside == [[(encode_mac("0000000000a1"), 51.5)]]
    assert dump(engine, "blue", ("mac",), bounds=None, page_size=10) == []


def test_an_unknown_datatype_raises_before_any_page_is_read(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(ValueError, match="datatype"):
        station_pages(conn, "cdma", ("mac",), bounds=None, page_size=10)
