"""Wi-Fi and Bluetooth station tables, and the columns every station table shares.

A *station* is a radio transmitter whose position the pipeline learns from
observations: a cell (see :mod:`ichnaea.models.cell`), a Wi-Fi access point
or a Bluetooth beacon. :class:`StationMixin` holds the columns they share:
the weighted centre (``lat``, ``lon``), the observation bounding box, the
radius in metres, the region, sample count and accumulated weight, and the
blocking state of stations seen moving.

Wi-Fi and Bluetooth stations are keyed by their 6-byte MAC and spread over
16 tables each (``wifi_shard_0`` … ``wifi_shard_f``, ``blue_shard_0`` …
``blue_shard_f``), chosen by the 5th hex character of the MAC (see
:func:`ichnaea.codecs.mac_shard_id`). The 32 classes are generated from one
definition; reach them through :data:`WIFI_SHARDS` and :data:`BLUE_SHARDS`,
keyed by that hex character.

``created``/``modified`` are naive UTC datetimes; ``last_seen``,
``block_first`` and ``block_last`` are dates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeVar, cast

from sqlalchemy import Date, DateTime, Double, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ichnaea.codecs import MAC_BYTES, MAC_SHARD_IDS
from ichnaea.models.base import (
    Base,
    IntUnsigned,
    TinyInt,
    TinyUnsigned,
    fixed_binary,
    table_args,
)


class StationMixin:
    """Columns common to cell, Wi-Fi and Bluetooth station tables (all nullable)."""

    lat: Mapped[float | None] = mapped_column(Double)
    lon: Mapped[float | None] = mapped_column(Double)
    max_lat: Mapped[float | None] = mapped_column(Double)
    min_lat: Mapped[float | None] = mapped_column(Double)
    max_lon: Mapped[float | None] = mapped_column(Double)
    min_lon: Mapped[float | None] = mapped_column(Double)
    # Metres from the centre to the bounding-box corners.
    radius: Mapped[int | None] = mapped_column(IntUnsigned)
    # ISO 3166 / GENC alpha-2 code.
    region: Mapped[str | None] = mapped_column(String(2))
    samples: Mapped[int | None] = mapped_column(IntUnsigned)
    # ichnaea.enums.ReportSource value.
    source: Mapped[int | None] = mapped_column(TinyInt)
    weight: Mapped[float | None] = mapped_column(Double)
    created: Mapped[datetime | None] = mapped_column(DateTime)
    modified: Mapped[datetime | None] = mapped_column(DateTime)
    last_seen: Mapped[date | None] = mapped_column(Date)
    block_first: Mapped[date | None] = mapped_column(Date)
    block_last: Mapped[date | None] = mapped_column(Date)
    block_count: Mapped[int | None] = mapped_column(TinyUnsigned)


def station_indexes(table: str) -> tuple[Index, ...]:
    """The secondary indexes every station table has."""
    return (
        Index(f"{table}_region_idx", "region"),
        Index(f"{table}_created_idx", "created"),
        Index(f"{table}_modified_idx", "modified"),
        Index(f"{table}_latlon_idx", "lat", "lon"),
    )


class MacStation(StationMixin, Base):
    """A station keyed by its MAC address (abstract: one table per shard)."""

    __abstract__ = True

    mac: Mapped[bytes] = mapped_column(fixed_binary(MAC_BYTES), primary_key=True)


class WifiShard(MacStation):
    """A Wi-Fi access point; concrete classes are the values of :data:`WIFI_SHARDS`."""

    __abstract__ = True


class BlueShard(MacStation):
    """A Bluetooth beacon; concrete classes are the values of :data:`BLUE_SHARDS`."""

    __abstract__ = True


_S = TypeVar("_S", bound=MacStation)


def _make_shards(base: type[_S], table_prefix: str) -> dict[str, type[_S]]:
    shards: dict[str, type[_S]] = {}
    for shard_id in MAC_SHARD_IDS:
        table = f"{table_prefix}_{shard_id}"
        namespace = {
            "__tablename__": table,
            "__table_args__": table_args(*station_indexes(table)),
            "__module__": __name__,
        }
        name = f"{base.__name__}{shard_id.upper()}"
        shards[shard_id] = cast(type[_S], type(name, (base,), namespace))
    return shards


WIFI_SHARDS: dict[str, type[WifiShard]] = _make_shards(WifiShard, "wifi_shard")
BLUE_SHARDS: dict[str, type[BlueShard]] = _make_shards(BlueShard, "blue_shard")
