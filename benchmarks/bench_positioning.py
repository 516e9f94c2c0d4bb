"""Benchmarks of the clustering and weighting kernels against their references.

Run from the project root (the file is not named test_*.py, so the normal
``pytest`` run never collects it)::

    python -m pytest benchmarks/bench_positioning.py -p no:cacheprovider --benchmark-only

Every kernel is timed on fixed-seed synthetic scans of 3, 20 and 200
networks (the clustering also on 500): a small, a typical and a large
/v1/geolocate query. Up to three ways, in one benchmark group per kernel and
size:

* ``kernel``: the compiled entry point in ``ichnaea._fast``, with
  preallocated outputs;
* ``positioning``: the public function in ``ichnaea.positioning``
  (validation, conversion, allocation and the kernel; what callers pay),
  where there is one;
* ``reference``: ``ichnaea._fast.reference``, i.e. NumPy plus SciPy's
  ``linkage``/``fcluster``, which the old service ran.

Each benchmark also checks its result against the reference for the same
input (positions within 1e-6°, groups and samples exactly), so a fast kernel
computing garbage fails instead of winning. Results are recorded in
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ichnaea import _fast, positioning
from ichnaea._fast import reference

SEED = 20250131
SIZES = [3, 20, 200]
CLUSTER_SIZES = [*SIZES, 500]
ATOL_DEG = 1e-6
# Wi-Fi parameters of spec 4.5/4.6.
MAX_DISTANCE_M = 500.0
MAX_NETWORKS = 20
MIN_ACCURACY_M, MAX_ACCURACY_M = 10.0, 500.0

Runner = Callable[[], Any]


@dataclass(frozen=True)
class Scan:
    """One query's networks as the service prepares them (read-only arrays)."""

    n: int
    lat: np.ndarray
    lon: np.ndarray
    age_ms: np.ndarray
    signal_dbm: np.ndarray
    score: np.ndarray
    radius_m: np.ndarray


def make_scan(n: int, seed: int = SEED) -> Scan:
    """Networks around central London: 90 % within ~300 m, 10 % up to ~5 km.

    Signals -100..-10 dBm, ages max(|0..16000|, 1000) ms, scores 0.05..10,
    cell radii 0.5..40 km.
    """
    rng = np.random.default_rng(seed + n)
    spread_m = np.where(rng.random(n) < 0.9, 300.0, 5000.0)
    lat = 51.5 + rng.normal(0.0, 1.0, n) * spread_m / 111_000.0
    lon = -0.1 + rng.normal(0.0, 1.0, n) * spread_m / 69_000.0
    arrays = {
        "lat": lat,
        "lon": lon,
        "age_ms": np.maximum(rng.uniform(0.0, 16000.0, n).round(), 1000.0),
        "signal_dbm": rng.uniform(-100.0, -10.0, n).round(),
        "score": rng.uniform(0.05, 10.0, n),
        "radius_m": rng.uniform(500.0, 40_000.0, n),
    }
    for array in arrays.values():
        array.flags.writeable = False
    return Scan(n=n, **arrays)


@pytest.fixture(scope="module", params=SIZES, ids=[f"n{n}" for n in SIZES])
def scan(request: pytest.FixtureRequest) -> Scan:
    return make_scan(request.param)


@pytest.fixture(scope="module", params=CLUSTER_SIZES, ids=[f"n{n}" for n in CLUSTER_SIZES])
def cluster_scan(request: pytest.FixtureRequest) -> Scan:
    return make_scan(request.param)


def _bench(benchmark: Any, group: str, runners: dict[str, Runner], implementation: str) -> Any:
    if implementation not in runners:
        pytest.skip(f"no {implementation} implementation")
    benchmark.group = group
    return benchmark(runners[implementation])


# ---------------------------------------------------------------------------
# Clustering
# ---------------------------------------------------------------------------


def _groups(labels: np.ndarray) -> list[list[int]]:
    found = [np.flatnonzero(labels == k).tolist() for k in range(int(labels.max()) + 1)]
    return [members for members in found if len(members) >= 2]


@pytest.mark.parametrize("implementation", ["kernel", "positioning", "reference"])
def test_cluster(benchmark: Any, cluster_scan: Scan, implementation: str) -> None:
    s = cluster_scan
    out = np.empty(s.n, dtype=np.int64)

    def kernel() -> Any:
        _fast.cluster_complete_linkage(s.lat, s.lon, MAX_DISTANCE_M, out)
        return out

    runners = {
        "kernel": kernel,
        "positioning": lambda: positioning.cluster_networks(
            s.lat, s.lon, max_distance_m=MAX_DISTANCE_M
        ),
        "reference": lambda: reference.cluster_complete_linkage(s.lat, s.lon, MAX_DISTANCE_M),
    }
    result = _bench(benchmark, f"cluster n={s.n}", runners, implementation)
    want = reference.cluster_complete_linkage(s.lat, s.lon, MAX_DISTANCE_M)
    if implementation == "positioning":
        assert [c.tolist() for c in result] == _groups(want)
    else:
        assert_array_equal(result, want)


# ---------------------------------------------------------------------------
# Weighting
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", ["kernel", "reference"])
def test_cluster_weights(benchmark: Any, scan: Scan, implementation: str) -> None:
    s = scan
    out = np.empty(s.n)

    def kernel() -> Any:
        _fast.cluster_weights(s.age_ms, s.signal_dbm, s.radius_m, out)
        return out

    runners = {
        "kernel": kernel,
        "reference": lambda: reference.cluster_weights(s.age_ms, s.signal_dbm, s.radius_m),
    }
    result = _bench(benchmark, f"cluster_weights n={s.n}", runners, implementation)
    assert_allclose(result, reference.cluster_weights(s.age_ms, s.signal_dbm, s.radius_m),
                    rtol=1e-14)  # fmt: skip


@pytest.mark.parametrize("implementation", ["kernel", "reference"])
def test_weighted_position(benchmark: Any, scan: Scan, implementation: str) -> None:
    s = scan
    weights = reference.cluster_weights(s.age_ms, s.signal_dbm, s.radius_m)
    runners = {
        "kernel": lambda: _fast.weighted_position(s.lat, s.lon, weights),
        "reference": lambda: reference.weighted_position(s.lat, s.lon, weights),
    }
    result = _bench(benchmark, f"weighted_position n={s.n}", runners, implementation)
    assert_array_equal(result, reference.weighted_position(s.lat, s.lon, weights))


@pytest.mark.parametrize("implementation", ["kernel", "reference"])
def test_percentile95_distance(benchmark: Any, scan: Scan, implementation: str) -> None:
    s = scan
    args = (51.5, -0.1, s.lat, s.lon)
    runners = {
        "kernel": lambda: _fast.percentile95_distance_m(*args),
        "reference": lambda: reference.percentile95_distance_m(*args),
    }
    result = _bench(benchmark, f"percentile95_distance_m n={s.n}", runners, implementation)
    assert math.isclose(result, reference.percentile95_distance_m(*args), rel_tol=1e-12)


@pytest.mark.parametrize("implementation", ["kernel", "positioning", "reference"])
def test_aggregate_cluster(benchmark: Any, scan: Scan, implementation: str) -> None:
    s = scan
    arrays = (s.lat, s.lon, s.age_ms, s.signal_dbm, s.score, s.radius_m)
    mask = np.empty(s.n, dtype=np.uint8)
    bounds = (MIN_ACCURACY_M, MAX_ACCURACY_M)

    def kernel() -> Any:
        return (*_fast.aggregate_cluster(*arrays, MAX_NETWORKS, *bounds, mask), mask.view(bool))

    def public() -> Any:
        found = positioning.aggregate_cluster_position(
            *arrays,
            max_networks=MAX_NETWORKS,
            min_accuracy_m=MIN_ACCURACY_M,
            max_accuracy_m=MAX_ACCURACY_M,
        )
        return found.lat, found.lon, found.accuracy_m, found.score, found.sample_mask

    runners = {
        "kernel": kernel,
        "positioning": public,
        "reference": lambda: reference.aggregate_cluster(*arrays, MAX_NETWORKS, *bounds),
    }
    result = _bench(benchmark, f"aggregate_cluster n={s.n}", runners, implementation)
    want = reference.aggregate_cluster(*arrays, MAX_NETWORKS, *bounds)
    assert_allclose(result[:2], want[:2], rtol=0.0, atol=ATOL_DEG)
    assert_allclose(result[2:4], want[2:4], rtol=1e-9)
    assert_array_equal(result[4], want[4])


@pytest.mark.parametrize("implementation", ["kernel", "positioning", "reference"])
def test_aggregate_cell_groups(benchmark: Any, scan: Scan, implementation: str) -> None:
    s = scan
    floor = np.full(s.n, -140.0)
    arrays = (s.lat, s.lon, s.radius_m, s.age_ms, s.signal_dbm, floor, s.score)
    bounds = (
        *positioning.CELL_RADIUS_BOUNDS_M,
        positioning.CELL_MIN_ACCURACY_M,
        positioning.CELL_MAX_ACCURACY_M,
    )
    group = np.empty(s.n, dtype=np.int64)

    def public() -> Any:
        return [(g.lat, g.lon, g.accuracy_m, g.score) for g in positioning.group_cells(*arrays)]

    runners = {
        "kernel": lambda: _fast.aggregate_cell_groups(*arrays, *bounds, group),
        "positioning": public,
        "reference": lambda: reference.aggregate_cell_groups(*arrays, *bounds)[0],
    }
    result = _bench(benchmark, f"aggregate_cell_groups n={s.n}", runners, implementation)
    want = reference.aggregate_cell_groups(*arrays, *bounds)[0]
    assert_allclose(np.array(result), np.array(want), rtol=1e-12)
