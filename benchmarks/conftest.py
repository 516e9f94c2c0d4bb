"""Fixed-seed synthetic inputs for the kernel benchmarks.

``points`` is parametrised over 10, 1,000 and 100,000 points: the size of one
Wi-Fi scan, of a busy station's observation batch, and of a bulk pipeline
run. The first points are spread over the inhabited latitudes, and the
second point of every pair lies within a few kilometres of the first (normal
offsets with a standard deviation of 0.01°, about 1 km), which is what the
service measures in practice. Arrays are read-only so no benchmark can change another's input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

SIZES = [10, 1_000, 100_000]
SEED = 20250131


@dataclass(frozen=True)
class PointSet:
    """Inputs for every geodesy kernel, all float64 arrays of length ``n``."""

    n: int
    # Pairs of points for the distance kernels (degrees): the second point
    # is a small offset from the first.
    lat1: np.ndarray
    lon1: np.ndarray
    lat2: np.ndarray
    lon2: np.ndarray
    # destination: initial bearing (degrees) and distance (metres, 1 m-10 km).
    bearing_deg: np.ndarray
    distance_m: np.ndarray
    # circle_radius_m: a box of half-size up to 0.05° around (lat1, lon1).
    max_lat: np.ndarray
    max_lon: np.ndarray
    min_lat: np.ndarray
    min_lon: np.ndarray


def make_point_set(n: int, seed: int = SEED) -> PointSet:
    """Build the ``n``-point input set; the same ``n`` and seed give the same set."""
    rng = np.random.default_rng(seed + n)
    lat1 = rng.uniform(-60.0, 70.0, n)
    lon1 = rng.uniform(-180.0, 180.0, n)
    lat2 = lat1 + rng.normal(0.0, 0.01, n)
    lon2 = lon1 + rng.normal(0.0, 0.01, n)
    half_lat = rng.uniform(0.0, 0.05, n)
    half_lon = rng.uniform(0.0, 0.05, n)
    arrays = {
        "lat1": lat1,
        "lon1": lon1,
        "lat2": lat2,
        "lon2": lon2,
        "bearing_deg": rng.uniform(0.0, 360.0, n),
        "distance_m": 10.0 ** rng.uniform(0.0, 4.0, n),
        "max_lat": lat1 + half_lat,
        "max_lon": lon1 + half_lon,
        "min_lat": lat1 - half_lat,
        "min_lon": lon1 - half_lon,
    }
    for array in arrays.values():
        array.flags.writeable = False
    return PointSet(n=n, **arrays)


@pytest.fixture(scope="session", params=SIZES, ids=[f"n{n}" for n in SIZES])
def points(request: pytest.FixtureRequest) -> PointSet:
    """The synthetic input set of 10, 1,000 or 100,000 points."""
    n: int = request.param
    return make_point_set(n)
