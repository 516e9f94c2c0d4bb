"""The coverage map's grid: record which 0.001° cells had observations, and when.

Each accepted report position is reduced to a grid cell (latitude and
longitude in thousandths of a degree, :func:`ichnaea.codecs.datamap_grid`),
encoded as an 8-byte key (:func:`ichnaea.codecs.encode_datamap_grid`) and
queued for one of four quadrant tables (``datamap_ne``, ``_nw``, ``_se``,
``_sw``; :func:`ichnaea.codecs.datamap_shard_id`). The map renderer reads
``modified`` to fade out cells not seen for months.

:func:`update_datamap` stores one batch of grid keys of one shard, in one
read-write transaction (retried on lock conflicts, metric
``datamaps.dberror``):

1. De-duplicate the keys and drop malformed ones (wrong length, or a cell
   that belongs to another quadrant), which are logged.
2. Read the rows that exist (``SELECT ... FOR UPDATE`` on MySQL).
3. Rows already ``modified`` today are left alone: the map only has day
   resolution, and most grid cells are seen many times a day. Other existing
   rows get ``modified = today``.
4. New keys are inserted with ``created = modified = today``, ignoring
   duplicate keys (``INSERT IGNORE`` / ``INSERT OR IGNORE``): another
   worker may insert the same cell between our read and our insert.

:func:`cleanup_datamap` deletes the cells not seen for more than a year
(``modified < today - 365 days``), so the map forgets abandoned places.

Days are passed in (``today``) rather than read from a clock, and are UTC
days.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy.engine import Connection, Engine

from ichnaea.codecs import DATAMAP_SHARD_IDS, datamap_shard_id, decode_datamap_grid
from ichnaea.metrics import Metrics
from ichnaea.pipeline.stations.dbretry import with_lock_retry
from ichnaea.repositories.datamap import (
    delete_modified_before,
    insert_grids,
    read_modified_for_update,
    set_modified,
)

log = logging.getLogger(__name__)

# The batch size of one run (spec section 12).
DATAMAP_BATCH = 500
DBERROR_METRIC = "datamaps.dberror"
# Grid cells not seen for longer than this are deleted.
DATAMAP_RETENTION_DAYS = 365


def _check_shard(shard_id: str) -> None:
    if shard_id not in DATAMAP_SHARD_IDS:
        raise ValueError(
            f"unknown datamap shard {shard_id!r}, expected one of {sorted(DATAMAP_SHARD_IDS)}"
        )


def _valid_grids(shard_id: str, grids: Iterable[bytes]) -> list[bytes]:
    """The keys of ``grids`` that belong to the shard, de-duplicated, in order."""
    valid: dict[bytes, None] = {}
    for raw in grids:
        grid = bytes(raw)
        if grid in valid:
            continue
        try:
            lat, lon = decode_datamap_grid(grid)
        except ValueError as exc:
            log.warning("skipping malformed datamap grid %r: %s", grid, exc)
            continue
        if datamap_shard_id(lat, lon) != shard_id:
            log.warning("skipping datamap grid %r: not in shard %s", grid, shard_id)
            continue
        valid[grid] = None
    return list(valid)


def _store(connection: Connection, shard_id: str, grids: list[bytes], today: date) -> int:
    existing = read_modified_for_update(connection, shard_id, grids)
    stale = [grid for grid, modified in existing.items() if modified != today]
    new = [grid for grid in grids if grid not in existing]
    if stale:
        set_modified(connection, shard_id, stale, today)
    if new:
        insert_grids(connection, shard_id, new, today)
    return len(stale) + len(new)


def update_datamap(
    engine: Engine,
    shard_id: str,
    grids: Iterable[bytes],
    *,
    today: date,
    metrics: Metrics,
) -> int:
    """Record a batch of grid keys of shard ``shard_id`` as seen ``today``.

    Returns the number of rows written: inserted plus re-dated (a key
    inserted concurrently by another worker still counts as inserted).
    Raises ``ValueError`` for an unknown shard id.
    """
    _check_shard(shard_id)
    valid = _valid_grids(shard_id, grids)
    if not valid:
        return 0

    def run() -> int:
        with engine.begin() as connection:
            return _store(connection, shard_id, valid, today)

    return with_lock_retry(run, metrics=metrics, tags={}, metric=DBERROR_METRIC)


def cleanup_datamap(engine: Engine, shard_id: str, *, today: date) -> int:
    """Delete the grid cells of one shard not seen for more than a year; return how many."""
    _check_shard(shard_id)
    cutoff = today - timedelta(days=DATAMAP_RETENTION_DAYS)
    with engine.begin() as connection:
        return delete_modified_before(connection, shard_id, cutoff)
