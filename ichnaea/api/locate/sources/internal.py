"""The internal source: positions and regions from the crowd-sourced station tables.

Positions (spec locate.md 4.5-4.8), per network type, in the order
Bluetooth → Wi-Fi → cells:

* Bluetooth and Wi-Fi: look the MACs up (one statement per type), score the
  found stations, group them with complete-linkage clustering (100 m / 500 m
  diameter) and turn every group of two or more into one position with the
  compiled weighting kernel. Fewer than two found stations give nothing, so
  one real MAC paired with a made-up one reveals nothing.
* Cells: the found cells, of every radio and area, are grouped by their
  overlapping coverage discs (issue 11; the original made one cluster per
  cell area) and each group is aggregated by weighted mean
  (:func:`ichnaea.positioning.group_cells`). Only if no cell was found are
  the cell areas themselves used, as coarse "lacf" positions.

Every position carries the original's accuracy (its bounds applied here)
and the unbounded spread it came from (``Position.spread_m``): the locate
service answers the radius :mod:`ichnaea.api.locate.calibration` makes of
the spread, and keeps the original's for the query reports.

Regions (4.9): stations vote for the region stored with them, weighted by
their score; cells vote for the regions of their MCC (each of n regions
gets 1/n), and an ambiguous MCC is resolved with the area table's region.

The stations come from a :class:`StationLookup`: the station index
(:mod:`ichnaea.index.live`, in memory, so the search runs on the event
loop: :func:`search_positions_in`, :func:`search_regions_in`) or, while
the index is off or not ready, the database (:func:`search_positions`,
:func:`search_regions`, blocking: run in a thread). Both give the same rows.

On the database path, a database error in one network type is logged and
reported, and that type contributes nothing; the others still answer (and GeoIP still can). A
database that cannot be reached (connect or checkout failed, or the
connection broke mid-request) opens the circuit breaker: the remaining
lookups of the request and every lookup of the next seconds are skipped,
so requests degrade at once instead of each waiting for a failing
connection.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, TypeVar

import numpy as np
import sentry_sdk
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ichnaea._fast import cell_search_input, mac_search_input
from ichnaea.api.locate.constants import (
    AREA_MAX_ACCURACY_M,
    AREA_MIN_ACCURACY_M,
    BLUE_MAX_ACCURACY_M,
    BLUE_MIN_ACCURACY_M,
    CELL_MAX_ACCURACY_M,
    CELL_MIN_ACCURACY_M,
    CELL_SIGNAL_RANGE_DBM,
    MAX_BLUE_CLUSTER_M,
    MAX_BLUES_IN_CLUSTER,
    MAX_WIFI_CLUSTER_M,
    MAX_WIFIS_IN_CLUSTER,
    MIN_BLUE_SIGNAL_DBM,
    MIN_WEIGHT_AGE_MS,
    MIN_WIFI_SIGNAL_DBM,
    WIFI_MAX_ACCURACY_M,
    WIFI_MIN_ACCURACY_M,
)
from ichnaea.api.locate.query import BlueLookup, CellLookup, Query, WifiLookup
from ichnaea.api.locate.result import DataSource, Position, Region, UsedNetwork
from ichnaea.api.locate.score import area_scores, station_scores, to_seconds
from ichnaea.breaker import CircuitBreaker
from ichnaea.codecs import NR_CELLID_BYTES
from ichnaea.enums import Radio
from ichnaea.geocode import Geocoder
from ichnaea.index.reader import Doubles
from ichnaea.positioning import (
    AREA_RADIUS_BOUNDS_M,
    CELL_RADIUS_BOUNDS_M,
    CellPosition,
    ClusterPosition,
    aggregate_cluster_position,
    cluster_networks,
    group_cells,
)
from ichnaea.repositories.stations import AreaRows, StationReader, StationRows, is_outage

log = logging.getLogger(__name__)

T = TypeVar("T")


class StationLookup(Protocol):
    """Where the stations come from: the database (:class:`StationReader`) or the
    station index (:class:`ichnaea.index.live.LiveIndex`); both give the same rows."""

    def macs(
        self, kind: str, macs: Sequence[bytes], *, today: date, now_s: float | None = None
    ) -> StationRows: ...

    def cells(
        self,
        cellids: Sequence[tuple[Radio, bytes]],
        *,
        today: date,
        now_s: float | None = None,
    ) -> StationRows: ...

    def areas(self, areaids: Sequence[bytes]) -> AreaRows: ...


class IndexLookup(StationLookup, Protocol):
    """The station index's lookups, with the Wi-Fi/Bluetooth search in one compiled call."""

    def mac_clusters(
        self,
        kind: str,
        macs: bytes,
        signal_dbm: Doubles,
        age_ms: Doubles,
        today_day: float,
        now_s: float,
        max_distance_m: float,
        max_networks: int,
        min_accuracy_m: float,
        max_accuracy_m: float,
    ) -> list[tuple[float, float, float, float, list[tuple[int, bool]]]]: ...

    def cell_groups(
        self,
        cellids: bytes,
        floor_dbm: Doubles,
        signal_dbm: Doubles,
        age_ms: Doubles,
        today_day: float,
        now_s: float,
        min_accuracy_m: float,
        max_accuracy_m: float,
    ) -> list[tuple[float, float, float, float, list[tuple[int, bool]]]]: ...


@dataclass(frozen=True, slots=True)
class MacParams:
    kind: str
    max_distance_m: float
    min_signal_dbm: float
    max_networks: int
    min_accuracy_m: float
    max_accuracy_m: float


BLUE = MacParams(
    "blue",
    MAX_BLUE_CLUSTER_M,
    MIN_BLUE_SIGNAL_DBM,
    MAX_BLUES_IN_CLUSTER,
    BLUE_MIN_ACCURACY_M,
    BLUE_MAX_ACCURACY_M,
)
WIFI = MacParams(
    "wifi",
    MAX_WIFI_CLUSTER_M,
    MIN_WIFI_SIGNAL_DBM,
    MAX_WIFIS_IN_CLUSTER,
    WIFI_MIN_ACCURACY_M,
    WIFI_MAX_ACCURACY_M,
)


def _weight_age(age: int | None) -> float:
    return float(max(abs(age or 0), MIN_WEIGHT_AGE_MS))


def _scores(rows: StationRows, now_s: float) -> np.ndarray:
    if rows.score is not None:
        return rows.score  # computed by the lookup, at the same now_s
    return station_scores(
        now_s,
        created_day=rows.created_day,
        modified_s=rows.modified_s,
        last_seen_day=rows.last_seen_day,
        block_last_day=rows.block_last_day,
        radius_m=rows.radius_m,
        samples=rows.samples,
    )


def _guarded(breaker: CircuitBreaker, what: str, kind: str, search: Callable[[], T]) -> T | None:
    """``search()``, or None when the database failed it (or is known to be down)."""
    if not breaker.closed:
        return None
    try:
        return search()
    except SQLAlchemyError as exc:
        if is_outage(exc):
            breaker.failed()
        log.error("%s lookup failed for %s: %s", what, kind, exc.__class__.__name__)
        sentry_sdk.capture_exception(exc)
        return None


# The kernels compute the spread unbounded; the original's bounds (spec 4.6,
# 4.7) are applied here, so that a result carries both (Position.spread_m).
UNBOUNDED = (0.0, math.inf)


def _bounded(spread_m: float, lower: float, upper: float) -> float:
    return min(max(spread_m, lower), upper)


def _internal_position(
    position: ClusterPosition | CellPosition,
    used: list[UsedNetwork],
    bounds: tuple[float, float],
    fallback: str | None = None,
) -> Position:
    return Position(
        position.lat,
        position.lon,
        _bounded(position.accuracy_m, *bounds),
        position.score,
        DataSource.internal,
        fallback,
        used,
        position.accuracy_m,
    )


def _mac_positions(
    stations: StationLookup,
    lookups: list[BlueLookup] | list[WifiLookup],
    params: MacParams,
    now: datetime,
) -> list[Position]:
    by_mac = {bytes.fromhex(item.mac): item for item in lookups}
    rows = stations.macs(params.kind, list(by_mac), today=now.date(), now_s=to_seconds(now))
    if len(rows) < 2:
        return []
    found = [by_mac[key] for key in rows.keys]
    # A signal of 0 counts as missing (quirk Q9, kept: 0 dBm is not a real reading).
    signal = np.array([item.signal or params.min_signal_dbm for item in found], dtype=np.float64)
    age = np.array([_weight_age(item.age) for item in found], dtype=np.float64)
    score = _scores(rows, to_seconds(now))
    seen_today = rows.last_seen_day >= now.date().toordinal()
    results = []
    for index in cluster_networks(rows.lat, rows.lon, max_distance_m=params.max_distance_m):
        position = aggregate_cluster_position(
            rows.lat[index],
            rows.lon[index],
            age[index],
            signal[index],
            score[index],
            rows.radius_m[index],
            max_networks=params.max_networks,
            min_accuracy_m=UNBOUNDED[0],
            max_accuracy_m=UNBOUNDED[1],
        )
        used = [
            (params.kind, rows.keys[i], bool(seen_today[i]))
            for i in index[position.sample_mask.astype(bool)]
        ]
        bounds = (params.min_accuracy_m, params.max_accuracy_m)
        results.append(_internal_position(position, used, bounds))
    return results


def _mac_positions_in(
    index: IndexLookup,
    lookups: list[BlueLookup] | list[WifiLookup],
    params: MacParams,
    clock: tuple[float, float],
) -> list[Position]:
    """:func:`_mac_positions` from the station index: gather, score, cluster and
    aggregate in one compiled call (``ichnaea._fast.locate_macs``), at ``clock``
    (today's ordinal, now in seconds). The same positions: tests/index/test_live.py
    holds the two paths equal."""
    prepared = mac_search_input(lookups, params.min_signal_dbm, MIN_WEIGHT_AGE_MS)
    keys, joined, signal, age = prepared or _mac_search_input(lookups, params)
    clusters = index.mac_clusters(
        params.kind,
        joined,
        signal,
        age,
        *clock,
        params.max_distance_m,
        params.max_networks,
        *UNBOUNDED,
    )
    return _found_positions(
        params.kind, keys, clusters, (params.min_accuracy_m, params.max_accuracy_m)
    )


def _mac_search_input(
    lookups: list[BlueLookup] | list[WifiLookup], params: MacParams
) -> tuple[list[bytes], bytes, np.ndarray, np.ndarray]:
    """What ``_fast.mac_search_input`` computes in one pass (the specification): the
    lookups' keys in key order (the last lookup of a MAC wins), joined, with each
    one's signal and weight age."""
    by_mac = {bytes.fromhex(item.mac): item for item in lookups}
    keys = sorted(by_mac)
    found = [by_mac[key] for key in keys]
    # A signal of 0 counts as missing (quirk Q9, kept: 0 dBm is not a real reading).
    signal = np.array([item.signal or params.min_signal_dbm for item in found], dtype=np.float64)
    age = np.array([_weight_age(item.age) for item in found], dtype=np.float64)
    return keys, b"".join(keys), signal, age


def _found_positions(
    kind: str,
    keys: list[bytes],
    found: list[tuple[float, float, float, float, list[tuple[int, bool]]]],
    bounds: tuple[float, float],
) -> list[Position]:
    """The positions the index kernels found (spread unbounded), naming the stations used."""
    return [
        Position(
            lat,
            lon,
            _bounded(spread, *bounds),
            score,
            DataSource.internal,
            None,
            [(kind, keys[i], seen_today) for i, seen_today in used],
            spread,
        )
        for lat, lon, spread, score, used in found
    ]


def _cell_key_order(key: bytes) -> bytes:
    # The station index's key order (zero-padded to the NR width): both
    # paths group the cells in one order, so that ties and sums agree.
    return key.ljust(NR_CELLID_BYTES, b"\0")


def _floor_dbm(cell: CellLookup) -> float:
    return float(CELL_SIGNAL_RANGE_DBM[cell.radio][0])


# _floor_dbm per radio code, for the compiled cell_search_input (None: no floor).
_FLOOR_BY_RADIO = tuple(
    float(CELL_SIGNAL_RANGE_DBM[radio][0]) if radio in CELL_SIGNAL_RANGE_DBM else None
    for radio in Radio
)


def _cell_search_input(
    cells: list[CellLookup],
) -> tuple[list[bytes], bytes, np.ndarray, np.ndarray, np.ndarray]:
    """What ``_fast.cell_search_input`` computes in one pass (the specification): the
    cells' ids in the index's key order (the last lookup of an id wins), joined
    zero-padded to the index's key width, with each one's floor, signal and weight age."""
    by_id = {cell.cellid: cell for cell in cells}
    keys = sorted(by_id, key=_cell_key_order)
    found = [by_id[key] for key in keys]
    return (
        keys,
        b"".join(_cell_key_order(key) for key in keys),
        np.array([_floor_dbm(c) for c in found], dtype=np.float64),
        np.array([c.signal or _floor_dbm(c) for c in found], dtype=np.float64),
        np.array([_weight_age(c.age) for c in found], dtype=np.float64),
    )


def _grouped_positions(
    kind: str,
    keys: list[bytes],
    heard: dict[bytes, CellLookup],
    where: tuple[np.ndarray, np.ndarray, np.ndarray],
    score: np.ndarray,
    seen_today: np.ndarray,
    radius_bounds: tuple[float, float],
    accuracy_bounds: tuple[float, float],
    fallback: str | None = None,
) -> list[Position]:
    """The found cells (or areas) ``keys``, in key order, with their (lat, lon,
    radius) ``where``, grouped by :func:`ichnaea.positioning.group_cells`."""
    found = [heard[key] for key in keys]
    # A missing signal is the radio's floor, the weakest it reports.
    floor = np.array([_floor_dbm(c) for c in found], dtype=np.float64)
    signal = np.array([c.signal or _floor_dbm(c) for c in found], dtype=np.float64)
    age = np.array([_weight_age(c.age) for c in found], dtype=np.float64)
    results = []
    for group in group_cells(
        *where,
        age,
        signal,
        floor,
        score,
        radius_bounds_m=radius_bounds,
        min_accuracy_m=UNBOUNDED[0],
        max_accuracy_m=UNBOUNDED[1],
    ):
        used = [(kind, keys[i], bool(seen_today[i])) for i in group.members]
        results.append(_internal_position(group, used, accuracy_bounds, fallback))
    return results


def _cell_positions(stations: StationLookup, query: Query, now: datetime) -> list[Position]:
    by_id = {cell.cellid: cell for cell in query.cell}
    cellids = [(c.radio, key) for key, c in by_id.items()]
    rows = stations.cells(cellids, today=now.date(), now_s=to_seconds(now))
    if len(rows) == 0:
        return _area_positions(stations, query, now)
    order = np.array(sorted(range(len(rows)), key=lambda i: _cell_key_order(rows.keys[i])))
    return _grouped_positions(
        "cell",
        [rows.keys[i] for i in order],
        by_id,
        (rows.lat[order], rows.lon[order], rows.radius_m[order]),
        _scores(rows, to_seconds(now))[order],
        rows.last_seen_day[order] >= now.date().toordinal(),
        CELL_RADIUS_BOUNDS_M,
        (CELL_MIN_ACCURACY_M, CELL_MAX_ACCURACY_M),
    )


def _cell_positions_in(
    index: IndexLookup, query: Query, now: datetime, clock: tuple[float, float]
) -> list[Position]:
    """:func:`_cell_positions` from the station index, in one compiled call
    (``ichnaea._fast.locate_cells``); tests/index/test_live.py holds the two equal."""
    prepared = cell_search_input(query.cell, NR_CELLID_BYTES, _FLOOR_BY_RADIO, MIN_WEIGHT_AGE_MS)
    keys, joined, floor, signal, age = prepared or _cell_search_input(query.cell)
    groups = index.cell_groups(joined, floor, signal, age, *clock, *UNBOUNDED)
    if not groups:
        return _area_positions(index, query, now)
    return _found_positions("cell", keys, groups, (CELL_MIN_ACCURACY_M, CELL_MAX_ACCURACY_M))


def _area_scores(areas: AreaRows, now: datetime) -> np.ndarray:
    return area_scores(
        to_seconds(now),
        created_day=areas.created_day,
        modified_s=areas.modified_s,
        last_seen_day=areas.last_seen_day,
        radius_m=areas.radius_m,
        num_cells=areas.num_cells,
    )


def _area_positions(stations: StationLookup, query: Query, now: datetime) -> list[Position]:
    """The "lacf" positions: the heard cell areas grouped and weighted as cells are
    (:func:`ichnaea.positioning.group_cells`, with the areas' radius bounds).

    A decision of issue 11: the original answered each area at its own
    centre and the best one won; on the accuracy harness's held-out worlds
    the weighted groups took the area median error from 868 m to 643 m
    (benchmarks/RESULTS.md).
    """
    if not query.cell_area:
        return []
    by_id = {area.areaid: area for area in query.cell_area}
    areas = stations.areas(list(by_id))
    if len(areas) == 0:
        return []
    # Key order, whichever path read them: ties and sums agree.
    order = np.array(sorted(range(len(areas)), key=lambda i: areas.keys[i]))
    return _grouped_positions(
        "area",
        [areas.keys[i] for i in order],
        by_id,
        (areas.lat[order], areas.lon[order], areas.radius_m[order]),
        _area_scores(areas, now)[order],
        areas.last_seen_day[order] >= now.date().toordinal(),
        AREA_RADIUS_BOUNDS_M,
        (AREA_MIN_ACCURACY_M, AREA_MAX_ACCURACY_M),
        fallback="lacf",
    )


def _connect(engine: Engine, breaker: CircuitBreaker) -> StationReader | None:
    """A connection, or None while the database is known to be down."""
    if not breaker.closed:
        return None
    try:
        conn = StationReader(engine)
    except SQLAlchemyError as exc:  # StationReader raises the driver's errors as these
        breaker.failed()
        log.error("database unavailable, skipping station lookups: %s", exc.__class__.__name__)
        sentry_sdk.capture_exception(exc)
        return None
    breaker.succeeded()
    return conn


MacSearch = Callable[[list[BlueLookup] | list[WifiLookup], MacParams], list[Position]]


def _position_searches(
    query: Query, macs: MacSearch, cells: Callable[[], list[Position]]
) -> list[tuple[str, Callable[[], list[Position]]]]:
    searches: list[tuple[str, Callable[[], list[Position]]]] = []
    if query.blue:
        searches.append(("blue", lambda: macs(query.blue, BLUE)))
    if query.wifi:
        searches.append(("wifi", lambda: macs(query.wifi, WIFI)))
    if query.cell or query.cell_area:
        searches.append(("cell", cells))
    return searches


def search_positions(
    engine: Engine, breaker: CircuitBreaker, query: Query, now: datetime
) -> list[Position]:
    """All internal position results of a query from the database (blocking: run it in a thread)."""
    results: list[Position] = []
    conn = _connect(engine, breaker)
    if conn is None:
        return results
    with conn:
        searches = _position_searches(
            query,
            lambda lookups, params: _mac_positions(conn, lookups, params, now),
            lambda: _cell_positions(conn, query, now),
        )
        for kind, search in searches:
            results += _guarded(breaker, "station", kind, search) or []
    return results


def search_positions_in(index: IndexLookup, query: Query, now: datetime) -> list[Position]:
    """All internal position results of a query from the station index (in memory: no
    thread), one compiled call per network type."""
    clock = (float(now.toordinal()), to_seconds(now))
    searches = _position_searches(
        query,
        lambda lookups, params: _mac_positions_in(index, lookups, params, clock),
        lambda: _cell_positions_in(index, query, now, clock),
    )
    return [found for _, search in searches for found in search()]


def _mac_region_scores(
    stations: StationLookup,
    lookups: list[BlueLookup] | list[WifiLookup],
    kind: str,
    now: datetime,
) -> dict[str, float]:
    macs = list({bytes.fromhex(item.mac) for item in lookups})
    rows = stations.macs(kind, macs, today=now.date(), now_s=to_seconds(now))
    totals: dict[str, float] = {}
    for region, score in zip(rows.region, _scores(rows, to_seconds(now)), strict=True):
        if region:
            totals[region] = totals.get(region, 0.0) + float(score)
    return totals


def _cell_region_scores(
    stations: StationLookup, query: Query, geocoder: Geocoder, now: datetime
) -> dict[str, float]:
    totals: dict[str, float] = {}
    ambiguous: list[CellLookup] = []
    # Quirk Q3, kept: a full cell is in both lists and counts twice; the
    # tested country answers (US over GB for MCCs 310 + 311) depend on it.
    for entry in [*query.cell, *query.cell_area]:
        regions = geocoder.regions_for_mcc(entry.mcc)
        for region in regions:
            totals[region.code] = totals.get(region.code, 0.0) + 1.0 / len(regions)
        if len(regions) > 1 and entry.radio is not Radio.nr:
            ambiguous.append(entry)
    if ambiguous:
        areas = stations.areas(list({entry.areaid for entry in ambiguous}))
        for code, score in zip(areas.region, _area_scores(areas, now), strict=True):
            if code is not None and code in totals:
                totals[code] += float(score)
    return totals


def _region_searches(
    stations: StationLookup, query: Query, geocoder: Geocoder, now: datetime
) -> list[tuple[str, Callable[[], dict[str, float]]]]:
    searches: list[tuple[str, Callable[[], dict[str, float]]]] = []
    if query.blue:
        searches.append(("blue", lambda: _mac_region_scores(stations, query.blue, "blue", now)))
    if query.wifi:
        searches.append(("wifi", lambda: _mac_region_scores(stations, query.wifi, "wifi", now)))
    if query.cell or query.cell_area:
        searches.append(("cell", lambda: _cell_region_scores(stations, query, geocoder, now)))
    return searches


def _regions(geocoder: Geocoder, totals: dict[str, float]) -> list[Region]:
    results = []
    for code, score in totals.items():
        region = geocoder.region_for_code(code)
        if region is not None:
            results.append(
                Region(region.code, region.name, region.radius_m, score, DataSource.internal)
            )
    return results


def search_regions(
    engine: Engine, breaker: CircuitBreaker, query: Query, geocoder: Geocoder, now: datetime
) -> list[Region]:
    """All internal region results of a query from the database (blocking: run it in a thread)."""
    conn = _connect(engine, breaker)
    if conn is None:
        return []
    totals: dict[str, float] = {}
    with conn:
        for kind, search in _region_searches(conn, query, geocoder, now):
            for code, score in (_guarded(breaker, "region", kind, search) or {}).items():
                totals[code] = totals.get(code, 0.0) + score
    return _regions(geocoder, totals)


def search_regions_in(
    index: StationLookup, query: Query, geocoder: Geocoder, now: datetime
) -> list[Region]:
    """All internal region results of a query from the station index (in memory: no thread)."""
    totals: dict[str, float] = {}
    for _, search in _region_searches(index, query, geocoder, now):
        for code, score in search().items():
            totals[code] = totals.get(code, 0.0) + score
    return _regions(geocoder, totals)
