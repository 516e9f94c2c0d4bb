"""Cell areas: recompute ``cell_area`` rows from the cells of each area.

An area is one location/tracking area of one network, ``(radio, mcc, mnc,
lac)``, keyed by its area id (:func:`ichnaea.codecs.encode_areaid`: 7 bytes,
or 9 for a 5G NR tracking area, whose rows live in ``cell_area_nr``).
The cell updater queues the ids of the areas whose cells changed;
:func:`update_areas` rebuilds those rows from the cells.

One run handles a batch of area ids, de-duplicated, in one read-write
transaction (retried on lock conflicts, metric ``data.station.dberror``
with ``type:cellarea``); the statements are those of
:mod:`ichnaea.repositories.cell_areas`:

1. Read which of the areas exist, ``SELECT ... FOR UPDATE`` on MySQL so
   two workers cannot rebuild the same area at once (SQLite serialises
   writers anyway and has no ``FOR UPDATE``).
2. Fetch the cells of all the areas, only cells with a position (non-null
   lat and lon): the cells of an area are one primary-key range of its
   radio's table, up to 500 ranges per statement.
3. For each area:

   * no cells: delete the area row (if any);
   * otherwise compute the aggregate; existing rows keep ``created``, new
     ones get ``created = modified = now``. All rows of a table are
     written by one upsert, so a concurrent insert of the same area
     overwrites instead of failing.

The aggregate of the cells of one area:

* ``lat``, ``lon``: the unweighted mean of the cell centres.
* bounding box: the largest ``max_lat``/``max_lon`` and smallest
  ``min_lat``/``min_lon`` over the cells, ignoring nulls. The cell centres
  take part too: a centre always lies inside its own box, so this changes
  nothing for complete rows and gives a box when a cell's box is missing.
* ``radius``: :func:`ichnaea.geo.circle_radius_m` from the centre to that
  box, in whole metres (rounded half to even; 0 when all cells are one
  point).
* ``avg_cell_radius``: the mean of the cell radii, rounded half to even;
  cells with a null radius are left out (the original crashed on them, spec
  section 24 item 16), and it is null when no cell has a radius.
* ``num_cells``: the number of positioned cells; ``last_seen``: the latest
  non-null cell ``last_seen``.
* ``region``: if all cells agree (also when all are null), that region.
  Otherwise the most common one; on a tie the candidates are sorted with
  null first and the first is taken, then replaced by
  :meth:`ichnaea.geocode.Geocoder.region_for_cell` of the centre and the
  MCC when that finds a region.

Malformed ids (wrong length, unknown radio, or CDMA, which has no cell
table) are logged and skipped rather than failing the batch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine

from ichnaea import geo
from ichnaea.codecs import AreaId, decode_areaid
from ichnaea.geocode import Geocoder
from ichnaea.metrics import Metrics
from ichnaea.pipeline.stations.dbretry import with_lock_retry
from ichnaea.repositories.cell_areas import (
    CellRow,
    delete_areas,
    fetch_positioned_cells,
    has_cell_table,
    read_areas_for_update,
    write_areas,
)
from ichnaea.values import naive_utc, or_nan

log = logging.getLogger(__name__)

DBERROR_TAGS = {"type": "cellarea"}


@dataclass(frozen=True, slots=True)
class AreaAggregate:
    """The derived columns of one ``cell_area`` row."""

    lat: float
    lon: float
    radius: int
    avg_cell_radius: int | None
    num_cells: int
    last_seen: date | None
    region: str | None


# Its columns, in order: dataclasses.asdict deep-copies every value (it showed in the profile).
_AGGREGATE_FIELDS = tuple(field.name for field in fields(AreaAggregate))


def aggregate_areas(
    groups: Sequence[Sequence[Any]], mccs: Sequence[int], *, geocoder: Geocoder
) -> list[AreaAggregate]:
    """The aggregates of many areas at once (module docstring), one per group of cells.

    ``groups[i]`` are the positioned cells of an area of MCC ``mccs[i]``:
    rows with ``lat, lon, max_lat, min_lat, max_lon, min_lon, radius,
    region, last_seen`` attributes, ``lat`` and ``lon`` non-null, at least
    one row. The numbers are computed over all the cells in one pass of
    NumPy reductions per column; only the region vote loops per area.
    """
    if len(groups) != len(mccs):
        raise ValueError(f"{len(groups)} groups but {len(mccs)} MCCs")
    if not groups:
        return []
    counts = np.array([len(group) for group in groups], dtype=np.intp)
    if not counts.all():
        raise ValueError("an area aggregate needs at least one cell")
    cells = [cell for group in groups for cell in group]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))

    def column(name: str) -> NDArray[np.float64]:
        return np.array([or_nan(getattr(cell, name)) for cell in cells], dtype=np.float64)

    lat, lon = column("lat"), column("lon")
    centre_lat = np.add.reduceat(lat, starts) / counts
    centre_lon = np.add.reduceat(lon, starts) / counts
    # Centres join the boxes (see the module docstring): fmax/fmin skip a
    # missing side, and every cell has a centre.
    max_lat = np.maximum.reduceat(np.fmax(lat, column("max_lat")), starts)
    min_lat = np.minimum.reduceat(np.fmin(lat, column("min_lat")), starts)
    max_lon = np.maximum.reduceat(np.fmax(lon, column("max_lon")), starts)
    min_lon = np.minimum.reduceat(np.fmin(lon, column("min_lon")), starts)
    radius = np.atleast_1d(
        geo.circle_radius_m(centre_lat, centre_lon, max_lat, max_lon, min_lat, min_lon)
    )
    radii = column("radius")
    known = ~np.isnan(radii)
    radius_sum = np.add.reduceat(np.where(known, radii, 0.0), starts)
    radius_count = np.add.reduceat(known.astype(np.int64), starts)
    # Half to even, as Python's round.
    avg_radius = np.rint(radius_sum / np.maximum(radius_count, 1))
    seen = np.array(
        [-1 if cell.last_seen is None else cell.last_seen.toordinal() for cell in cells],
        dtype=np.int64,
    )
    last_seen = np.maximum.reduceat(seen, starts)

    return [
        AreaAggregate(
            lat=float(centre_lat[i]),
            lon=float(centre_lon[i]),
            radius=int(radius[i]),
            avg_cell_radius=int(avg_radius[i]) if radius_count[i] else None,
            num_cells=int(counts[i]),
            last_seen=date.fromordinal(int(last_seen[i])) if last_seen[i] > 0 else None,
            region=_area_region(
                [cell.region for cell in group],
                float(centre_lat[i]),
                float(centre_lon[i]),
                mcc=mcc,
                geocoder=geocoder,
            ),
        )
        for i, (group, mcc) in enumerate(zip(groups, mccs, strict=True))
    ]


def aggregate_area(cells: Sequence[Any], *, mcc: int, geocoder: Geocoder) -> AreaAggregate:
    """The aggregate of the positioned cells of one area (see :func:`aggregate_areas`)."""
    if not cells:
        raise ValueError("an area aggregate needs at least one cell")
    (aggregate,) = aggregate_areas([cells], [mcc], geocoder=geocoder)
    return aggregate


def _area_region(
    regions: Sequence[str | None],
    lat: float,
    lon: float,
    *,
    mcc: int,
    geocoder: Geocoder,
) -> str | None:
    counts = Counter(region or "" for region in regions)
    if len(counts) == 1:
        return next(iter(counts)) or None
    top = max(counts.values())
    leaders = sorted(region for region, count in counts.items() if count == top)
    if len(leaders) == 1:
        return leaders[0] or None
    # A tie: "" (null) sorts first; the centre decides when it can.
    return geocoder.region_for_cell(lat, lon, mcc) or leaders[0] or None


def _parse_ids(area_ids: Iterable[bytes]) -> dict[bytes, AreaId]:
    """Valid area ids, de-duplicated, in first-seen order."""
    parsed: dict[bytes, AreaId] = {}
    for raw in area_ids:
        area_id = bytes(raw)
        if area_id in parsed:
            continue
        try:
            area = decode_areaid(area_id)
        except ValueError as exc:
            log.warning("skipping malformed area id %r: %s", area_id, exc)
            continue
        if not has_cell_table(area.radio):
            log.warning("skipping area id %r: no cell table for radio %s", area_id, area.radio)
            continue
        parsed[area_id] = area
    return parsed


def _update_batch(
    connection: Connection, areas: dict[bytes, AreaId], *, geocoder: Geocoder, now: datetime
) -> None:
    existing = read_areas_for_update(connection, areas)
    cells = fetch_positioned_cells(connection, areas)

    to_delete: list[bytes] = []
    present: list[tuple[bytes, AreaId, list[CellRow]]] = []
    for area_id, area in areas.items():
        area_cells = cells.get((int(area.radio), area.mcc, area.mnc, area.lac))
        if area_cells:
            present.append((area_id, area, area_cells))
        elif area_id in existing:
            to_delete.append(area_id)
    aggregates = aggregate_areas(
        [area_cells for _, _, area_cells in present],
        [area.mcc for _, area, _ in present],
        geocoder=geocoder,
    )
    rows: list[dict[str, Any]] = []
    for (area_id, area, _), aggregate in zip(present, aggregates, strict=True):
        row = existing.get(area_id) or {
            "areaid": area_id,
            "radio": int(area.radio),
            "mcc": area.mcc,
            "mnc": area.mnc,
            "lac": area.lac,
            "created": now,
        }
        row.update({name: getattr(aggregate, name) for name in _AGGREGATE_FIELDS}, modified=now)
        rows.append(row)

    delete_areas(connection, to_delete)
    # New and existing areas in one statement per table; rows locked above.
    write_areas(connection, rows)


def update_areas(
    engine: Engine,
    area_ids: Iterable[bytes],
    *,
    geocoder: Geocoder,
    now: datetime,
    metrics: Metrics,
) -> int:
    """Rebuild the ``cell_area`` rows of ``area_ids`` from their cells.

    ``now`` (naive UTC, or aware and converted) becomes ``modified``, and
    ``created`` of new rows. Returns the number of distinct valid area ids
    handled (inserted, updated or deleted, or absent on both sides).
    """
    areas = _parse_ids(area_ids)
    if not areas:
        return 0
    moment = naive_utc(now)

    def run() -> None:
        with engine.begin() as connection:
            _update_batch(connection, areas, geocoder=geocoder, now=moment)

    with_lock_retry(run, metrics=metrics, tags=DBERROR_TAGS)
    return len(areas)
