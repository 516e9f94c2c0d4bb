"""Benchmarks of the station-updater kernels and planner.

Run from the project root (the file is not named test_*.py, so the normal
``pytest`` run never collects it)::

    python -m pytest benchmarks/bench_station.py -p no:cacheprovider --benchmark-only

Inputs are fixed-seed synthetic Wi-Fi batches of 1,000 and 100,000
observations (a busy shard queue's batch and a bulk replay) in groups of
about five per station, each group spread over a few to a few hundred
metres, with some unknown (NaN or 0) accuracies, ages, speeds and signals.
Each kernel is timed two ways, in one benchmark group per kernel and size:

* ``kernel``: ``ichnaea._fast._station`` (conversion, allocation and loop);
* ``reference``: the NumPy specification in ``ichnaea._fast.reference``.

``plan_station_updates`` is timed on one 500-observation batch (the
updater's batch size) of 100 stations, half of them already known: three
kernel calls, one radius call and the Python row building, with the
shipped geocoder. Every benchmark checks its result against the reference,
so a fast kernel computing garbage fails instead of winning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ichnaea._fast._station as station
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ichnaea._fast import reference
from ichnaea.geocode import Geocoder
from ichnaea.pipeline.stations.plan import plan_station_updates
from ichnaea.pipeline.stations.state import StationType, station_key
from ichnaea.regions import RegionTable
from ichnaea.repositories.station_rows import LockedRows, station_table

SEED = 20250131
SIZES = [1_000, 100_000]
GROUP_SIZE = 5
MAX_DIST_M = 5000.0
IMPLEMENTATIONS = ["kernel", "reference"]

Runner = Callable[[], Any]


@dataclass(frozen=True)
class Batch:
    """Observations sorted by station (read-only float64 arrays) and the group offsets."""

    n: int
    accuracy: np.ndarray
    age: np.ndarray
    speed: np.ndarray
    signal: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray
    offsets: np.ndarray
    center_lat: np.ndarray
    center_lon: np.ndarray


def make_batch(n: int, seed: int = SEED) -> Batch:
    rng = np.random.default_rng(seed + n)
    sizes = np.clip(rng.poisson(GROUP_SIZE - 1, n // GROUP_SIZE) + 1, 1, None)
    sizes = sizes[np.cumsum(sizes) <= n]
    sizes[-1] += n - sizes.sum()
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    center_lat = rng.uniform(-60.0, 70.0, sizes.size)
    center_lon = rng.uniform(-180.0, 180.0, sizes.size)
    spread = 10.0 ** rng.uniform(-5.0, -2.0, sizes.size)  # about 1 m to 1 km
    lat = np.repeat(center_lat, sizes) + rng.normal(0.0, 1.0, n) * np.repeat(spread, sizes)
    lon = np.repeat(center_lon, sizes) + rng.normal(0.0, 1.0, n) * np.repeat(spread, sizes)
    accuracy = rng.uniform(0.0, 250.0, n)
    age = rng.uniform(-25000.0, 25000.0, n)
    speed = rng.uniform(0.0, 60.0, n)
    signal = rng.uniform(-100.0, -10.0, n)
    for array in (accuracy, age, speed, signal):
        array[rng.random(n) < 0.1] = np.nan
    arrays = {
        "accuracy": accuracy,
        "age": age,
        "speed": speed,
        "signal": signal,
        "lat": lat,
        "lon": lon,
        "weight": rng.uniform(0.1, 20.0, n),
        "offsets": offsets,
        "center_lat": center_lat,
        "center_lon": center_lon,
    }
    for values in arrays.values():
        values.flags.writeable = False
    return Batch(n=n, **arrays)


@pytest.fixture(scope="module", params=SIZES, ids=[f"n{n}" for n in SIZES])
def batch(request: pytest.FixtureRequest) -> Batch:
    return make_batch(request.param)


def _weights(b: Batch) -> dict[str, Runner]:
    args = (b.accuracy, b.age, b.speed, b.signal)
    return {
        "kernel": lambda: station.observation_weights(station.KIND_WIFI, *args),
        "reference": lambda: reference.observation_weights(reference.KIND_WIFI, *args),
    }


def _aggregates(b: Batch) -> dict[str, Runner]:
    args = (b.lat, b.lon, b.weight, b.offsets, MAX_DIST_M)
    return {
        "kernel": lambda: station.aggregate_groups(*args),
        "reference": lambda: reference.aggregate_groups(*args),
    }


def _max_distances(b: Batch) -> dict[str, Runner]:
    args = (b.lat, b.lon, b.offsets, b.center_lat, b.center_lon)
    return {
        "kernel": lambda: station.max_distance_to_points(*args),
        "reference": lambda: reference.max_distance_to_points(*args),
    }


KERNELS: dict[str, Callable[[Batch], dict[str, Runner]]] = {
    "observation_weights": _weights,
    "aggregate_groups": _aggregates,
    "max_distance_to_points": _max_distances,
}


def _assert_matches(result: Any, expected: Any) -> None:
    if isinstance(expected, dict):
        assert set(result) == set(expected)
        for name, want in expected.items():
            _assert_matches(result[name], want)
    elif expected.dtype.kind == "f":
        assert_allclose(result, expected, rtol=1e-12, atol=1e-9)
    else:
        assert_array_equal(result, expected)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", list(KERNELS))
def test_station_kernel(benchmark: Any, batch: Batch, name: str, implementation: str) -> None:
    benchmark.group = f"{name} n={batch.n:,}"
    runners = KERNELS[name](batch)
    result = benchmark(runners[implementation])
    _assert_matches(result, runners["reference"]())


def test_plan_station_updates_500_observations(benchmark: Any) -> None:
    benchmark.group = "plan_station_updates n=500"
    geocoder = Geocoder.load(RegionTable.load())
    now = datetime(2025, 3, 14, 12, 0, 0)
    rng = np.random.default_rng(SEED)
    macs = [f"a820674{i:05x}" for i in range(100)]
    observations = [
        {
            "mac": macs[i % 100],
            "lat": 51.5 + (i % 100) * 0.01 + rng.normal(0.0, 0.0002),
            "lon": -0.1 + rng.normal(0.0, 0.0002),
            "accuracy": float(rng.uniform(5.0, 150.0)),
            "age": float(rng.uniform(-3000.0, 3000.0)),
            "signal": float(rng.integers(-95, -40)),
            "source": 3 if i % 7 else 9,
        }
        for i in range(500)
    ]
    stored = [
        {
            "mac": station_key(StationType.wifi, {"mac": mac}),
            "lat": 51.5 + i * 0.01,
            "lon": -0.1,
            "region": "GB",
            "samples": 10,
            "weight": 12.0,
            "source": 3,
            "created": now - timedelta(days=30),
            "modified": now - timedelta(days=3),
            "last_seen": (now - timedelta(days=3)).date(),
        }
        for i, mac in enumerate(macs[::2])
    ]
    columns = [column.name for column in station_table("wifi", "0").columns]
    existing = LockedRows.from_mappings(columns, "mac", stored)

    def plan() -> Any:
        return plan_station_updates(
            StationType.wifi,
            observations,
            existing,
            now=now,
            today=now.date(),
            geocoder=geocoder,
        )

    result = benchmark(plan)
    assert (len(result.inserts), len(result.updates), result.obs_count) == (50, 50, 500)
