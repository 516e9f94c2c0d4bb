"""The station updater's decisions: a batch of observations → station row changes.

A pure function of one batch of observations of one station type, the
current rows of the stations they name (as the read returns them, tuples
in table order), the time and a geocoder; no database, no Redis.
:mod:`ichnaea.pipeline.stations.updater` reads the rows, writes the plan's
rows and applies its counters. Spec: pipeline.md sections 8 and 9.

Algorithm
---------
1. **Weigh** every observation (spec 8) in one ``observation_weights``
   kernel call; observations with weight 0 (too inaccurate, too old, too
   fast), a non-finite weight or no position are dropped and not counted.
2. **Group** the rest by station key (MAC or binary cell id), in the
   order of each station's first usable observation. Every observation of
   a group counts toward ``obs_count``, even when its station is
   **blocked** (9.2).
3. **Choose** the observations of each group: the non-``query`` ones (gnss,
   fused, fixed and null sources all count as gnss) if there are any, with
   group source gnss (3), else the ``query`` ones with group source query (9).
   A blocked station with no gnss observation is left alone; one with gnss
   observations goes on like any other, so that it is relearned where it
   now is (issue 11; the original left it alone).
4. **Aggregate** all chosen groups of the batch in one ``aggregate_groups``
   call (9.3: bounding box, consistency within the type's maximum distance,
   weighted centre, radius, weight, count) and measure, in one
   ``max_distance_to_points`` call, how far each group reaches from its
   station's stored centre (9.4), and in one more how far its centre is
   from it (the move distance, :mod:`ichnaea.pipeline.stations.state`).
5. **Decide** per station: its state (none, no position, agreeing with a
   gnss or a query position, disagreeing with a recent or a year-old
   position) and the group's (source, consistent) pick the action from
   :data:`TRANSITIONS` (9.5).
6. **Build rows** (9.6), whole and in table order, ready for the upsert.
   New rows are inserted; changed, replaced and blocked rows are updated
   with every column; confirmed stations only get ``last_seen``. Changes
   merge the old and new positions for all changed stations of the batch
   at once (a weighted mean in which the old weight counts at most 10000,
   and the union of the boxes) and one ``circle_radius_m`` call gives
   their radii.
7. **Block with a fresh start** (issue 11): a block caused by a consistent
   gnss group that disagrees with the stored position (the station moved)
   nulls the old position as 9.6 says, and stores the group's aggregate in
   its place, with the block columns set. The station stays blocked until
   it rests on ``RELEARN_SAMPLES`` observations
   (:func:`ichnaea.pipeline.stations.state.is_relearned`); a group that is
   itself inconsistent blocks as before, with no position.

Shape
-----
Every step after the grouping works on columns: one array per value over
the batch's groups (floats, or objects for dates and codes), chosen per
action with masks, and the rows to write come out of one object array at
the end. No Python runs per observation or per station: the loops that
turn the observations, the stored rows, their keys and dates into arrays
are C (:mod:`ichnaea._fast._rows`), the rest NumPy (issue 10, item 5: the
per-group loop was a quarter of the worker's CPU).
``tests/pipeline/stations/test_station_plan_columns.py`` holds the plan
equal, row for row and type for type, to a per-station reference written
as the spec reads (``tests/pipeline/stations/reference_plan.py``) on
random batches of every type.

Decisions the spec leaves open or where we differ
-------------------------------------------------
* Radii are rounded half to even (``rint``), as ``circle_radius_m``; this
  reproduces the radii of spec 9.7 (38, 9, 278, 12, 168).
* Quirk 17 is fixed: ``block_count`` saturates at 255 (its column is a
  TINYINT UNSIGNED) instead of overflowing.
* States, blocking and the transition table: :mod:`ichnaea.pipeline.stations.state`.
* Cell radios without a signal rule (CDMA) get weight 0 and are dropped.
* Area ids are queued for every written cell action except confirm (NR
  areas too: their 9-byte ids name ``cell_area_nr`` rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ichnaea import _fast, geo
from ichnaea.codecs import encode_areaid
from ichnaea.pipeline.stations.state import (
    BLOCK_AGE_STEP_DAYS,
    GNSS,
    OLD_POSITION_DAYS,
    QUERY,
    RECENT_BLOCK_DAYS,
    TRANSITIONS,
    Action,
    StationState,
    StationType,
    station_key,
)
from ichnaea.repositories.station_rows import LockedRows
from ichnaea.repositories.stations import MAX_RELEARN_BLOCKS, RELEARN_SAMPLES

Float64Array = NDArray[np.float64]
Objects = NDArray[np.object_]

# Column caps: samples is INT UNSIGNED; weight is capped by the spec.
MAX_SAMPLES = 4_294_967_295
MAX_WEIGHT = 1e9
# In a change, the old position counts with at most this weight.
MAX_OLD_WEIGHT = 10_000.0
# block_count is TINYINT UNSIGNED (quirk 17: saturate instead of overflow).
MAX_BLOCK_COUNT = 255
# The non-key columns every station table has, in table order.
STATION_COLUMNS = (
    "lat", "lon", "max_lat", "min_lat", "max_lon", "min_lon", "radius", "region", "samples",
    "source", "weight", "created", "modified", "last_seen", "block_first", "block_last",
    "block_count",
)  # fmt: skip
# The position columns, and the aggregate's arrays that fill them.
_POSITION = ("lat", "lon", "max_lat", "min_lat", "max_lon", "min_lon", "radius")
_AGGREGATE = ("lat_deg", "lon_deg", "max_lat_deg", "min_lat_deg", "max_lon_deg", "min_lon_deg",
              "radius_m")  # fmt: skip
_CELL_IDENTITY = ("radio", "mcc", "mnc", "lac", "cid")

# Actions and states as small ints, and TRANSITIONS as an array over
# (state, group from query data, group consistent); -1 is no action.
_ACTIONS: tuple[Action, ...] = tuple(Action)
NEW, NEW_BLOCK, CHANGE, REPLACE, CONFIRM, BLOCK = (
    _ACTIONS.index(action)
    for action in (
        Action.new, Action.new_block, Action.change, Action.replace, Action.confirm, Action.block,
    )
)  # fmt: skip
_STATES: tuple[StationState, ...] = tuple(StationState)
_TABLE = np.full((len(_STATES), 2, 2), -1, dtype=np.intp)
for (_state, _source, _consistent), _action in TRANSITIONS.items():
    _TABLE[_STATES.index(_state), int(_source == QUERY), int(_consistent)] = (
        -1 if _action is None else _ACTIONS.index(_action)
    )


class RegionLookup(Protocol):
    """The part of :class:`ichnaea.geocode.Geocoder` the planner uses."""

    def in_regions(
        self, lat_deg: ArrayLike, lon_deg: ArrayLike, codes: Sequence[str | None]
    ) -> NDArray[np.bool_]: ...

    def regions(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> list[str | None]: ...


@dataclass
class StationPlan:
    """The rows and counters of one batch.

    ``rows`` are whole rows in ``columns`` order, ready for the upsert:
    first the ``inserted`` rows of new and new_block stations, then the
    updates of changed, replaced and blocked ones, and last the
    ``confirmed`` rows of confirmed stations (their stored row with
    ``last_seen`` today). ``obs_count`` counts the usable observations
    (blocked stations' included), ``new`` new and new_block stations,
    ``block`` block and new_block, ``confirm`` change, replace and confirm.
    ``area_ids`` are the cell areas to refresh. The properties below show
    the same as mappings, for readers and tests.
    """

    # The shape of the rows; plans compare by their decisions alone.
    columns: tuple[str, ...] = field(default=(), compare=False)
    key_column: str = field(default="mac", compare=False)
    rows: list[Sequence[Any]] = field(default_factory=list)
    inserted: int = 0
    confirmed: int = 0
    obs_count: int = 0
    new: int = 0
    block: int = 0
    confirm: int = 0
    area_ids: set[bytes] = field(default_factory=set)
    # The station key and action code of every station with an action.
    acted: list[bytes] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)

    def _mappings(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in rows]

    @property
    def inserts(self) -> list[dict[str, Any]]:
        """The rows of new and new_block stations."""
        return self._mappings(self.rows[: self.inserted])

    @property
    def updates(self) -> list[dict[str, Any]]:
        """The rows of changed, replaced and blocked stations."""
        return self._mappings(self.rows[self.inserted : len(self.rows) - self.confirmed])

    @property
    def confirms(self) -> list[bytes]:
        """The keys of the confirmed stations."""
        at = self.columns.index(self.key_column)
        return [bytes(row[at]) for row in self.rows[len(self.rows) - self.confirmed :]]

    @property
    def actions(self) -> dict[bytes, Action]:
        """The action of every station that has one."""
        return {key: _ACTIONS[code] for key, code in zip(self.acted, self.codes, strict=True)}


# The observation fields the planner reads, as floats (NaN: null or missing).
_FIELDS = ("lat", "lon", "accuracy", "age", "speed", "signal", "source")
_CELL_FIELDS = (*_FIELDS, "radio", "psc")


def observation_columns(stype: StationType, observations: Sequence[Any]) -> dict[str, Float64Array]:
    """The fields of the observations the planner reads, one float array each."""
    names = _CELL_FIELDS if stype is StationType.cell else _FIELDS
    try:
        table = _fast.float_fields(list(observations), names)
    except TypeError:
        # Not all plain dicts: NumPy's conversion, which the kernel reproduces.
        table = np.array([[obs.get(name) for obs in observations] for name in names], np.float64)
    return dict(zip(names, table, strict=True))


def weigh(
    stype: StationType, columns: Mapping[str, Float64Array]
) -> tuple[Float64Array, NDArray[np.intp]]:
    """Step 1: the weight of each observation (spec 8), and the indices of the usable
    ones (a finite, positive weight and a position)."""
    lat, lon = columns["lat"], columns["lon"]
    weights = _fast.observation_weights(
        stype.kind,
        columns["accuracy"],
        columns["age"],
        columns["speed"],
        columns["signal"],
        columns["radio"] if stype is StationType.cell else None,
    )
    usable = np.flatnonzero(
        (weights > 0.0) & np.isfinite(weights) & np.isfinite(lat) & np.isfinite(lon)
    )
    return weights, usable


def _keys(
    stype: StationType, observations: Sequence[Any], keys: Sequence[bytes] | None
) -> Sequence[bytes]:
    if keys is None:
        return [station_key(stype, observation) for observation in observations]
    if len(keys) != len(observations):
        raise ValueError(f"{len(keys)} keys for {len(observations)} observations")
    return keys


def _floats(values: Objects) -> Float64Array:
    # None becomes NaN.
    return values.astype(np.float64)


def _days(values: Objects) -> Float64Array:
    """Day numbers of dates (and of datetimes' dates); None becomes NaN."""
    days: Float64Array = _fast.day_numbers(values.tolist())
    return days


def _blocked(
    lat: Float64Array,
    samples: Float64Array,
    block_count: Float64Array,
    created_day: Float64Array,
    block_last_day: Float64Array,
    today_day: int,
) -> NDArray[np.bool_]:
    """:func:`ichnaea.pipeline.stations.state.is_blocked` over columns (NaN: null)."""
    count = np.nan_to_num(block_count)
    relearned = ~np.isnan(lat) & (samples >= RELEARN_SAMPLES) & (count <= MAX_RELEARN_BLOCKS)
    recent = (today_day - block_last_day) < RECENT_BLOCK_DAYS  # NaN compares False
    age_steps = np.round(np.abs(created_day - today_day) / BLOCK_AGE_STEP_DAYS)
    repeated = (count > 0) & ~np.isnan(created_day) & (count >= age_steps)
    result: NDArray[np.bool_] = (recent | repeated) & ~relearned
    return result


def _found_rows(existing: LockedRows, keys: Sequence[bytes]) -> tuple[Objects, NDArray[np.bool_]]:
    """The stored row of each key as a row of an object array (all None where there
    is none), and which keys have one."""
    table = _fast.object_table(existing.rows, len(existing.columns))
    at = _fast.positions(existing.index, keys)
    return table[at], at >= 0


def plan_station_updates(
    stype: StationType,
    observations: Sequence[Any],
    existing: LockedRows,
    *,
    now: datetime,
    today: date,
    geocoder: RegionLookup,
    keys: Sequence[bytes] | None = None,
) -> StationPlan:
    """Decide the row changes for one batch of observations of one station type.

    Parameters
    ----------
    stype : StationType
        The type of every observation of the batch.
    observations : sequence of mappings
        Queue order. Wi-Fi and Bluetooth: ``mac`` (12 hex characters);
        cells: ``radio`` (int), ``mcc``, ``mnc``, ``lac``, ``cid``, optional
        ``psc``. All: ``lat``, ``lon`` (degrees), optional ``accuracy`` (m),
        ``age`` (ms), ``speed`` (m/s), ``signal`` (dBm) and ``source``
        (``ReportSource`` int, null = gnss). Missing fields are null.
    existing : LockedRows
        The current rows of the batch's stations (:func:`station_key`) in
        the table's column order; stations without a row are absent. Its
        columns are the plan's.
    now : datetime
        Naive UTC time of the run, for ``created`` and ``modified``.
    today : date
        The run's date, for ``last_seen`` and the block dates.
    geocoder : RegionLookup
        Region lookups for new positions (:class:`ichnaea.geocode.Geocoder`).
    keys : sequence of bytes, optional
        :func:`station_key` of each observation, when the caller has them
        already (the station stage computes them to validate its batch).

    Returns
    -------
    StationPlan
        The rows to write and the counters.

    Raises
    ------
    ValueError
        If ``now`` is timezone-aware, or an observation has no valid key.
    """
    if now.tzinfo is not None:
        raise ValueError(f"now must be a naive UTC datetime, got {now!r}")
    plan = StationPlan(columns=tuple(existing.columns), key_column=stype.key_column)
    if not observations:
        return plan
    columns = observation_columns(stype, observations)
    weights, usable = weigh(stype, columns)
    keys = _keys(stype, observations, keys)
    # Every usable observation counts, a blocked station's too.
    plan.obs_count = int(usable.size)
    if not usable.size:
        return plan

    # Groups, in the order of their stations' first usable observation.
    group, station_keys = _fast.first_seen(list(keys), usable)
    col = {name: j for j, name in enumerate(plan.columns)}
    rows, found = _found_rows(existing, station_keys)
    today_day = today.toordinal()
    s_lat = _floats(rows[:, col["lat"]])
    blocked = found & _blocked(
        s_lat,
        _floats(rows[:, col["samples"]]),
        _floats(rows[:, col["block_count"]]),
        _days(rows[:, col["created"]]),
        _days(rows[:, col["block_last"]]),
        today_day,
    )
    # The non-query observations of a group if it has any (source gnss),
    # else its query ones (source query). Only GNSS observations may give a
    # blocked station a position again (relearning, issue 11): a blocked
    # station with query observations alone is left alone.
    query = columns["source"][usable] == QUERY
    has_gnss = np.bincount(group[~query], minlength=len(station_keys)) > 0
    keep = ~(blocked & ~has_gnss)
    chosen = keep[group] & (~query | ~has_gnss[group])
    kept = np.flatnonzero(keep)
    if not kept.size:
        return plan
    member_group = (np.cumsum(keep) - 1)[group[chosen]]
    order = usable[chosen][np.argsort(member_group, kind="stable")]
    offsets = np.zeros(kept.size + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(member_group, minlength=kept.size))
    rows, found, s_lat = rows[kept], found[kept], s_lat[kept]
    station_keys = [station_keys[k] for k in kept.tolist()]
    from_query = ~has_gnss[kept]

    lat, lon, weights = columns["lat"][order], columns["lon"][order], weights[order]
    agg = _fast.aggregate_groups(lat, lon, weights, offsets, stype.max_dist_m)
    s_lon = _floats(rows[:, col["lon"]])
    farthest = _fast.max_distance_to_points(lat, lon, offsets, s_lat, s_lon)
    # The distance of each group's centre from the station's (NaN: none).
    centre = _fast.max_distance_to_points(
        agg["lat_deg"], agg["lon_deg"], np.arange(kept.size + 1), s_lat, s_lon
    )
    consistent = np.asarray(agg["consistent"], dtype=np.bool_)
    state = _states(stype, rows, col, found, s_lat, s_lon, farthest, centre, today_day)
    action = _TABLE[state, from_query.astype(np.intp), consistent.astype(np.intp)]
    # Already confirmed today: no write, no count.
    action[(action == CONFIRM) & (_days(rows[:, col["last_seen"]]) == today_day)] = -1
    _count(plan, action, station_keys)
    if not plan.acted:
        return plan

    out = rows.copy()
    _fill_rows(out, col, rows, action, agg, consistent, from_query, now, today, geocoder)
    if stype is StationType.cell:
        _fill_cell_identity(out, col, plan, action, observations, columns["psc"], order, offsets)
    acted = action >= 0
    out[acted, col[stype.key_column]] = _objects(plan.acted)
    inserts = np.flatnonzero(acted & ~found)
    updates = np.flatnonzero(acted & found & (action != CONFIRM))
    confirms = np.flatnonzero(action == CONFIRM)
    plan.inserted, plan.confirmed = int(inserts.size), int(confirms.size)
    plan.rows = out[np.concatenate([inserts, updates, confirms])].tolist()
    return plan


def _states(
    stype: StationType,
    rows: Objects,
    col: dict[str, int],
    found: NDArray[np.bool_],
    s_lat: Float64Array,
    s_lon: Float64Array,
    farthest: Float64Array,
    centre: Float64Array,
    today_day: int,
) -> NDArray[np.intp]:
    """:func:`ichnaea.pipeline.stations.state.station_state` over columns, as indices
    into ``_STATES``."""
    state = np.full(found.size, _STATES.index(StationState.disagree_position), dtype=np.intp)
    old = _days(rows[:, col["modified"]]) < today_day - OLD_POSITION_DAYS
    state[old] = _STATES.index(StationState.disagree_old_position)
    agree = (farthest <= stype.max_dist_m) & ~(centre > stype.move_dist_m)
    by_query = _floats(rows[:, col["source"]]) == QUERY
    state[agree & by_query] = _STATES.index(StationState.agree_query_position)
    state[agree & ~by_query] = _STATES.index(StationState.agree_gnss_position)
    state[np.isnan(s_lat) | np.isnan(s_lon)] = _STATES.index(StationState.no_position)
    state[~found] = _STATES.index(StationState.none)
    return state


def _count(plan: StationPlan, action: NDArray[np.intp], station_keys: Sequence[bytes]) -> None:
    acted = np.flatnonzero(action >= 0)
    plan.acted = [station_keys[k] for k in acted.tolist()]
    plan.codes = action[acted].tolist()
    tally = np.bincount(action[acted], minlength=len(_ACTIONS))
    plan.confirm = int(tally[CHANGE] + tally[REPLACE] + tally[CONFIRM])
    plan.new = int(tally[NEW] + tally[NEW_BLOCK])
    plan.block = int(tally[BLOCK] + tally[NEW_BLOCK])


def _fill_rows(
    out: Objects,
    col: dict[str, int],
    rows: Objects,
    action: NDArray[np.intp],
    agg: dict[str, NDArray[Any]],
    consistent: NDArray[np.bool_],
    from_query: NDArray[np.bool_],
    now: datetime,
    today: date,
    geocoder: RegionLookup,
) -> None:
    """Write the station columns of every acted group into ``out`` (a copy of its stored
    row, all None for a new station), per action (9.6)."""
    # A consistent GNSS group that disagrees with the stored position (a
    # move) blocks the station and starts it afresh where the group puts it.
    relearn = (action == BLOCK) & consistent & ~from_query
    # Learned from the group alone: new, replace and a block that relearns.
    alone = (action == NEW) | (action == REPLACE) | relearn
    fresh = np.flatnonzero(alone)
    changes = np.flatnonzero(action == CHANGE)
    learned = np.flatnonzero(alone | (action == CHANGE))
    blank = np.flatnonzero((action == NEW_BLOCK) | ((action == BLOCK) & ~relearn))
    blocks = np.flatnonzero(action == BLOCK)
    new_blocks = np.flatnonzero(action == NEW_BLOCK)
    count = np.minimum(agg["count"], MAX_SAMPLES)

    for name, source in zip(_POSITION, _AGGREGATE, strict=True):
        out[fresh, col[name]] = agg[source][fresh]
    out[fresh, col["samples"]] = count[fresh]
    out[fresh, col["weight"]] = np.minimum(agg["weight"][fresh], MAX_WEIGHT)
    if fresh.size:
        out[fresh, col["region"]] = _objects(
            geocoder.regions(agg["lat_deg"][fresh], agg["lon_deg"][fresh])
        )
    if changes.size:
        merged = _merge_changes(rows[changes], col, {name: agg[name][changes] for name in agg})
        for name, values in merged.items():
            out[changes, col[name]] = values
        old_samples = np.nan_to_num(_floats(rows[changes, col["samples"]]))
        out[changes, col["samples"]] = np.minimum(old_samples + count[changes], MAX_SAMPLES).astype(
            np.int64
        )
        out[changes, col["region"]] = _changed_regions(
            rows[changes, col["region"]], merged["lat"], merged["lon"], geocoder
        )
    out[learned, col["source"]] = np.where(from_query[learned], QUERY, GNSS)
    out[learned, col["last_seen"]] = today
    for name in (*_POSITION, "samples", "source", "weight", "last_seen"):
        out[blank, col[name]] = None

    out[(action == NEW) | (action == NEW_BLOCK), col["created"]] = now
    out[(action >= 0) & (action != CONFIRM), col["modified"]] = now
    out[action == CONFIRM, col["last_seen"]] = today
    out[new_blocks, col["block_first"]] = today
    out[new_blocks, col["block_last"]] = today
    out[new_blocks, col["block_count"]] = 1
    if blocks.size:
        first = rows[blocks, col["block_first"]].tolist()
        out[blocks, col["block_first"]] = _objects([day or today for day in first])
        out[blocks, col["block_last"]] = today
        stored = np.nan_to_num(_floats(rows[blocks, col["block_count"]]))
        out[blocks, col["block_count"]] = np.minimum(stored + 1, MAX_BLOCK_COUNT).astype(np.int64)


def _objects(values: Sequence[Any]) -> Objects:
    """A 1-D object array of ``values`` as they are (NumPy would make text an array of
    its own string type)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _merge_changes(
    rows: Objects, col: dict[str, int], agg: dict[str, NDArray[Any]]
) -> dict[str, NDArray[Any]]:
    """The merged position columns of changed stations (9.6): lat, lon, max_lat,
    min_lat, max_lon, min_lon, radius and weight, from their stored rows and
    their groups' aggregates; one ``circle_radius_m`` call."""
    s_lat, s_lon = _floats(rows[:, col["lat"]]), _floats(rows[:, col["lon"]])
    s_max_lat, s_min_lat = _floats(rows[:, col["max_lat"]]), _floats(rows[:, col["min_lat"]])
    s_max_lon, s_min_lon = _floats(rows[:, col["max_lon"]]), _floats(rows[:, col["min_lon"]])
    s_weight = np.nan_to_num(_floats(rows[:, col["weight"]]), nan=0.0)
    a_weight = np.minimum(agg["weight"], MAX_WEIGHT)
    # A station without a position contributes nothing to the centre.
    has_position = np.isfinite(s_lat) & np.isfinite(s_lon)
    old_weight = np.where(has_position, np.minimum(s_weight, MAX_OLD_WEIGHT), 0.0)
    total = a_weight + old_weight
    lat = (agg["lat_deg"] * a_weight + np.nan_to_num(s_lat) * old_weight) / total
    lon = (agg["lon_deg"] * a_weight + np.nan_to_num(s_lon) * old_weight) / total
    # The union of the observations' box, the old centre and the old box;
    # fmax/fmin skip the station's nulls (NaN).
    lats = np.stack([agg["max_lat_deg"], agg["min_lat_deg"], s_lat, s_max_lat, s_min_lat])
    lons = np.stack([agg["max_lon_deg"], agg["min_lon_deg"], s_lon, s_max_lon, s_min_lon])
    max_lat, min_lat = np.fmax.reduce(lats), np.fmin.reduce(lats)
    max_lon, min_lon = np.fmax.reduce(lons), np.fmin.reduce(lons)
    return {
        "lat": lat, "lon": lon, "max_lat": max_lat, "min_lat": min_lat,
        "max_lon": max_lon, "min_lon": min_lon,
        "radius": geo.circle_radius_m(lat, lon, max_lat, max_lon, min_lat, min_lon),
        "weight": np.minimum(s_weight + a_weight, MAX_WEIGHT),
    }  # fmt: skip


def _changed_regions(
    stored: Objects, lat: Float64Array, lon: Float64Array, geocoder: RegionLookup
) -> Objects:
    """The region of each changed station: its stored one while its merged centre stays
    inside it, else the region of the centre; in bulk, like the fresh ones."""
    codes: list[str | None] = stored.tolist()
    moved = np.flatnonzero(~geocoder.in_regions(lat, lon, codes))
    if moved.size:
        for i, region in zip(moved.tolist(), geocoder.regions(lat[moved], lon[moved]), strict=True):
            codes[i] = region
    return _objects(codes)


def _fill_cell_identity(
    out: Objects,
    col: dict[str, int],
    plan: StationPlan,
    action: NDArray[np.intp],
    observations: Sequence[Any],
    psc: Float64Array,
    order: NDArray[np.intp],
    offsets: NDArray[np.int64],
) -> None:
    """The key columns of written cell rows, from each group's first observation; the
    last ``psc`` the group observed, else the stored one; their areas to refresh."""
    written = np.flatnonzero((action >= 0) & (action != CONFIRM))
    if not written.size:
        return
    first = [observations[i] for i in order[offsets[:-1][written]].tolist()]
    identity = {name: [int(obs[name]) for obs in first] for name in _CELL_IDENTITY}
    for name, values in identity.items():
        out[written, col[name]] = _objects(values)
    psc = psc[order]
    position = np.where(np.isnan(psc), -1, np.arange(order.size))
    last = np.maximum.reduceat(position, offsets[:-1])[written]
    seen = last >= 0
    out[written[seen], col["psc"]] = psc[last[seen]].astype(np.int64)
    plan.area_ids = set(
        map(encode_areaid, identity["radio"], identity["mcc"], identity["mnc"], identity["lac"])
    )
