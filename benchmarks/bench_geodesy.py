"""Benchmarks of the geodesy kernels against their NumPy reference.

Run from the project root (the file is not named test_*.py, so the normal
``pytest`` run, whose testpaths is ``tests``, never collects it)::

    python -m pytest benchmarks/bench_geodesy.py -p no:cacheprovider --benchmark-only

or, for every benchmark module, ``make bench``, which runs
``python -m pytest benchmarks -o python_files='bench_*.py' -p no:xdist --benchmark-only``.
A file named on the command line is collected whatever its name.

Every kernel is timed three ways on the 10-, 1,000- and 100,000-point sets of
``benchmarks/conftest.py``, in one benchmark group per kernel and size so the
rows sit side by side:

* ``kernel``: the compiled entry point in ``ichnaea._fast`` writing into a
  preallocated ``out`` array (the inner loop alone);
* ``geo``: the public function in ``ichnaea.geo`` (validation, conversion,
  allocation and the kernel; what callers pay);
* ``reference``: the pure-NumPy specification in ``ichnaea._fast.reference``.

Each benchmark also checks its result against the reference for the same
input, so a fast kernel computing garbage fails instead of winning.
Results are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ichnaea import _fast, geo
from ichnaea._fast import reference

if TYPE_CHECKING:  # benchmarks/conftest.py, which pytest imports itself
    from conftest import PointSet

RTOL = 1e-12
IMPLEMENTATIONS = ["kernel", "geo", "reference"]

Runner = Callable[[], Any]


def _haversine_m(p: PointSet) -> dict[str, Runner]:
    out = np.empty(p.n)
    args = (p.lat1, p.lon1, p.lat2, p.lon2)

    def kernel() -> Any:
        _fast.haversine_m_array(*args, out)
        return out

    return {
        "kernel": kernel,
        "geo": lambda: geo.haversine_m(*args),
        "reference": lambda: reference.haversine_m(*args),
    }


def _distance_m(p: PointSet) -> dict[str, Runner]:
    out = np.empty(p.n)
    args = (p.lat1, p.lon1, p.lat2, p.lon2)

    def kernel() -> Any:
        _fast.distance_m_array(*args, out)
        return out

    return {
        "kernel": kernel,
        "geo": lambda: geo.distance_m(*args),
        "reference": lambda: reference.distance_m(*args),
    }


def _destination(p: PointSet) -> dict[str, Runner]:
    outs = (np.empty(p.n), np.empty(p.n))
    args = (p.lat1, p.lon1, p.bearing_deg, p.distance_m)

    def kernel() -> Any:
        _fast.destination_array(*args, *outs)
        return outs

    return {
        "kernel": kernel,
        "geo": lambda: geo.destination(*args),
        "reference": lambda: reference.destination(*args),
    }


def _bbox(p: PointSet) -> dict[str, Runner]:
    outs = tuple(np.empty(p.n) for _ in range(4))
    args = (p.lat1, p.lon1, p.distance_m)

    def kernel() -> Any:
        _fast.bbox_array(*args, *outs)
        return outs

    return {
        "kernel": kernel,
        "geo": lambda: geo.bbox(*args),
        "reference": lambda: reference.bbox(*args),
    }


def _circle_radius_m(p: PointSet) -> dict[str, Runner]:
    out = np.empty(p.n, dtype=np.int64)
    args = (p.lat1, p.lon1, p.max_lat, p.max_lon, p.min_lat, p.min_lon)

    def kernel() -> Any:
        _fast.circle_radius_m_array(*args, out)
        return out

    return {
        "kernel": kernel,
        "geo": lambda: geo.circle_radius_m(*args),
        "reference": lambda: reference.circle_radius_m(*args),
    }


def _max_distance_m(p: PointSet) -> dict[str, Runner]:
    # One centre and all second points of the set, e.g. a station and its
    # observations.
    lat, lon = float(p.lat1[0]), float(p.lon1[0])
    args = (p.lat2, p.lon2)
    return {
        "kernel": lambda: _fast.max_distance_m_array(lat, lon, *args),
        "geo": lambda: geo.max_distance_m(lat, lon, *args),
        "reference": lambda: reference.max_distance_m(lat, lon, *args),
    }


KERNELS: dict[str, Callable[[PointSet], dict[str, Runner]]] = {
    "haversine_m": _haversine_m,
    "distance_m": _distance_m,
    "destination": _destination,
    "bbox": _bbox,
    "circle_radius_m": _circle_radius_m,
    "max_distance_m": _max_distance_m,
}


def _assert_matches(result: Any, expected: Any) -> None:
    results = result if isinstance(result, tuple) else (result,)
    expecteds = expected if isinstance(expected, tuple) else (expected,)
    assert len(results) == len(expecteds)
    for got, want in zip(results, expecteds, strict=True):
        if np.asarray(want).dtype.kind == "i":
            assert_array_equal(got, want)
        else:
            assert_allclose(got, want, rtol=RTOL, atol=1e-9)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", list(KERNELS))
def test_geodesy(benchmark: Any, points: PointSet, name: str, implementation: str) -> None:
    benchmark.group = f"{name} n={points.n:,}"
    runners = KERNELS[name](points)
    result = benchmark(runners[implementation])
    _assert_matches(result, runners["reference"]())
