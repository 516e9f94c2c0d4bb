"""The station updater's read-for-update and write of shard rows, on MariaDB and SQLite."""

from __future__ import annotations

import math
import random
from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ichnaea.codecs import encode_cellid, encode_mac
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS
from ichnaea.repositories.station_rows import (
    KEYS_PER_STATEMENT,
    read_for_update,
    station_table,
    write_rows,
)


def mac_row(n: int, **values: Any) -> dict[str, Any]:
    """A Bluetooth row of shard ``a`` with every column of the MySQL fast path's types."""
    row: dict[str, Any] = {
        "mac": encode_mac(f"0000000a{n:04x}"),
        "lat": 51.5,
        "lon": -0.1,
        "radius": 38,
        "region": "GB",
        "samples": 5,
        "source": 3,
        "weight": 1.5,
        "created": datetime(2026, 11, 30, 8, 15, 59),
        "modified": datetime(2026, 12, 1, 9, 0, 0),
        "last_seen": date(2026, 12, 1),
    }
    row.update(values)
    return row


def test_station_table_names_the_shard_tables() -> None:
    assert station_table("wifi", "3") is WIFI_SHARDS["3"].__table__
    assert station_table("blue", "f") is BLUE_SHARDS["f"].__table__
    assert station_table("cell", "nr") is CELL_TABLES[Radio.nr].__table__
    with pytest.raises(ValueError, match="unknown station kind"):
        station_table("area", "0")
    with pytest.raises(KeyError):
        station_table("cell", "cdma")


def test_written_rows_are_read_back_whole_with_missing_columns_null(db_session: Session) -> None:
    conn = db_session.connection()
    columns = [column.name for column in station_table("blue", "a").columns]
    rows = [mac_row(n) for n in range(KEYS_PER_STATEMENT + 2)]  # two IN lists
    write_rows(conn, "blue", "a", [*rows, {"mac": encode_mac("0000000affff"), "not_a_column": 1}])

    wanted = [bytes(row["mac"]) for row in rows] + [encode_mac("0000000bffff")]
    got = read_for_update(conn, "blue", "a", wanted)
    assert got.columns == tuple(columns)
    assert len(got.rows) == len(got.index) == len(rows)  # the key without a row is absent
    for row in rows:
        assert got.mapping(row["mac"]) == {name: row.get(name) for name in columns}
    assert got.mapping(encode_mac("0000000bffff")) is None
    bare = read_for_update(conn, "blue", "a", [encode_mac("0000000affff")])
    only_key = bare.mapping(encode_mac("0000000affff"))
    assert only_key is not None
    assert [name for name, value in only_key.items() if value is not None] == ["mac"]


def test_values_are_read_back_exactly_and_with_their_types(db_session: Session) -> None:
    """Every double reads back as the same double and as a float, integral or not,
    tiny or huge; ints as ints, text as text (quotes included), dates as dates."""
    conn = db_session.connection()
    rng = random.Random(5)
    doubles = [
        3.0, -0.5, 1e-300, 2.2250738585072014e-308, 1.7976931348623157e308, 1e15, 1e16,
        123456789012345.0, 0.1 + 0.2, -74.20358433546167, 51.5, 1e22, 4.9e-324,
    ]  # fmt: skip
    doubles += [rng.uniform(-180, 180) for _ in range(300)]
    doubles += [math.ldexp(rng.random(), rng.randint(-1000, 1000)) for _ in range(300)]
    rows = [
        mac_row(
            n,
            lat=lat,
            lon=-lat,
            max_lat=None,
            weight=abs(lat),
            radius=rng.choice([0, 2**31 - 1, None]),
            region=rng.choice(['a"', "\\x", "GB", None]),
            block_last=date(2026, 1, 1 + n % 28),
            block_count=n % 256,
        )
        for n, lat in enumerate(doubles)
    ]
    write_rows(conn, "blue", "a", rows)
    got = read_for_update(conn, "blue", "a", [row["mac"] for row in rows])
    for row in rows:
        back = got.mapping(row["mac"])
        assert back is not None
        for name, value in row.items():
            assert back[name] == value, (name, value, back[name])
            assert type(back[name]) is type(value), (name, value, back[name])


def test_written_rows_overwrite_existing_rows(db_session: Session) -> None:
    conn = db_session.connection()
    write_rows(conn, "blue", "a", [mac_row(1)])
    write_rows(conn, "blue", "a", [mac_row(1, samples=6, region=None)])
    row = read_for_update(conn, "blue", "a", [encode_mac("0000000a0001")]).mapping(
        encode_mac("0000000a0001")
    )
    assert row is not None and (row["samples"], row["region"]) == (6, None)


def test_cell_rows_are_keyed_by_cellid(db_session: Session) -> None:
    conn = db_session.connection()
    cellid = encode_cellid(Radio.nr, 234, 30, 1200, 2**35)
    cell = {"cellid": cellid, "radio": int(Radio.nr), "mcc": 234, "mnc": 30, "lac": 1200,
            "cid": 2**35, "lat": 51.5, "lon": -0.1}  # fmt: skip
    write_rows(conn, "cell", "nr", [cell])
    got = read_for_update(conn, "cell", "nr", [cellid]).mapping(cellid)
    assert got is not None and {name: got[name] for name in cell} == cell
    rows = conn.execute(sa.select(CELL_TABLES[Radio.nr].__table__)).all()
    assert len(rows) == 1


def test_reading_no_keys_reads_nothing(db_session: Session) -> None:
    got = read_for_update(db_session.connection(), "wifi", "0", [])
    assert (got.rows, got.index) == ([], {})
