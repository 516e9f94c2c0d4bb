"""Station dump as gzip CSV (spec pipeline.md section 14.3)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ichnaea import geo
from ichnaea.codecs import encode_cellid, encode_mac, mac_shard_id
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS
from ichnaea.pipeline.public.dump import area_bounds, dump_stations

MAC_HEADER = (
    "mac,lat,lon,max_lat,min_lat,max_lon,min_lon,radius,region,samples,source,weight,"
    "created,modified,last_seen,block_first,block_last,block_count"
)
CELL_HEADER = (
    "radio,mcc,mnc,lac,cid,psc,lat,lon,max_lat,min_lat,max_lon,min_lon,radius,region,"
    "samples,source,weight,created,modified,last_seen,block_first,block_last,block_count"
)
# The station columns of a row whose nullable columns are all NULL.
NULL_STATION = ",,,,,,,0,,0,,0,,,,,,0"
LONDON = area_bounds(51.5, -0.1, 25000)


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """``db_engine`` with empty station tables (they outlive each test)."""
    with db_engine.begin() as connection:
        for model in (*WIFI_SHARDS.values(), *BLUE_SHARDS.values(), *CELL_TABLES.values()):
            connection.execute(sa.delete(model))
    return db_engine


def add_mac(engine: Engine, datatype: str, mac: str, **values: Any) -> None:
    shards = WIFI_SHARDS if datatype == "wifi" else BLUE_SHARDS
    with engine.begin() as connection:
        connection.execute(
            sa.insert(shards[mac_shard_id(mac)]).values(mac=encode_mac(mac), **values)
        )


def add_cell(
    engine: Engine, radio: Radio, mcc: int, mnc: int, lac: int, cid: int, **values: Any
) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(CELL_TABLES[radio]).values(
                cellid=encode_cellid(radio, mcc, mnc, lac, cid),
                radio=int(radio),
                mcc=mcc,
                mnc=mnc,
                lac=lac,
                cid=cid,
                **values,
            )
        )


def dump(engine: Engine, datatype: str, **kwargs: Any) -> tuple[int, str]:
    """Dump into memory: the returned row count and the decompressed text."""
    out = io.BytesIO()
    count = dump_stations(engine, datatype, out, **kwargs)
    assert not out.closed
    return count, gzip.decompress(out.getvalue()).decode("utf-8")


def data_lines(text: str) -> list[str]:
    """The lines after the header; the text must end with one LF."""
    assert text.endswith("\n")
    return text.split("\n")[1:-1]


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL text and parameters of the statements ``engine`` executes in the block."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


# --- area_bounds -------------------------------------------------------------


def test_area_bounds_spec_example() -> None:
    # lat <= 51.7247 and lat >= 51.27529 and lon <= 0.26002 and lon >= -0.46002
    assert area_bounds(51.5, -0.1, 25000) == (51.7247, 51.27529, 0.26002, -0.46002)


def test_area_bounds_are_the_geodesic_destinations() -> None:
    north, _ = geo.destination(10.0, 20.0, 0, 5000)
    south, _ = geo.destination(10.0, 20.0, 180, 5000)
    _, east = geo.destination(10.0, 20.0, 90, 5000)
    _, west = geo.destination(10.0, 20.0, 270, 5000)
    expected = (round(north, 5), round(south, 5), round(east, 5), round(west, 5))
    assert area_bounds(10.0, 20.0, 5000) == expected
    # 5 km is about 0.0452 degrees of latitude and 0.0456 of longitude at 10 N.
    assert expected == (10.0452, 9.9548, 20.0456, 19.9544)


def test_area_bounds_are_clamped() -> None:
    max_lat, _, _, _ = area_bounds(85.0, 0.0, 100_000)
    _, min_lat, _, _ = area_bounds(-85.0, 0.0, 100_000)
    _, _, max_lon, _ = area_bounds(0.0, 179.9, 100_000)
    _, _, _, min_lon = area_bounds(0.0, -179.9, 100_000)
    assert (max_lat, min_lat, max_lon, min_lon) == (85.051, -85.051, 180.0, -180.0)


# --- dump_stations -----------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "header"), [("blue", MAC_HEADER), ("cell", CELL_HEADER), ("wifi", MAC_HEADER)]
)
def test_empty_dump_is_the_header(engine: Engine, datatype: str, header: str) -> None:
    calls: list[int] = []
    count, text = dump(engine, datatype, progress=calls.append)
    assert (count, text, calls) == (0, header + "\n", [])


def test_unknown_datatype(engine: Engine) -> None:
    with pytest.raises(ValueError, match="datatype"):
        dump_stations(engine, "cdma", io.BytesIO())
    with pytest.raises(ValueError, match="page_size"):
        dump_stations(engine, "wifi", io.BytesIO(), page_size=0)


def test_wifi_row_with_every_column(engine: Engine) -> None:
    add_mac(
        engine,
        "wifi",
        "A82067491500",
        lat=51.5,
        lon=-0.1,
        max_lat=51.50012345678,
        min_lat=51.4999999999,
        max_lon=-0.09999996,
        min_lon=-0.00000001,
        radius=54,
        region="GB",
        samples=7,
        source=3,
        weight=2.5,
        created=datetime(2024, 5, 6, 12, 30, 15),
        modified=datetime(2024, 5, 7, 8, 0, 1),
        last_seen=date(2024, 5, 7),
        block_first=date(2023, 1, 2),
        block_last=date(2023, 2, 3),
        block_count=2,
    )
    count, text = dump(engine, "wifi")
    assert count == 1
    header, line, end = text.split("\n")
    assert (header, end) == (MAC_HEADER, "")
    fields = dict(zip(MAC_HEADER.split(","), line.split(","), strict=True))
    assert fields == {
        "mac": "a82067491500",
        "lat": "51.5000000",
        "lon": "-0.1000000",
        "max_lat": "51.5001235",
        "min_lat": "51.5000000",
        "max_lon": "-0.1000000",
        "min_lon": "0.0000000",  # -0.0 after rounding
        "radius": "54",
        "region": "GB",
        "samples": "7",
        "source": "3",
        "weight": "2.5",
        "created": "1714998615",  # 2024-05-06T12:30:15Z
        "modified": "1715068801",  # 2024-05-07T08:00:01Z
        "last_seen": "1715040000",  # 2024-05-07T00:00:00Z
        "block_first": "1672617600",  # 2023-01-02T00:00:00Z
        "block_last": "1675382400",  # 2023-02-03T00:00:00Z
        "block_count": "2",
    }


def test_null_columns(engine: Engine) -> None:
    add_mac(engine, "blue", "0000000000a1")
    add_cell(engine, Radio.gsm, 234, 30, 1, 2)
    assert data_lines(dump(engine, "blue")[1]) == ["0000000000a1" + NULL_STATION]
    assert data_lines(dump(engine, "cell")[1]) == ["GSM,234,30,1,2," + NULL_STATION]


@pytest.mark.parametrize(
    ("weight", "text"),
    [(2.0, "2"), (0.0, "0"), (-0.0, "0"), (0.1, "0.1"), (1 / 3, "0.3333333333333333")],
)
def test_weight_text(engine: Engine, weight: float, text: str) -> None:
    add_mac(engine, "wifi", "000000000001", weight=weight)
    (line,) = data_lines(dump(engine, "wifi")[1])
    assert line.split(",")[11] == text


def test_cell_row_per_radio(engine: Engine) -> None:
    position = {"lat": -33.8688197, "lon": 151.2092955, "samples": 3}
    # Inserted in reverse; dumped GSM, WCDMA, LTE, then NR.
    add_cell(engine, Radio.nr, 310, 410, 1_000_000, 2**35 + 1, psc=503, **position)
    add_cell(engine, Radio.lte, 262, 1, 65535, 2**28 - 1, psc=0, **position)
    add_cell(engine, Radio.wcdma, 208, 10, 2, 3, psc=-1, **position)
    add_cell(engine, Radio.gsm, 1, 0, 0, 0, **position)
    count, text = dump(engine, "cell")
    assert count == 4
    station = ",-33.8688197,151.2092955,,,,,0,,3,,0,,,,,,0"
    assert data_lines(text) == [
        "GSM,1,0,0,0," + station,
        "WCDMA,208,10,2,3,-1" + station,
        "LTE,262,1,65535,268435455,0" + station,
        "NR,310,410,1000000,34359738369,503" + station,
    ]


def test_cells_in_key_order_within_a_radio(engine: Engine) -> None:
    for mcc, mnc, lac, cid in [(262, 2, 5, 1), (208, 1, 9, 9), (262, 1, 5, 2), (208, 1, 9, 8)]:
        add_cell(engine, Radio.lte, mcc, mnc, lac, cid)
    keys = [line.split(",")[1:5] for line in data_lines(dump(engine, "cell")[1])]
    assert keys == [
        ["208", "1", "9", "8"],
        ["208", "1", "9", "9"],
        ["262", "1", "5", "2"],
        ["262", "2", "5", "1"],
    ]


@pytest.mark.parametrize(("datatype", "other"), [("blue", "wifi"), ("wifi", "blue")])
def test_all_shards_in_order(engine: Engine, datatype: str, other: str) -> None:
    # Shard = 5th hex digit; added out of order, two shards with two rows.
    macs = ["ff00f00000ff", "0000f0000001", "aaaa100000aa", "00002000ffff", "0000200000ff"]
    for mac in macs:
        add_mac(engine, datatype, mac, samples=1)
    add_mac(engine, other, "0000300000aa", samples=1)
    count, text = dump(engine, datatype)
    assert count == 5
    assert [line.split(",")[0] for line in data_lines(text)] == [
        "aaaa100000aa",
        "0000200000ff",
        "00002000ffff",
        "0000f0000001",
        "ff00f00000ff",
    ]


def test_paging_gives_the_same_rows(engine: Engine) -> None:
    macs = [f"00000{index:07x}" for index in range(5)] + ["0000900000aa", "0000900000bb"]
    for samples, mac in enumerate(macs):
        add_mac(engine, "wifi", mac, samples=samples, lat=1.0, lon=2.0)
    pages: list[int] = []
    with recorded_statements(engine) as statements:
        paged = dump(engine, "wifi", page_size=2, progress=pages.append)
    whole = dump(engine, "wifi")
    assert paged == whole
    assert paged[0] == 7
    assert len(data_lines(paged[1])) == 7
    # Shard 0: 2 + 2 + 1 rows; shard 9: 2 rows, then an empty page.
    assert pages == [2, 2, 1, 2]
    selects = [(sql, params) for sql, params in statements if "wifi_shard" in sql]
    assert len(selects) == 16 + 3  # one query per shard, plus the follow-up pages
    assert sum("mac >" in sql for sql, _ in selects) == 3
    # Keyset paging, no OFFSET; SQLite renders every LIMIT with "OFFSET 0".
    offsets = [params[-1] for sql, params in selects if "OFFSET" in sql.upper()]
    assert set(offsets) <= {0}


def test_area_filter(engine: Engine) -> None:
    assert LONDON == (51.7247, 51.27529, 0.26002, -0.46002)
    inside = {
        "000000000001": (51.5, -0.1),
        "000000000002": (51.7247, 0.26002),  # on the north-east corner
        "000000000003": (51.27529, -0.46002),  # on the south-west corner
    }
    outside = {
        "000000000004": (51.72471, -0.1),
        "000000000005": (51.27528, -0.1),
        "000000000006": (51.5, 0.26003),
        "000000000007": (51.5, -0.46003),
        "000000000008": (None, None),
        "000000000009": (51.5, None),
    }
    for mac, (lat, lon) in {**inside, **outside}.items():
        add_mac(engine, "wifi", mac, lat=lat, lon=lon)
    add_cell(engine, Radio.lte, 234, 30, 1, 1, lat=51.6, lon=0.0)
    add_cell(engine, Radio.lte, 234, 30, 1, 2, lat=48.8, lon=2.3)
    count, text = dump(engine, "wifi", bounds=LONDON)
    assert count == 3
    assert [line.split(",")[0] for line in data_lines(text)] == sorted(inside)
    count, text = dump(engine, "cell", bounds=LONDON)
    assert [line.split(",")[:5] for line in data_lines(text)] == [["LTE", "234", "30", "1", "1"]]
    assert dump(engine, "wifi")[0] == 9


def test_lf_lines_and_progress_totals(engine: Engine) -> None:
    for index in range(6):
        add_mac(engine, "blue", f"0123{index:x}0000000", region="GB", lat=0.5, lon=0.5)
    pages: list[int] = []
    count, text = dump(engine, "blue", page_size=4, progress=pages.append)
    assert "\r" not in text
    lines = text.split("\n")
    assert lines[0] == MAC_HEADER
    assert lines[-1] == ""
    assert len(lines) == 1 + 6 + 1
    assert count == sum(pages) == 6
    assert pages == [1] * 6  # one row in each of six shards
    assert all(line.endswith(",0,GB,0,,0,,,,,,0") for line in lines[1:-1])
