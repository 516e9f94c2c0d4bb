"""Wi-Fi and Bluetooth shard tables: generated classes and a real row round trip."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ichnaea.codecs import encode_mac, mac_shard_id
from ichnaea.enums import ReportSource
from ichnaea.models.all import metadata
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS, BlueShard, WifiShard


def test_wifi_and_blue_shards_cover_every_hex_digit() -> None:
    assert list(WIFI_SHARDS) == list("0123456789abcdef")
    assert list(BLUE_SHARDS) == list("0123456789abcdef")
    assert [m.__tablename__ for m in WIFI_SHARDS.values()] == [
        f"wifi_shard_{s}" for s in "0123456789abcdef"
    ]
    assert all(issubclass(m, WifiShard) for m in WIFI_SHARDS.values())
    assert all(issubclass(m, BlueShard) for m in BLUE_SHARDS.values())


def test_shard_tables_have_the_spec_index_names() -> None:
    table = metadata.tables[WIFI_SHARDS["6"].__tablename__]
    indexes = {index.name: [c.name for c in index.columns] for index in table.indexes}
    assert indexes == {
        "wifi_shard_6_region_idx": ["region"],
        "wifi_shard_6_created_idx": ["created"],
        "wifi_shard_6_modified_idx": ["modified"],
        "wifi_shard_6_latlon_idx": ["lat", "lon"],
    }
    assert [c.name for c in table.primary_key] == ["mac"]


@pytest.mark.parametrize("shards", [WIFI_SHARDS, BLUE_SHARDS], ids=["wifi", "blue"])
def test_station_row_round_trips_through_its_shard(
    db_session: Session, shards: dict[str, type[WifiShard | BlueShard]]
) -> None:
    mac = "a82067491500"
    model = shards[mac_shard_id(mac)]
    created = datetime(2026, 11, 30, 7, 0, 1)
    db_session.add(
        model(
            mac=encode_mac(mac),
            lat=51.5,
            lon=-0.125,
            max_lat=51.51,
            min_lat=51.49,
            max_lon=-0.12,
            min_lon=-0.13,
            radius=4_294_967_295,
            region="GB",
            samples=4_294_967_295,
            source=ReportSource.gnss,
            weight=1e9,
            created=created,
            modified=created,
            last_seen=date(2026, 11, 30),
            block_first=date(2026, 1, 1),
            block_last=date(2026, 2, 1),
            block_count=255,
        )
    )
    db_session.flush()
    db_session.expunge_all()

    row = db_session.scalars(select(model).where(model.mac == encode_mac(mac))).one()
    assert model.__tablename__.endswith("_6")
    assert (row.lat, row.lon, row.radius, row.samples) == (
        51.5,
        -0.125,
        4_294_967_295,
        4_294_967_295,
    )
    assert (row.region, row.source, row.weight, row.block_count) == ("GB", 3, 1e9, 255)
    assert (row.created, row.modified, row.last_seen) == (created, created, date(2026, 11, 30))
    assert (row.block_first, row.block_last) == (date(2026, 1, 1), date(2026, 2, 1))


def test_station_columns_other_than_mac_are_nullable(db_session: Session) -> None:
    model = WIFI_SHARDS["0"]
    db_session.add(model(mac=encode_mac("000000000001")))
    db_session.flush()
    db_session.expunge_all()
    row = db_session.scalars(select(model)).one()
    assert (row.lat, row.region, row.created, row.block_count) == (None, None, None, None)
