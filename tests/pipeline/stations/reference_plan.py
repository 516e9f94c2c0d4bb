"""The station plan written per station, as the spec reads: the reference of the columnar plan.

:func:`plan_rows` decides one batch the way :mod:`ichnaea.pipeline.stations.plan`
did until issue 10 (item 5) made it columnar: a loop over the batch's
station groups, each with its state, its action from the transition table
and its row built as a dict, then merged over the stored row. The
columnar planner must give the same rows, in the same order and of the
same Python types, and the same counters
(``test_station_plan_columns.py``). Kept for that comparison only; the
worker never runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ichnaea import _fast, geo
from ichnaea.codecs import encode_areaid
from ichnaea.pipeline.stations.plan import (
    MAX_BLOCK_COUNT,
    MAX_OLD_WEIGHT,
    MAX_SAMPLES,
    MAX_WEIGHT,
    STATION_COLUMNS,
    RegionLookup,
    observation_columns,
    weigh,
)
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
) -> StationPlan:
    """:func:`ichnaea.pipeline.stations.plan.plan_station_updates`, one station group at a
    time, with the stored rows as column mappings."""
    if now.tzinfo is not None:
        raise ValueError(f"now must be a naive UTC datetime, got {now!r}")
    plan = StationPlan()
    if not observations:
        return plan
    columns = observation_columns(stype, observations)
    lat, lon = columns["lat"], columns["lon"]
    weights, usable = weigh(stype, columns)
    keys = [station_key(stype, observation) for observation in observations]
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


def plan_rows(
    stype: StationType,
    observations: Sequence[Row],
    existing: Mapping[bytes, Row],
    columns: Sequence[str],
    *,
    now: datetime,
    today: date,
    geocoder: RegionLookup,
) -> tuple[StationPlan, list[tuple[Any, ...]]]:
    """The plan, and the rows it writes in ``columns`` order: inserts, then updates
    and confirms merged over their stored rows."""
    plan = plan_station_updates(
        stype, observations, existing, now=now, today=today, geocoder=geocoder
    )
    key = stype.key_column
    rows: list[dict[str, Any]] = list(plan.inserts)
    for row in plan.updates:
        rows.append({**existing[bytes(row[key])], **row})
    for station in plan.confirms:
        rows.append({**existing[station], "last_seen": today})
    return plan, [tuple(row.get(name) for name in columns) for row in rows]
