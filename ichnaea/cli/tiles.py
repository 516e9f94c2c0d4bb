"""``ichnaea map``: read the datamap, render the tiles, mirror them to ASSET_BUCKET."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ichnaea.cli.common import Progress
from ichnaea.config import Settings
from ichnaea.objectstore import asset_store, sync_directory
from ichnaea.pipeline.public.tiles import TILES_PREFIX, TILES_RECORD, read_points, render_tiles
from ichnaea.repositories.session import create_engine

CACHE_CONTROL = "max-age=3600, public"


def publish_map(
    settings: Settings, *, max_zoom: int, output: Path | None, upload: bool, processes: int = 1
) -> str:
    """Render (and with ``upload`` publish) the tiles; return a one-line summary."""
    started = datetime.now(UTC)
    engine = create_engine(settings.db_readonly_url)
    reading = Progress("datamap", unit="grid cells")
    try:
        lat, lon, cells = read_points(engine, started.date(), progress=reading.advance)
    finally:
        engine.dispose()
    reading.finish()
    with tempfile.TemporaryDirectory(prefix="ichnaea-tiles-") as tmp:
        out = output or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        rendering = Progress("render", unit="tiles")
        tiles = render_tiles(
            lat, lon, out, max_zoom=max_zoom, processes=processes, progress=rendering.advance
        )
        line = f"{cells:,} grid cells, {len(lat):,} points, {tiles:,} tiles (zoom 0-{max_zoom})"
        line = f"{rendering.finish()}: {line}"
        if not upload:
            return f"{line} in {out}"
        store = asset_store(settings.asset_bucket, endpoint_url=settings.s3_endpoint_url)
        assert store is not None  # checked by the caller
        syncing = Progress("upload", unit="tiles")
        summary = sync_directory(
            store,
            out,
            TILES_PREFIX,
            content_type="image/png",
            cache_control=CACHE_CONTROL,
            keep=[TILES_RECORD],
            progress=syncing.advance,
        )
        syncing.finish()
        record = {
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "started": started.isoformat(timespec="seconds"),
            "grid_cells": cells,
            "points": len(lat),
            "tiles": tiles,
            "max_zoom": max_zoom,
            "new": summary.new,
            "changed": summary.changed,
            "unchanged": summary.unchanged,
            "deleted": summary.deleted,
        }
        store.put_bytes(
            TILES_PREFIX + TILES_RECORD,
            json.dumps(record).encode(),
            content_type="application/json",
            cache_control=CACHE_CONTROL,
        )
    return (
        f"{line}; {summary.new} new, {summary.changed} changed, {summary.unchanged} unchanged, "
        f"{summary.deleted} deleted in {settings.asset_bucket}"
    )
