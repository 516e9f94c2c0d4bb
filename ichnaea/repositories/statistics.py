"""SQL of the statistics tables: the daily counters (``stat``) and the region counts.

Two users, each with their half:

* the website (:mod:`ichnaea.web.site.stats`) reads both tables whole
  through the web role's read-only engine (:func:`read_daily_counts`,
  :func:`read_region_counts`): ``stat`` holds at most two years of one row
  per counter and day, ``region_stat`` one row per region;
* the pipeline (:mod:`ichnaea.pipeline.ops.stats`, which describes the
  algorithms) writes them: it adds the day counters to the running totals
  (:func:`add_to_running_totals`), deletes old rows
  (:func:`delete_stats_before`), and recounts the regions over the cell area
  and station tables (:func:`count_regions`, :func:`replace_region_counts`).

Every function takes a connection and leaves the transaction to its caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, union_all, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Connection

from ichnaea.enums import Radio, StatKey
from ichnaea.models.cell import CellArea
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS, MacStation
from ichnaea.models.stats import RegionStat, Stat
from ichnaea.repositories.session import is_mysql

# cell_area radio -> region_stat column; region_stat has no column for NR.
_RADIO_COLUMNS = {Radio.gsm: "gsm", Radio.wcdma: "wcdma", Radio.lte: "lte"}
_REGION_COLUMNS = ("gsm", "wcdma", "lte", "blue", "wifi")


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


def _add_to_running_total(connection: Connection, stat_key: StatKey, day: date, value: int) -> None:
    """Add ``value`` to the running total of (key, day), creating the row from the last one."""
    key = int(stat_key)
    row = connection.execute(
        select(Stat.value).where(Stat.key == key, Stat.time == day).with_for_update()
    ).one_or_none()
    if row is not None:
        if value:
            connection.execute(
                update(Stat)
                .where(Stat.key == key, Stat.time == day)
                .values(value=func.coalesce(Stat.value, 0) + value)
            )
        return
    previous = connection.execute(
        select(Stat.value)
        .where(Stat.key == key, Stat.time < day)
        .order_by(Stat.time.desc())
        .limit(1)
    ).scalar()
    values = {"key": key, "time": day, "value": (previous or 0) + value}
    # Should the row have appeared since the SELECT, the value is added to it.
    added = func.coalesce(Stat.value, 0) + value
    if is_mysql(connection):
        mysql_insert = mysql.insert(Stat).values(values)
        connection.execute(mysql_insert.on_duplicate_key_update(value=added))
    else:
        sqlite_insert = sqlite.insert(Stat).values(values)
        connection.execute(
            sqlite_insert.on_conflict_do_update(
                index_elements=[Stat.key, Stat.time], set_={"value": added}
            )
        )


def add_to_running_totals(
    connection: Connection, values: Mapping[tuple[StatKey, date], int]
) -> None:
    """Add each value to the ``stat`` running total of its (key, day).

    Every (key, day) of ``values`` gets a row, even for a value of 0; a new
    row starts from the key's latest earlier total.
    """
    # In (key, day) order: a key's new row for today starts from yesterday's
    # total, which must already hold yesterday's value.
    for (stat_key, day), value in sorted(values.items()):
        _add_to_running_total(connection, stat_key, day, value)


def delete_stats_before(connection: Connection, cutoff: date) -> int:
    """Delete the ``stat`` rows of days before ``cutoff``; return how many."""
    return connection.execute(delete(Stat).where(Stat.time < cutoff)).rowcount


def use_read_committed(connection: Connection) -> None:
    """Run the connection's next transactions READ COMMITTED on MySQL/MariaDB.

    Long scans then take no snapshot. SQLite has no such level and is left
    as it is. Call before the transaction begins.
    """
    if is_mysql(connection):
        connection.execution_options(isolation_level="READ COMMITTED")


def _count_stations(
    connection: Connection, shards: Mapping[str, type[MacStation]]
) -> dict[str, int]:
    """Stations with a region per region, over all shards (one statement)."""
    per_shard = [
        select(table.region.label("region"), func.count().label("n"))
        .where(table.region.is_not(None))
        .group_by(table.region)
        for table in shards.values()
    ]
    totals: dict[str, int] = {}
    for region, count in connection.execute(union_all(*per_shard)):
        if region is not None:  # excluded by the query; narrows the type
            totals[region] = totals.get(region, 0) + int(count)
    return totals


def count_regions(connection: Connection) -> list[RegionCount]:
    """Per region, ``SUM(num_cells)`` of its GSM/WCDMA/LTE cell areas and its
    Bluetooth and Wi-Fi stations (blocked ones too), by region code.

    Only regions with a cell area or a station are returned; NR areas are not
    counted (``region_stat`` has no column for them).
    """
    counts: dict[str, dict[str, int]] = {}

    def add(region: str | None, column: str, value: int) -> None:
        if region is None:  # excluded by the queries; narrows the type
            return
        counts.setdefault(region, dict.fromkeys(_REGION_COLUMNS, 0))[column] += value

    cells = (
        select(CellArea.region, CellArea.radio, func.sum(CellArea.num_cells))
        .where(
            CellArea.region.is_not(None),
            CellArea.radio.in_([int(radio) for radio in _RADIO_COLUMNS]),
        )
        .group_by(CellArea.region, CellArea.radio)
    )
    for region, radio, total in connection.execute(cells):
        # SUM is a DECIMAL on MySQL, and NULL if every num_cells is.
        add(region, _RADIO_COLUMNS[Radio(radio)], int(total or 0))
    for column, shards in (("blue", BLUE_SHARDS), ("wifi", WIFI_SHARDS)):
        for region, total in _count_stations(connection, shards).items():
            add(region, column, total)
    return [RegionCount(region, **columns) for region, columns in sorted(counts.items())]


def replace_region_counts(connection: Connection, counts: Sequence[RegionCount]) -> None:
    """Make ``region_stat`` hold exactly ``counts``: rows of other regions are deleted."""
    existing = set(connection.execute(select(RegionStat.region).with_for_update()).scalars())
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for count in counts:
        row = asdict(count)
        if count.region in existing:
            updates.append({"b_region": row.pop("region"), **row})
        else:
            inserts.append(row)
    if updates:
        connection.execute(
            update(RegionStat).where(RegionStat.region == bindparam("b_region")), updates
        )
    if inserts:
        connection.execute(insert(RegionStat), inserts)
    gone = existing - {count.region for count in counts}
    if gone:
        connection.execute(delete(RegionStat).where(RegionStat.region.in_(sorted(gone))))
