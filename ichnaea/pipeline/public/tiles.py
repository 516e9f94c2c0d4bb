"""Coverage map tiles from the datamap grid (spec pipeline.md section 12): ``ichnaea map``.

1. **Points.** Every datamap row (grid cell of 0.001°, see
   :mod:`ichnaea.pipeline.public.datamap`) becomes ``min(max(13 - n, 0), 13) // 2``
   points, ``n = round(days since modified / 30)``: 6 points for a cell seen
   this month, fading to none after a year. Point ``i`` of grid (lat, lon)
   is ``((lat + JITTER_LAT[a + i]) / 1000, (lon + JITTER_LON[b + i]) / 1000)``
   with ``a = (lon * (lat * 17) % 1021) % 179`` and ``b = (lat * (lon * 11) %
   1913) % 181`` (non-negative modulo): the same grid always gives the same
   points, spread inside its cell, so tiles change only where data changed.
   The two 200-entry tables are ours (a fixed pseudo-random sequence in
   [-0.5, 0.5)); the original's are not part of the spec.
2. **Tiles.** For each zoom 0..``max_zoom`` the points are projected to Web
   Mercator pixels (256-pixel tiles, latitudes clamped to ±85.0511°). Each
   tile with points gets a density image: a point adds 1 to its pixel, the
   image is spread by a disc whose radius grows with the zoom (1 px up to
   zoom 4, 2 px to zoom 9, then 3), and the density becomes opacity
   ``1 - exp(-d / 2)`` with gamma 0.5 of one colour, ``#0088FF``. Points
   within the disc radius of a tile edge draw into the neighbour too, so
   dots are never cut at tile borders. Zoom 0 also gets a 512-pixel
   ``0/0/0@2x.png``.
3. **PNG.** Written here with zlib (no imaging library): 8-bit palette of
   256 entries of the one colour with alphas 0..255 (``tRNS``), the same
   quantisation the original got from ``pngquant``.
4. **Files** ``<out>/<z>/<x>/<y>.png``; :func:`ichnaea.objectstore.sync_directory`
   then mirrors them to ``tiles/`` in ``ASSET_BUCKET`` (``CacheControl:
   max-age=3600, public``, ``image/png``), deleting tiles that are gone,
   and ``tiles/data.json`` records the run.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import struct
import zlib
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.engine import Engine

from ichnaea.codecs import DATAMAP_LAT_MAX, DATAMAP_LON_MAX, DATAMAP_SHARD_IDS
from ichnaea.repositories.datamap import grid_pages

TILE_PX = 256
# Where the tiles live in ASSET_BUCKET (``tiles/<z>/<x>/<y>.png``), and the
# record of the last run beside them (read by the website's map page).
TILES_PREFIX = "tiles/"
TILES_RECORD = "data.json"
# zlib level 6: level 9 took 15 times as long for 6 % smaller dense tiles.
PNG_ZLIB_LEVEL = 6
COLOR = (0x00, 0x88, 0xFF)
MAX_LAT = 85.0511287798
PAGE_SIZE = 200_000


def _jitter_table(seed: int, size: int = 200) -> NDArray[np.float64]:
    """A fixed table of offsets in [-0.5, 0.5): a 64-bit LCG, so it never changes."""
    values = []
    state = seed
    for _ in range(size):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        values.append((state >> 11) / 2**53 - 0.5)
    return np.array(values)


JITTER_LAT = _jitter_table(17)
JITTER_LON = _jitter_table(11)


def points_per_grid(days: NDArray[np.int64]) -> NDArray[np.int64]:
    """Points of grid cells last seen ``days`` ago (negative days count as today)."""
    months = np.floor(np.maximum(days, 0) / 30 + 0.5).astype(np.int64)  # MySQL ROUND, half up
    return np.clip(13 - months, 0, 13) // 2


def grid_points(
    lat: NDArray[np.int64], lon: NDArray[np.int64], count: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The jittered points (degrees) of grid cells in scaled degrees (module docstring)."""
    a = np.mod(np.mod(lon * (lat * 17), 1021), 179)
    b = np.mod(np.mod(lat * (lon * 11), 1913), 181)
    owner = np.repeat(np.arange(len(lat)), count)
    # i = 0, 1, ... within each grid cell
    starts = np.cumsum(count) - count
    i = np.arange(len(owner)) - np.repeat(starts, count)
    out_lat = (lat[owner] + JITTER_LAT[a[owner] + i]) / 1000.0
    out_lon = (lon[owner] + JITTER_LON[b[owner] + i]) / 1000.0
    return out_lat, out_lon


def read_points(
    engine: Engine,
    today: date,
    *,
    page_size: int = PAGE_SIZE,
    progress: Callable[[int], object] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """(lat, lon) of every point of every datamap shard, and the number of grid cells."""
    lats: list[NDArray[np.float64]] = []
    lons: list[NDArray[np.float64]] = []
    cells = 0
    epoch = np.datetime64(today, "D")
    for shard_id in DATAMAP_SHARD_IDS:
        for rows in grid_pages(engine, shard_id, page_size):
            raw = np.frombuffer(b"".join(row.grid for row in rows), dtype=">u4").reshape(-1, 2)
            lat = raw[:, 0].astype(np.int64) - DATAMAP_LAT_MAX
            lon = raw[:, 1].astype(np.int64) - DATAMAP_LON_MAX
            modified = np.array([row.modified or today for row in rows], dtype="datetime64[D]")
            days = (epoch - modified).astype(np.int64)
            point_lat, point_lon = grid_points(lat, lon, points_per_grid(days))
            lats.append(point_lat)
            lons.append(point_lon)
            cells += len(rows)
            if progress is not None:
                progress(len(rows))
    if not lats:
        return np.empty(0), np.empty(0), 0
    return np.concatenate(lats), np.concatenate(lons), cells


def mercator_px(
    lat: NDArray[np.float64], lon: NDArray[np.float64], world_px: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Integer Web Mercator pixel coordinates in a world ``world_px`` pixels wide."""
    phi = np.radians(np.clip(lat, -MAX_LAT, MAX_LAT))
    x = (lon + 180.0) / 360.0 * world_px
    y = (1.0 - np.log(np.tan(phi) + 1.0 / np.cos(phi)) / math.pi) / 2.0 * world_px
    return (
        np.clip(np.floor(x), 0, world_px - 1).astype(np.int64),
        np.clip(np.floor(y), 0, world_px - 1).astype(np.int64),
    )


def dot_radius(zoom: int) -> int:
    return 1 if zoom <= 4 else 2 if zoom <= 9 else 3


def _disc(radius: int) -> list[tuple[int, int]]:
    return [
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if dx * dx + dy * dy <= radius * radius + radius
    ]


def opacity(density: NDArray[np.float64]) -> NDArray[np.uint8]:
    """Density (points per pixel, spread) to alpha 0..255."""
    alpha: NDArray[np.float64] = np.sqrt(1.0 - np.exp(-density / 2.0))
    return np.rint(alpha * 255).astype(np.uint8)


# Alpha of every integer density; 255 and more are all fully opaque.
_OPACITY = opacity(np.arange(256, dtype=np.float64))


def render_tile(
    px: NDArray[np.int64], py: NDArray[np.int64], *, size: int, radius: int
) -> NDArray[np.uint8]:
    """The alpha image of one tile from pixel coordinates relative to its top-left corner.

    Coordinates may lie up to ``radius`` outside the tile (points of the
    neighbours whose dots reach in).
    """
    side = size + 2 * radius
    flat = (py + radius) * side + (px + radius)
    counts = np.bincount(flat, minlength=side * side).astype(np.int32).reshape(side, side)
    spread = np.zeros((size, size), dtype=np.int32)
    for dy, dx in _disc(radius):
        spread += counts[radius + dy : radius + dy + size, radius + dx : radius + dx + size]
    return _OPACITY[np.minimum(spread, 255)]


def tiles_of_zoom(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    zoom: int,
    *,
    size: int = TILE_PX,
    columns: tuple[int, int] | None = None,
) -> Iterator[tuple[int, int, NDArray[np.uint8]]]:
    """(x, y, alpha image) of every tile of ``zoom`` that a point's dot touches.

    With ``columns = (x0, x1)`` only the tiles with ``x0 <= x < x1``.
    """
    tiles = 1 << zoom
    radius = dot_radius(zoom)
    gx, gy = mercator_px(lat, lon, size * tiles)
    x0, x1 = columns if columns is not None else (0, tiles)
    if columns is not None:  # only the points whose dots reach the stripe
        near = (gx >= x0 * size - radius) & (gx < x1 * size + radius)
        gx, gy = gx[near], gy[near]
    tx, ty = gx // size, gy // size
    # Each point in its own tile, and in the neighbours its dot reaches.
    parts_x, parts_y, parts_px, parts_py = [], [], [], []
    for sx in (-1, 0, 1):
        for sy in (-1, 0, 1):
            nx, ny = tx + sx, ty + sy
            lx, ly = gx - nx * size, gy - ny * size
            keep = (
                (nx >= x0) & (nx < x1) & (ny >= 0) & (ny < tiles)
                & (lx >= -radius) & (lx < size + radius)
                & (ly >= -radius) & (ly < size + radius)
            )  # fmt: skip
            parts_x.append(nx[keep])
            parts_y.append(ny[keep])
            parts_px.append(lx[keep])
            parts_py.append(ly[keep])
    all_x, all_y = np.concatenate(parts_x), np.concatenate(parts_y)
    all_px, all_py = np.concatenate(parts_px), np.concatenate(parts_py)
    key = all_x * tiles + all_y
    order = np.argsort(key, kind="stable")
    key, all_px, all_py = key[order], all_px[order], all_py[order]
    bounds = np.flatnonzero(np.diff(key)) + 1
    for start, stop in zip(
        np.concatenate(([0], bounds)), np.concatenate((bounds, [len(key)])), strict=True
    ):
        if start == stop:
            continue
        tile = int(key[start])
        image = render_tile(all_px[start:stop], all_py[start:stop], size=size, radius=radius)
        yield tile // tiles, tile % tiles, image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(alpha: NDArray[np.uint8], color: tuple[int, int, int] = COLOR) -> bytes:
    """An 8-bit palette PNG of one colour whose alpha is the palette index."""
    height, width = alpha.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    palette = bytes(color) * 256
    transparency = bytes(range(256))
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # filter byte 0: none
    rows[:, 1:] = alpha
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", header),
        _chunk(b"PLTE", palette),
        _chunk(b"tRNS", transparency),
        _chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_ZLIB_LEVEL)),
        _chunk(b"IEND", b""),
    ))  # fmt: skip


def _render_stripe(
    lat: NDArray[np.float64], lon: NDArray[np.float64], out: Path, zoom: int, x0: int, x1: int
) -> int:
    """Write the tiles of one zoom whose column is in ``x0..x1-1``; return how many."""
    written = 0
    for x, y, image in tiles_of_zoom(lat, lon, zoom, columns=(x0, x1)):
        path = out / str(zoom) / str(x) / f"{y}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_png(image))
        written += 1
    return written


# The points and output of a rendering pool process (set once per process).
_pool_args: tuple[NDArray[np.float64], NDArray[np.float64], Path] | None = None


def _pool_init(lat: NDArray[np.float64], lon: NDArray[np.float64], out: Path) -> None:
    global _pool_args
    _pool_args = (lat, lon, out)


def _pool_task(task: tuple[int, int, int]) -> int:
    assert _pool_args is not None, "the pool initializer did not run"
    return _render_stripe(*_pool_args, *task)


def _stripes(max_zoom: int, per_zoom: int) -> list[tuple[int, int, int]]:
    """(zoom, x0, x1) work units: each zoom's columns cut into up to ``per_zoom`` stripes."""
    tasks = []
    for zoom in range(max_zoom + 1):
        tiles = 1 << zoom
        count = min(tiles, per_zoom)
        edges = [tiles * i // count for i in range(count + 1)]
        tasks += [(zoom, a, b) for a, b in itertools.pairwise(edges) if a < b]
    # The deepest zooms first: they hold most of the work.
    return sorted(tasks, key=lambda task: -task[0])


def render_tiles(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    out: Path,
    *,
    max_zoom: int,
    processes: int = 1,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Write every tile of zooms 0..``max_zoom`` (and ``0/0/0@2x.png``); return the count.

    With ``processes > 1`` the columns of each zoom are cut into stripes that
    a pool of processes renders (the files are the same either way). The
    pool comes from the forkserver, so a script calling this needs the usual
    ``if __name__ == "__main__":`` guard.
    ``progress(n)`` gets the tiles of each finished stripe.
    """
    if not 0 <= max_zoom <= 20:
        raise ValueError(f"max_zoom must be within 0..20, got {max_zoom}")
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if len(lat) == 0:
        return 0
    # One stripe per zoom alone (each stripe projects every point again);
    # several per process in a pool, so that the processes stay busy.
    tasks = _stripes(max_zoom, 1 if processes == 1 else 4 * processes)
    written = 0
    if processes == 1:
        for task in tasks:
            done = _render_stripe(lat, lon, out, *task)
            written += done
            if progress is not None:
                progress(done)
    else:
        context = multiprocessing.get_context("forkserver")
        with context.Pool(processes, initializer=_pool_init, initargs=(lat, lon, out)) as pool:
            for done in pool.imap_unordered(_pool_task, tasks):
                written += done
                if progress is not None:
                    progress(done)
    for _, _, image in tiles_of_zoom(lat, lon, 0, size=2 * TILE_PX):
        (out / "0" / "0" / "0@2x.png").write_bytes(encode_png(image))
        written += 1
        if progress is not None:
            progress(1)
    return written
