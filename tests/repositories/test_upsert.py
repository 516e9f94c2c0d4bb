"""One-statement upserts of station rows, on MariaDB and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ichnaea.codecs import encode_mac
from ichnaea.models.station import WIFI_SHARDS
from ichnaea.repositories.upsert import upsert_rows

TABLE: sa.Table = WIFI_SHARDS["0"].__table__  # type: ignore[assignment]
COLUMNS = [c.name for c in TABLE.columns]


@pytest.fixture
def engine(db_engine: Engine) -> Iterator[Engine]:
    with db_engine.begin() as conn:
        conn.execute(TABLE.delete())
    yield db_engine
    with db_engine.begin() as conn:
        conn.execute(TABLE.delete())


def row(mac: str, **values: object) -> dict[str, object]:
    base: dict[str, object] = {name: None for name in COLUMNS}
    base.update(mac=encode_mac(mac), **values)
    return base


def read(engine: Engine) -> dict[bytes, dict[str, object]]:
    with engine.connect() as conn:
        return {r["mac"]: dict(r) for r in conn.execute(sa.select(TABLE)).mappings()}


def test_rows_are_inserted_then_overwritten_with_every_type(engine: Engine) -> None:
    created = datetime(2026, 11, 30, 8, 15, 59)
    first = row("000000aabbcc", lat=51.5, lon=-0.1, radius=38, region="GB", samples=5,
                weight=1e-05, source=3, created=created, last_seen=date(2026, 11, 30))  # fmt: skip
    with engine.begin() as conn:
        upsert_rows(conn, TABLE, COLUMNS, [first, row("000000aabbcd", lat=float("nan"))])
    got = read(engine)
    assert got[encode_mac("000000aabbcc")] == first
    assert got[encode_mac("000000aabbcd")]["lat"] is None  # NaN is stored as NULL
    changed = dict(first, lat=51.50001, samples=6, region=None, block_count=255)
    with engine.begin() as conn:
        upsert_rows(conn, TABLE, COLUMNS, [changed])
    assert read(engine)[encode_mac("000000aabbcc")] == changed


def test_text_that_needs_escaping_takes_the_driver_path(engine: Engine) -> None:
    odd = row("000000aabbce", region="G'")
    with engine.begin() as conn:
        upsert_rows(conn, TABLE, COLUMNS, [odd])
    assert read(engine)[encode_mac("000000aabbce")]["region"] == "G'"


def test_nothing_to_write_is_a_no_op(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert_rows(conn, TABLE, COLUMNS, [])
    assert read(engine) == {}


def test_literals_of_every_station_value_type() -> None:
    import numpy as np

    from ichnaea.repositories.upsert import _mysql_literal

    values = [None, b"\x01\xff", 5, True, 2.5, float("nan"), float("inf"), np.float64(1.25),
              np.int64(3), datetime(2026, 1, 2, 3, 4, 5, 999), date(2026, 1, 2), "GB"]  # fmt: skip
    assert [_mysql_literal(v) for v in values] == [
        "NULL", "X'01ff'", "5", "1", "2.5", "NULL", "NULL", "1.25", "3",
        "'2026-01-02 03:04:05'", "'2026-01-02'", "'GB'",
    ]  # fmt: skip
    with pytest.raises(TypeError):
        _mysql_literal("it's")
    with pytest.raises(TypeError):
        _mysql_literal(object())
