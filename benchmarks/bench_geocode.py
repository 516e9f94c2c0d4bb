"""Benchmarks of the geocoder: load time and point-to-region lookups.

Run from the project root (the file is not named test_*.py, so the normal
``pytest`` run never collects it)::

    python -m pytest benchmarks/bench_geocode.py -p no:cacheprovider --benchmark-only

The inputs are fixed-seed random points. "Land-ish" points are drawn
uniformly over latitudes -60..80 and all longitudes and kept only if they lie
in some region's buffered shape (on land or within ~50 km of it), which is
what the pipeline sees; about one in eight of them lies near a border and
takes the tie rule. "Uniform" points keep the ocean too (about two thirds
miss every region and stop after the index query).

* ``load``: ``Geocoder.load`` (parse both GeoJSON files, build the index).
* ``region_loop``: ``region()`` called once per point over 1,000 land-ish
  points; divide by 1,000 for the cost of one call.
* ``regions``: one ``regions()`` call over 10,000 points.

Each lookup benchmark checks that ``regions()`` equals ``region()`` per point
on its input. Results are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ichnaea.geocode import Geocoder
from ichnaea.regions import RegionTable

SEED = 20250131


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.load(RegionTable.load())


def uniform_points(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return rng.uniform(-60.0, 80.0, n), rng.uniform(-180.0, 180.0, n)


def landish_points(geocoder: Geocoder, n: int) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = uniform_points(8 * n)
    found = np.array([code is not None for code in geocoder.regions(lat, lon)])
    assert found.sum() >= n
    return lat[found][:n], lon[found][:n]


def test_load(benchmark: Any) -> None:
    benchmark.group = "geocoder load"
    regions = RegionTable.load()
    geocoder = benchmark.pedantic(Geocoder.load, args=(regions,), rounds=5, iterations=1)
    assert len(geocoder.codes) == len(regions)


def test_region_loop(benchmark: Any, geocoder: Geocoder) -> None:
    benchmark.group = "region() x 1,000 land-ish points"
    lat, lon = landish_points(geocoder, 1_000)
    pairs = list(zip(lat.tolist(), lon.tolist(), strict=True))

    def run() -> list[str | None]:
        return [geocoder.region(a, b) for a, b in pairs]

    result = benchmark(run)
    assert result == geocoder.regions(lat, lon)


@pytest.mark.parametrize("kind", ["landish", "uniform"])
def test_regions(benchmark: Any, geocoder: Geocoder, kind: str) -> None:
    benchmark.group = f"regions() x 10,000 {kind} points"
    if kind == "landish":
        lat, lon = landish_points(geocoder, 10_000)
    else:
        lat, lon = uniform_points(10_000)
    result = benchmark(geocoder.regions, lat, lon)
    assert result == [geocoder.region(a, b) for a, b in zip(lat, lon, strict=True)]
