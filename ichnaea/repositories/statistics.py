"""SQL for the public statistics: the daily counters (``stat``) and the region counts.

Read-only, for the website (:mod:`ichnaea.web.site.stats`): the functions
take a connection of the caller's engine (the web role's read-only one) and
return plain rows. ``stat`` holds at most two years of one row per counter
and day (:func:`ichnaea.pipeline.ops.stats.cleanup_stat`), ``region_stat`` one
row per region: both are read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ichnaea.enums import StatKey
from ichnaea.models.stats import RegionStat, Stat


@dataclass(frozen=True, slots=True)
class DailyCount:
    """The running total of one counter at the end of one UTC day."""

    key: StatKey
    day: date
    value: int


@dataclass(frozen=True, slots=True)
class RegionCount:
    """Known cells per radio and Bluetooth and Wi-Fi stations of one region."""

    region: str
    gsm: int
    wcdma: int
    lte: int
    blue: int
    wifi: int


def read_daily_counts(connection: Connection) -> list[DailyCount]:
    """Every ``stat`` row of a known counter, by day then key; NULL values count as 0."""
    known = [int(key) for key in StatKey]
    rows = connection.execute(
        select(Stat.key, Stat.time, Stat.value)
        .where(Stat.key.in_(known))
        .order_by(Stat.time, Stat.key)
    )
    return [DailyCount(StatKey(key), day, int(value or 0)) for key, day, value in rows]


def read_region_counts(connection: Connection) -> list[RegionCount]:
    """Every ``region_stat`` row, by region code; NULL counts are 0."""
    rows = connection.execute(
        select(
            RegionStat.region,
            RegionStat.gsm,
            RegionStat.wcdma,
            RegionStat.lte,
            RegionStat.blue,
            RegionStat.wifi,
        ).order_by(RegionStat.region)
    )
    return [
        RegionCount(
            region, int(gsm or 0), int(wcdma or 0), int(lte or 0), int(blue or 0), int(wifi or 0)
        )
        for region, gsm, wcdma, lte, blue, wifi in rows
    ]
