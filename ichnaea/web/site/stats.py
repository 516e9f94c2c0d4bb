"""The statistics page's data: daily counters as chart series, region counts as table rows.

``stat`` holds one running total per counter and day (see
:mod:`ichnaea.pipeline.ops.stats`): for each station type, the distinct
stations (``unique_cell``, ``unique_wifi``, ``unique_blue``) and the
observations (``cell``, ``wifi``, ``blue``) ever stored. :func:`daily_series`
lays them out as uPlot wants them: one list of days and, per type, one value
per day (None where a counter has no row that day). The region table
(``region_stat``) is sorted here, in Python, as the region names come from
:class:`ichnaea.regions.RegionTable`, not from SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from ichnaea.enums import StatKey
from ichnaea.regions import RegionTable
from ichnaea.repositories.statistics import DailyCount, RegionCount

# (type, label, stations counter, observations counter), in display order.
STATION_TYPES: tuple[tuple[str, str, StatKey, StatKey], ...] = (
    ("cell", "Cells", StatKey.unique_cell, StatKey.cell),
    ("wifi", "Wi-Fi networks", StatKey.unique_wifi, StatKey.wifi),
    ("blue", "Bluetooth beacons", StatKey.unique_blue, StatKey.blue),
)
# Sortable region table columns (query value -> header); "name" sorts by region name.
REGION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Region"),
    ("gsm", "GSM"),
    ("wcdma", "UMTS"),
    ("lte", "LTE"),
    ("blue", "Bluetooth"),
    ("wifi", "Wi-Fi"),
)
DEFAULT_SORT = "name"


@dataclass(frozen=True, slots=True)
class DailySeries:
    days: list[date]
    stations: dict[str, list[int | None]]
    observations: dict[str, list[int | None]]

    def latest(self, kind: str, type_: str) -> int | None:
        """The last known value of one series (None when it has none)."""
        values = (self.stations if kind == "stations" else self.observations)[type_]
        return next((value for value in reversed(values) if value is not None), None)

    def chart_data(self) -> dict[str, Any]:
        """The JSON the page's script draws: days as Unix seconds (UTC midnight)."""
        return {
            "days": [int(datetime.combine(day, time(), UTC).timestamp()) for day in self.days],
            "types": [{"key": key, "label": label} for key, label, _, _ in STATION_TYPES],
            "stations": self.stations,
            "observations": self.observations,
        }


def daily_series(rows: list[DailyCount]) -> DailySeries:
    days = sorted({row.day for row in rows})
    index = {day: position for position, day in enumerate(days)}
    by_key: dict[StatKey, list[int | None]] = {key: [None] * len(days) for key in StatKey}
    for row in rows:
        by_key[row.key][index[row.day]] = row.value
    return DailySeries(
        days,
        {key: by_key[stations] for key, _, stations, _ in STATION_TYPES},
        {key: by_key[observations] for key, _, _, observations in STATION_TYPES},
    )


@dataclass(frozen=True, slots=True)
class RegionRow:
    code: str
    name: str
    gsm: int
    wcdma: int
    lte: int
    blue: int
    wifi: int


def region_rows(counts: list[RegionCount], regions: RegionTable) -> list[RegionRow]:
    rows = []
    for count in counts:
        region = regions.get(count.region)
        name = region.name if region is not None else count.region
        rows.append(
            RegionRow(count.region, name, count.gsm, count.wcdma, count.lte, count.blue, count.wifi)
        )
    return rows


def region_totals(rows: list[RegionRow]) -> dict[str, int]:
    return {column: sum(getattr(row, column) for row in rows) for column, _ in REGION_COLUMNS[1:]}


def parse_sort(query: Mapping[str, str]) -> tuple[str, bool]:
    """``?sort=<column>&order=asc|desc`` → (column, descending); unknown values: defaults.

    Names sort ascending and counts descending unless ``order`` says otherwise.
    """
    column = query.get("sort", DEFAULT_SORT)
    if column not in dict(REGION_COLUMNS):
        column = DEFAULT_SORT
    order = query.get("order")
    descending = order == "desc" if order in ("asc", "desc") else column != "name"
    return column, descending


def sort_regions(rows: list[RegionRow], column: str, *, descending: bool) -> list[RegionRow]:
    """Rows by ``column``; ties (and the name column) by region name, always A to Z."""
    by_name = sorted(rows, key=lambda row: (row.name.casefold(), row.code))
    if column == "name":
        return by_name[::-1] if descending else by_name
    return sorted(by_name, key=lambda row: int(getattr(row, column)), reverse=descending)
