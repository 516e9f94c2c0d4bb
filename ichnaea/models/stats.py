"""Statistics tables: daily counters, per-region counts and the datamap grid.

* ``stat``: one running total per (:class:`ichnaea.enums.StatKey`, day).
* ``region_stat``: number of known cells per radio and of Bluetooth and
  Wi-Fi stations, per region.
* ``datamap_ne``, ``datamap_nw``, ``datamap_se``, ``datamap_sw``: the grid
  cells (0.001° squares) that had observations, with the day first and last
  seen; the coverage map is rendered from them. The four quadrant tables
  are generated from one definition and reached through
  :data:`DATAMAP_SHARDS`; :func:`ichnaea.codecs.datamap_shard_id` picks the
  table and :func:`ichnaea.codecs.encode_datamap_grid` builds the key.
"""

from __future__ import annotations

from datetime import date
from typing import cast

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ichnaea.codecs import DATAMAP_GRID_BYTES, DATAMAP_SHARD_IDS
from ichnaea.models.base import (
    Base,
    BigUnsigned,
    IntUnsigned,
    TinyInt,
    fixed_binary,
    table_args,
)


class Stat(Base):
    """A daily running total of one counter."""

    __tablename__ = "stat"
    __table_args__ = table_args()

    # ichnaea.enums.StatKey value.
    key: Mapped[int] = mapped_column(TinyInt, primary_key=True, autoincrement=False)
    time: Mapped[date] = mapped_column(Date, primary_key=True)
    value: Mapped[int | None] = mapped_column(BigUnsigned)


class RegionStat(Base):
    """Station counts of one region."""

    __tablename__ = "region_stat"
    __table_args__ = table_args()

    region: Mapped[str] = mapped_column(String(2), primary_key=True)
    gsm: Mapped[int | None] = mapped_column(IntUnsigned)
    wcdma: Mapped[int | None] = mapped_column(IntUnsigned)
    lte: Mapped[int | None] = mapped_column(IntUnsigned)
    blue: Mapped[int | None] = mapped_column(BigUnsigned)
    wifi: Mapped[int | None] = mapped_column(BigUnsigned)


class DataMap(Base):
    """A datamap grid cell; concrete classes are the values of :data:`DATAMAP_SHARDS`."""

    __abstract__ = True

    grid: Mapped[bytes] = mapped_column(fixed_binary(DATAMAP_GRID_BYTES), primary_key=True)
    created: Mapped[date | None] = mapped_column(Date)
    modified: Mapped[date | None] = mapped_column(Date)


def _make_datamap_table(shard_id: str) -> type[DataMap]:
    table = f"datamap_{shard_id}"
    namespace = {
        "__tablename__": table,
        "__table_args__": table_args(
            Index(f"{table}_created_idx", "created"),
            Index(f"{table}_modified_idx", "modified"),
        ),
        "__module__": __name__,
    }
    return cast(type[DataMap], type(f"DataMap{shard_id.upper()}", (DataMap,), namespace))


DATAMAP_SHARDS: dict[str, type[DataMap]] = {
    shard_id: _make_datamap_table(shard_id) for shard_id in DATAMAP_SHARD_IDS
}
