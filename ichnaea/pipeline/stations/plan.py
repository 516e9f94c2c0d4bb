"""The station updater's decisions: a batch of observations → station row changes.

A pure function of one batch of observations of one station type, the
current rows of the stations they name, the time and a geocoder; no
database, no Redis. :mod:`ichnaea.pipeline.stations.updater` reads the rows, writes
the plan and applies its counters. Spec: pipeline.md sections 8 and 9.

Algorithm
---------
1. **Weigh** every observation (spec 8) in one ``observation_weights``
   kernel call; observations with weight 0 (too inaccurate, too old, too
   fast), a non-finite weight or no position are dropped and not counted.
2. **Group** the rest by station key (MAC or binary cell id), in queue
   order. Every observation of a group counts toward ``obs_count``, even
   when its station is **blocked** (9.2).
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
6. **Build rows** (9.6). New rows are inserted; changed, replaced and
   blocked rows are updated with every column; confirmed stations only get
   ``last_seen``. Changes merge the old and new positions for all changed
   stations of the batch at once (a weighted mean in which the old weight
   counts at most 10000, and the union of the boxes) and one
   ``circle_radius_m`` call gives their radii.
7. **Block with a fresh start** (issue 11): a block caused by a consistent
   gnss group that disagrees with the stored position (the station moved)
   nulls the old position as 9.6 says, and stores the group's aggregate in
   its place, with the block columns set. The station stays blocked until
   it rests on ``RELEARN_SAMPLES`` observations
   (:func:`ichnaea.pipeline.stations.state.is_relearned`); a group that is
   itself inconsistent blocks as before, with no position.

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
    GNSS,
    QUERY,
    TRANSITIONS,
    Action,
    StationType,
    is_blocked,
    station_key,
    station_state,
)

Row = Mapping[str, Any]
Float64Array = NDArray[np.float64]

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


class RegionLookup(Protocol):
    """The part of :class:`ichnaea.geocode.Geocoder` the planner uses."""

    def in_regions(
        self, lat_deg: ArrayLike, lon_deg: ArrayLike, codes: Sequence[str | None]
    ) -> NDArray[np.bool_]: ...

    def regions(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> list[str | None]: ...


@dataclass
class StationPlan:
    """The row changes and counters of one batch.

    ``inserts`` are complete rows (key and every station column) of new and
    new_block stations; ``updates`` complete rows of changed, replaced and
    blocked stations; ``confirms`` the keys whose ``last_seen`` becomes
    today (nothing else changes). ``actions`` names the action of every
    station in those lists. ``obs_count`` counts the usable observations
    (blocked stations' included), ``new`` new and new_block stations,
    ``block`` block and new_block, ``confirm`` change, replace and confirm.
    ``area_ids`` are the cell areas to refresh.
    """

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    confirms: list[bytes] = field(default_factory=list)
    actions: dict[bytes, Action] = field(default_factory=dict)
    obs_count: int = 0
    new: int = 0
    block: int = 0
    confirm: int = 0
    area_ids: set[bytes] = field(default_factory=set)


@dataclass(slots=True)
class _Group:
    """The chosen observations of one station."""

    key: bytes
    row: Row | None
    members: list[int]  # indices into the batch, queue order
    source: int  # GNSS or QUERY


def _column(observations: Sequence[Row], name: str) -> Float64Array:
    # None (and a missing field) becomes NaN.
    return np.array([obs.get(name) for obs in observations], dtype=np.float64)


def _row_column(groups: Sequence[_Group], name: str) -> Float64Array:
    return np.array(
        [None if group.row is None else group.row.get(name) for group in groups],
        dtype=np.float64,
    )


def _choose_groups(
    stype: StationType,
    observations: Sequence[Row],
    usable: NDArray[np.intp],
    existing: Mapping[bytes, Row],
    today: date,
    plan: StationPlan,
    keys: Sequence[bytes],
) -> list[_Group]:
    members: dict[bytes, list[int]] = {}
    queries = set()
    for i in usable.tolist():
        members.setdefault(keys[i], []).append(i)
        if observations[i].get("source") == QUERY:
            queries.add(i)
    groups = []
    for key, indices in members.items():
        plan.obs_count += len(indices)
        row = existing.get(key)
        gnss = [i for i in indices if i not in queries] if queries else indices
        if row is not None and not gnss and is_blocked(row, today):
            # Only GNSS observations may give a blocked station a position
            # again (relearning, issue 11); query ones are counted, ignored.
            continue
        if gnss:
            groups.append(_Group(key, row, gnss, GNSS))
        else:
            groups.append(_Group(key, row, indices, QUERY))
    return groups


def _key_columns(stype: StationType, group: _Group, observations: Sequence[Row]) -> dict[str, Any]:
    if stype is not StationType.cell:
        return {"mac": group.key}
    first = observations[group.members[0]]
    psc = None
    for i in reversed(group.members):
        psc = observations[i].get("psc")
        if psc is not None:
            break
    if psc is None and group.row is not None:
        psc = group.row.get("psc")
    return {
        "cellid": group.key,
        "radio": int(first["radio"]),
        "mcc": int(first["mcc"]),
        "mnc": int(first["mnc"]),
        "lac": int(first["lac"]),
        "cid": int(first["cid"]),
        "psc": psc,
    }


def plan_station_updates(
    stype: StationType,
    observations: Sequence[Row],
    existing: Mapping[bytes, Row],
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
    existing : mapping of station key to row
        The current rows of the batch's stations (:func:`station_key`), as
        column-name mappings; stations without a row are absent.
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
        The rows to insert and update, the keys to confirm and the counters.

    Raises
    ------
    ValueError
        If ``now`` is timezone-aware, or an observation has no valid key.
    """
    if now.tzinfo is not None:
        raise ValueError(f"now must be a naive UTC datetime, got {now!r}")
    plan = StationPlan()
    if not observations:
        return plan
    lat, lon = _column(observations, "lat"), _column(observations, "lon")
    weights = _fast.observation_weights(
        stype.kind,
        _column(observations, "accuracy"),
        _column(observations, "age"),
        _column(observations, "speed"),
        _column(observations, "signal"),
        _column(observations, "radio") if stype is StationType.cell else None,
    )
    usable = np.flatnonzero(
        (weights > 0.0) & np.isfinite(weights) & np.isfinite(lat) & np.isfinite(lon)
    )
    if keys is None:
        keys = [station_key(stype, observation) for observation in observations]
    elif len(keys) != len(observations):
        raise ValueError(f"{len(keys)} keys for {len(observations)} observations")
    groups = _choose_groups(stype, observations, usable, existing, today, plan, keys)
    if not groups:
        return plan

    order = np.array([i for group in groups for i in group.members], dtype=np.intp)
    offsets = np.zeros(len(groups) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(group.members) for group in groups])
    lat, lon, weights = lat[order], lon[order], weights[order]
    agg = _fast.aggregate_groups(lat, lon, weights, offsets, stype.max_dist_m)
    station_lat, station_lon = _row_column(groups, "lat"), _row_column(groups, "lon")
    farthest = _fast.max_distance_to_points(lat, lon, offsets, station_lat, station_lon)
    # The distance of each group's centre from the station's (NaN: none).
    centre = _fast.max_distance_to_points(
        agg["lat_deg"], agg["lon_deg"], np.arange(len(groups) + 1), station_lat, station_lon
    )

    actions: list[Action | None] = []
    for k, group in enumerate(groups):
        state = station_state(group.row, float(farthest[k]), stype, today, float(centre[k]))
        actions.append(TRANSITIONS[state, group.source, bool(agg["consistent"][k])])
    changes = [k for k, action in enumerate(actions) if action is Action.change]
    merged = _merge_changes(groups, changes, agg, station_lat, station_lon)

    agg_values = {name: values.tolist() for name, values in agg.items()}
    # New and replaced stations take the region of their centre: one
    # vectorised lookup for the whole batch.
    fresh = np.array(
        [
            k
            for k, action in enumerate(actions)
            if action in (Action.new, Action.replace)
            or _relearns(action, groups[k], bool(agg["consistent"][k]))
        ],
        dtype=np.intp,
    )
    regions: dict[int, str | None] = {}
    if fresh.size:
        found = geocoder.regions(agg["lat_deg"][fresh], agg["lon_deg"][fresh])
        regions = dict(zip(fresh.tolist(), found, strict=True))
    # A changed station keeps its region while its merged centre stays in
    # it, else takes the region of the centre: in bulk, like the fresh ones.
    regions.update(_changed_regions(groups, changes, merged, geocoder))
    for k, (group, action) in enumerate(zip(groups, actions, strict=True)):
        if action is None:
            continue
        if action is Action.confirm:
            if group.row is not None and group.row.get("last_seen") == today:
                continue  # already confirmed today: no write, no count
            plan.confirms.append(group.key)
        else:
            ident = _key_columns(stype, group, observations)
            values = _row_values(action, group, k, agg_values, merged, now, today, regions)
            values.update(ident)
            (plan.inserts if group.row is None else plan.updates).append(values)
            if stype is StationType.cell:
                plan.area_ids.add(
                    encode_areaid(ident["radio"], ident["mcc"], ident["mnc"], ident["lac"])
                )
        plan.actions[group.key] = action
        if action in (Action.change, Action.replace, Action.confirm):
            plan.confirm += 1
        if action in (Action.new, Action.new_block):
            plan.new += 1
        if action in (Action.block, Action.new_block):
            plan.block += 1
    return plan


def _merge_changes(
    groups: Sequence[_Group],
    changes: Sequence[int],
    agg: Mapping[str, NDArray[Any]],
    station_lat: Float64Array,
    station_lon: Float64Array,
) -> dict[int, tuple[Any, ...]]:
    """The merged position of every changed station, keyed by group index (9.6): the
    values of lat, lon, max_lat, min_lat, max_lon, min_lon, radius and weight.

    Vectorised over the batch's changes: one ``circle_radius_m`` call.
    """
    if not changes:
        return {}
    idx = np.array(changes, dtype=np.intp)
    chosen = [groups[k] for k in changes]
    s_lat, s_lon = station_lat[idx], station_lon[idx]
    s_max_lat, s_min_lat = _row_column(chosen, "max_lat"), _row_column(chosen, "min_lat")
    s_max_lon, s_min_lon = _row_column(chosen, "max_lon"), _row_column(chosen, "min_lon")
    s_weight = np.nan_to_num(_row_column(chosen, "weight"), nan=0.0)
    a_weight = np.minimum(agg["weight"][idx], MAX_WEIGHT)
    # A station without a position contributes nothing to the centre.
    has_position = np.isfinite(s_lat) & np.isfinite(s_lon)
    old_weight = np.where(has_position, np.minimum(s_weight, MAX_OLD_WEIGHT), 0.0)
    total = a_weight + old_weight
    lat = (agg["lat_deg"][idx] * a_weight + np.nan_to_num(s_lat) * old_weight) / total
    lon = (agg["lon_deg"][idx] * a_weight + np.nan_to_num(s_lon) * old_weight) / total
    # The union of the observations' box, the old centre and the old box;
    # fmax/fmin skip the station's nulls (NaN).
    lats = np.stack([agg["max_lat_deg"][idx], agg["min_lat_deg"][idx], s_lat, s_max_lat, s_min_lat])
    lons = np.stack([agg["max_lon_deg"][idx], agg["min_lon_deg"][idx], s_lon, s_max_lon, s_min_lon])
    max_lat, min_lat = np.fmax.reduce(lats), np.fmin.reduce(lats)
    max_lon, min_lon = np.fmax.reduce(lons), np.fmin.reduce(lons)
    radius = geo.circle_radius_m(lat, lon, max_lat, max_lon, min_lat, min_lon)
    weight = np.minimum(s_weight + a_weight, MAX_WEIGHT)
    merged = (lat, lon, max_lat, min_lat, max_lon, min_lon, radius, weight)
    columns = zip(*(values.tolist() for values in merged), strict=True)
    return dict(zip(changes, columns, strict=True))


def _changed_regions(
    groups: Sequence[_Group],
    changes: Sequence[int],
    merged: Mapping[int, tuple[Any, ...]],
    geocoder: RegionLookup,
) -> dict[int, str | None]:
    """The region of every changed station, keyed by group index."""
    if not changes:
        return {}
    lat = np.array([merged[k][0] for k in changes], dtype=np.float64)
    lon = np.array([merged[k][1] for k in changes], dtype=np.float64)
    kept: list[str | None] = [(groups[k].row or {}).get("region") for k in changes]
    stays = geocoder.in_regions(lat, lon, kept)
    moved = np.flatnonzero(~stays)
    found = geocoder.regions(lat[moved], lon[moved]) if moved.size else []
    for i, region in zip(moved.tolist(), found, strict=True):
        kept[i] = region
    return dict(zip(changes, kept, strict=True))


def _relearns(action: Action | None, group: _Group, consistent: bool) -> bool:
    """Whether a block starts learning the station afresh from its group (issue 11):
    a consistent GNSS group that disagrees with the stored position (a move)."""
    return action is Action.block and consistent and group.source == GNSS


def _row_values(
    action: Action,
    group: _Group,
    k: int,
    agg: Mapping[str, list[Any]],
    merged: Mapping[int, tuple[Any, ...]],
    now: datetime,
    today: date,
    regions: Mapping[int, str | None],
) -> dict[str, Any]:
    """Every station column of a new, new_block, change, replace or block row.

    Built as one dict each (a station batch builds hundreds)."""
    row: Row = group.row or {}  # empty only for new and new_block
    if action is Action.change:
        lat, lon, max_lat, min_lat, max_lon, min_lon, radius, weight = merged[k]
        return {
            "lat": lat, "lon": lon, "max_lat": max_lat, "min_lat": min_lat,
            "max_lon": max_lon, "min_lon": min_lon, "radius": radius, "weight": weight,
            "region": regions[k],
            "samples": min((row.get("samples") or 0) + min(agg["count"][k], MAX_SAMPLES),
                           MAX_SAMPLES),
            "source": group.source,
            "created": row.get("created"),
            "modified": now,
            "last_seen": today,
            "block_first": row.get("block_first"),
            "block_last": row.get("block_last"),
            "block_count": row.get("block_count"),
        }  # fmt: skip
    if action is Action.new_block:
        return {
            **dict.fromkeys(STATION_COLUMNS),
            "created": now,
            "modified": now,
            "block_first": today,
            "block_last": today,
            "block_count": 1,
        }
    if action is Action.block:
        blocked = {
            "created": row.get("created"),
            "modified": now,
            "block_first": row.get("block_first") or today,
            "block_last": today,
            "block_count": min((row.get("block_count") or 0) + 1, MAX_BLOCK_COUNT),
        }
        if _relearns(action, group, bool(agg["consistent"][k])):
            # Moved: blocked, and learned afresh where the group puts it.
            return {**_aggregate_alone(group, k, agg, today, regions), **blocked}
        return {**dict.fromkeys(STATION_COLUMNS), "region": row.get("region"), **blocked}
    # new and replace: the aggregate alone
    values = _aggregate_alone(group, k, agg, today, regions)
    values["created"] = row.get("created", now)
    values["modified"] = now
    values["block_first"] = row.get("block_first")
    values["block_last"] = row.get("block_last")
    values["block_count"] = row.get("block_count")
    return values


def _aggregate_alone(
    group: _Group,
    k: int,
    agg: Mapping[str, list[Any]],
    today: date,
    regions: Mapping[int, str | None],
) -> dict[str, Any]:
    """The position columns of a station learned from its group alone (new,
    replace, and a block that starts afresh)."""
    return {
        "lat": agg["lat_deg"][k], "lon": agg["lon_deg"][k],
        "max_lat": agg["max_lat_deg"][k], "min_lat": agg["min_lat_deg"][k],
        "max_lon": agg["max_lon_deg"][k], "min_lon": agg["min_lon_deg"][k],
        "radius": agg["radius_m"][k],
        "region": regions[k],
        "samples": min(agg["count"][k], MAX_SAMPLES),
        "source": group.source,
        "weight": min(agg["weight"][k], MAX_WEIGHT),
        "last_seen": today,
    }  # fmt: skip
