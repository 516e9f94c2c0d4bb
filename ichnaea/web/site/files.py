"""The public files of ``ASSET_BUCKET`` as the pages show them: map tiles and cell exports.

Where a page links to a file of the store (``tiles/…``, ``export/…``):

* ``ASSET_URL`` set: there (``<ASSET_URL>/tiles/{z}/{x}/{y}.png``), whatever
  the store; the operator serves the bucket (a CDN, the bucket's website);
* else, a local directory (``ASSET_BUCKET=file:///dir``, and the embedded
  default ``$ICHNAEA_DATA_DIR/assets``): the web role serves it under
  ``/assets/`` (:func:`serve_local`), only ``tiles/`` and ``export/``;
* else (a bucket without a public URL): nowhere; the pages say to set
  ``ASSET_URL``.

What the store holds is read through it: ``tiles/data.json``, the record
``ichnaea map`` writes after each run (:func:`read_tile_record`), and the
export listing (:func:`list_exports`, file names and sizes).

A tile the map asks for and the run did not draw (no data there) is, when
served locally, an empty transparent tile rather than a 404: Leaflet asks for
every tile in view, and a page full of failed requests would hide real
errors in the browser console.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

from ichnaea.config import Settings
from ichnaea.objectstore import DirectoryStore, ObjectStore
from ichnaea.pipeline.public.cellexport import EXPORT_NAME, EXPORT_PREFIX
from ichnaea.pipeline.public.tiles import TILES_PREFIX, TILES_RECORD

log = logging.getLogger(__name__)

LOCAL_PREFIX = "/assets/"
TILE_TEMPLATE = TILES_PREFIX + "{z}/{x}/{y}.png"
# As `ichnaea map` uploads them: its run replaces the tiles daily.
CACHE_CONTROL = "public, max-age=3600"
MAX_TILE_ZOOM = 20  # ichnaea map --max-zoom allows 0..20
TILE_PATH = re.compile(r"tiles/(\d{1,2})/(\d{1,7})/(\d{1,7})(@2x)?\.png")
# A 1x1 fully transparent palette PNG (95 bytes), stretched over the tile.
EMPTY_TILE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAMAAAAoyzS7AAAAA1BMVEUAiP95IsAUAAAAAXRSTlMAQObYZgAAAApJREFU"
    "eJxjYAAAAAIAAUivpHEAAAAASUVORK5CYII="
)


def local_directory(settings: Settings, store: ObjectStore | None) -> DirectoryStore | None:
    """The store when the web role serves it itself (a directory, and no ``ASSET_URL``)."""
    if settings.asset_url or not isinstance(store, DirectoryStore):
        return None
    return store


def public_url(
    settings: Settings, store: ObjectStore | None, key: str, root_path: str
) -> str | None:
    """Where a browser gets ``key`` of the store, or None when nothing serves it."""
    if settings.asset_url:
        return f"{settings.asset_url.rstrip('/')}/{key}"
    if local_directory(settings, store) is not None:
        return f"{root_path}{LOCAL_PREFIX}{key}"
    return None


@dataclass(frozen=True, slots=True)
class TileRecord:
    """What ``tiles/data.json`` says about the last ``ichnaea map`` run."""

    max_zoom: int
    updated: str
    tiles: int


def read_tile_record(store: ObjectStore) -> TileRecord | None:
    """The last run's record, or None when there is none (or it cannot be understood)."""
    data = store.read(TILES_PREFIX + TILES_RECORD)
    if data is None:
        return None
    try:
        record = json.loads(data)
        max_zoom = int(record["max_zoom"])
        tiles = int(record.get("tiles", 0))
        updated = str(record.get("updated", ""))
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("%s%s cannot be read: %s", TILES_PREFIX, TILES_RECORD, exc)
        return None
    if not 0 <= max_zoom <= MAX_TILE_ZOOM:
        log.warning("%s%s: max_zoom %d out of range", TILES_PREFIX, TILES_RECORD, max_zoom)
        return None
    return TileRecord(max_zoom, updated, tiles)


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One public cell export: ``kind`` is ``full`` or ``diff``."""

    key: str
    name: str
    kind: str
    moment: datetime
    size: int


def list_exports(store: ObjectStore) -> list[ExportFile]:
    """The store's cell exports, newest first; files of other names are left out."""
    found = []
    for key, size in store.sizes(EXPORT_PREFIX).items():
        name = key[len(EXPORT_PREFIX) :]
        match = EXPORT_NAME.fullmatch(name)
        if match is None:
            continue
        kind, day, hour = match.groups()
        moment = datetime.fromisoformat(f"{day}T{hour}:00:00").replace(tzinfo=UTC)
        found.append(ExportFile(key, name, kind, moment, size))
    found.sort(key=lambda export: (export.moment, export.name), reverse=True)
    return found


def _tile_in_range(match: re.Match[str]) -> bool:
    zoom, x, y = (int(part) for part in match.groups()[:3])
    if match.group(4) and zoom != 0:
        return False  # only the world tile has a 512-px version
    return zoom <= MAX_TILE_ZOOM and x < 2**zoom and y < 2**zoom


def serve_local(directory: DirectoryStore, key: str) -> Response:
    """A file of ``tiles/`` or ``export/`` in the local store (see the module docstring)."""
    if not key.startswith((TILES_PREFIX, EXPORT_PREFIX)) or any(
        part in ("", ".", "..") or part.startswith(".") for part in key.split("/")
    ):
        raise HTTPException(404)
    path = directory.directory / key
    headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    if path.is_file():
        media_type = "application/gzip" if key.endswith(".gz") else None
        return FileResponse(path, media_type=media_type, headers=headers)
    tile = TILE_PATH.fullmatch(key)
    if tile is not None and _tile_in_range(tile):
        return Response(EMPTY_TILE, media_type="image/png", headers=headers)
    raise HTTPException(404)
