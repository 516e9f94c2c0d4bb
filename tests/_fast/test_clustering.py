"""The clustering kernel against SciPy's complete linkage.

``_fast.cluster_complete_linkage`` must give exactly the groups of
``reference.cluster_complete_linkage`` (SciPy ``linkage``/``fcluster`` over
the reference Vincenty distances), labels included, over random scans of
every size the service sees, exact ties (duplicates, equally spaced points),
far-apart and out-of-range points, read-only, empty and NaN input. The
kernel is float64 only; ichnaea/positioning.py converts float32, which
tests/test_positioning.py covers.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from ichnaea import _fast
from ichnaea._fast import reference

HYPOTHESIS = settings(max_examples=300, deadline=None, derandomize=True, database=None)
BASE_LAT, BASE_LON = 51.5, -0.1
M_PER_DEG = 111_000.0


def labels_of(lat: np.ndarray, lon: np.ndarray, max_distance_m: float) -> np.ndarray:
    out = np.empty(len(lat), dtype=np.int64)
    n_groups = _fast.cluster_complete_linkage(lat, lon, max_distance_m, out)
    assert n_groups == (len(set(out.tolist())) if len(out) else 0)
    return out


def assert_matches_reference(lat: np.ndarray, lon: np.ndarray, max_distance_m: float) -> None:
    got = labels_of(lat, lon, max_distance_m)
    want = reference.cluster_complete_linkage(lat, lon, max_distance_m)
    assert_array_equal(got, want)


def scan(rng: np.random.Generator, n: int, spread_m: float) -> tuple[np.ndarray, np.ndarray]:
    """n networks scattered around a random point with a spread in metres."""
    lat0 = rng.uniform(-70.0, 70.0)
    lon0 = rng.uniform(-180.0, 180.0)
    lat = lat0 + rng.normal(0.0, spread_m / M_PER_DEG, n)
    lon = lon0 + rng.normal(0.0, spread_m / M_PER_DEG / math.cos(math.radians(lat0)), n)
    return lat, lon


# ---------------------------------------------------------------------------
# Kernel vs reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5, 20, 60, 200])
@pytest.mark.parametrize("spread_m", [50.0, 300.0, 2_000.0, 100_000.0])
def test_kernel_matches_scipy_on_random_scans(n: int, spread_m: float) -> None:
    rng = np.random.default_rng(20250131 + n)
    for _ in range(3 if n < 100 else 1):
        lat, lon = scan(rng, n, spread_m)
        for max_distance_m in (100.0, 500.0):
            assert_matches_reference(lat, lon, max_distance_m)


def test_kernel_matches_scipy_on_500_networks() -> None:
    lat, lon = scan(np.random.default_rng(500), 500, 400.0)
    assert_matches_reference(lat, lon, 500.0)


def test_kernel_matches_scipy_with_duplicate_positions() -> None:
    # Many stations share one position (one building, one bad import):
    # every tie is between exactly equal distances.
    rng = np.random.default_rng(8)
    for _ in range(20):
        lat, lon = scan(rng, 6, 300.0)
        picks = rng.integers(0, 6, 30)
        assert_matches_reference(lat[picks], lon[picks], 500.0)


@pytest.mark.parametrize("step_deg", [0.001, 0.002, 0.003, 0.004, 0.0045])
def test_kernel_breaks_ties_like_scipy_on_equally_spaced_points(step_deg: float) -> None:
    # Along the equator equal longitude steps give bit-equal distances, so
    # which of two tied pairs merges first is SciPy's nn_chain order.
    lon = np.arange(9) * step_deg
    lat = np.zeros(9)
    assert_matches_reference(lat, lon, 500.0)
    assert_matches_reference(lat, lon[::-1].copy(), 500.0)


def test_three_equally_spaced_points_merge_the_first_pair() -> None:
    # 0 m, ~334 m, ~668 m: either end pair could merge, never all three.
    lon = np.array([0.0, 0.003, 0.006])
    labels = labels_of(np.zeros(3), lon, 500.0)
    assert_array_equal(labels, reference.cluster_complete_linkage(np.zeros(3), lon, 500.0))
    assert sorted(np.bincount(labels).tolist()) == [1, 2]


def test_kernel_matches_scipy_for_points_far_apart() -> None:
    # Pairs over 1000 km apart and near-antipodal pairs (haversine fallback)
    # are evaluated exactly, not bracketed.
    lat = np.array([0.0, 0.0, 0.5, 10.0, -10.0, 0.001, 45.0, 45.001])
    lon = np.array([0.0, 179.7, 179.0, 20.0, -160.0, 179.7, 90.0, 90.0])
    for max_distance_m in (500.0, 2e6, 2.1e7):
        assert_matches_reference(lat, lon, max_distance_m)


def test_kernel_matches_scipy_for_latitudes_out_of_range() -> None:
    # Nothing clamps latitudes; beyond ±90° the chord bracket does not
    # apply and such pairs are evaluated exactly.
    lat = np.array([89.9999, 90.0, 90.0001, 100.0, -95.0, -89.9999, 95.0])
    lon = np.array([0.0, 10.0, 0.0, 3.0, 7.0, 2.0, 3.0])
    for max_distance_m in (10.0, 50.0, 1e6):
        assert_matches_reference(lat, lon, max_distance_m)


def test_kernel_matches_scipy_across_the_antimeridian_and_poles() -> None:
    rng = np.random.default_rng(21)
    for lat0, lon0 in ((0.0, 180.0), (89.999, 0.0), (-89.999, 45.0), (30.0, -540.0)):
        lat = lat0 + rng.normal(0.0, 0.002, 30)
        lon = lon0 + rng.normal(0.0, 0.002, 30)
        lat = np.clip(lat, -90.0, 90.0)
        assert_matches_reference(lat, lon, 150.0)


@pytest.mark.parametrize("max_distance_m", [0.0, 1e-4, 1.0, 1e9, math.inf])
def test_kernel_matches_scipy_at_extreme_cut_offs(max_distance_m: float) -> None:
    lat, lon = scan(np.random.default_rng(2), 25, 300.0)
    lat[3], lon[3] = lat[4], lon[4]  # a zero distance
    assert_matches_reference(lat, lon, max_distance_m)


def test_kernel_accepts_read_only_arrays() -> None:
    lat, lon = scan(np.random.default_rng(7), 40, 400.0)
    lat.flags.writeable = False
    lon.flags.writeable = False
    assert_matches_reference(lat, lon, 500.0)


def test_kernel_accepts_empty_arrays() -> None:
    out = np.empty(0, dtype=np.int64)
    assert _fast.cluster_complete_linkage(np.empty(0), np.empty(0), 500.0, out) == 0
    assert reference.cluster_complete_linkage(np.empty(0), np.empty(0), 500.0).shape == (0,)


def test_kernel_labels_a_single_point() -> None:
    assert_array_equal(labels_of(np.array([1.0]), np.array([2.0]), 500.0), [0])


def test_kernel_makes_non_finite_points_singletons_like_reference() -> None:
    lat, lon = scan(np.random.default_rng(11), 12, 100.0)
    lat[[2, 7]] = math.nan
    lon[5] = math.inf
    labels = labels_of(lat, lon, 500.0)
    assert_array_equal(labels, reference.cluster_complete_linkage(lat, lon, 500.0))
    for i in (2, 5, 7):
        assert np.count_nonzero(labels == labels[i]) == 1
    # The finite points are grouped as if the others were not there.
    finite = np.isfinite(lat) & np.isfinite(lon)
    assert np.unique(labels[finite]).size == 1


def test_kernel_with_nan_cut_off_groups_nothing() -> None:
    lat, lon = scan(np.random.default_rng(12), 5, 10.0)
    assert_array_equal(labels_of(lat, lon, math.nan), np.arange(5))


def test_kernel_numbers_groups_by_first_member() -> None:
    # 0 m, 1000 m, 1 m, 1001 m along a meridian: groups {0, 2} and {1, 3}.
    lat = BASE_LAT + np.array([0.0, 1000.0, 1.0, 1001.0]) / M_PER_DEG
    labels = labels_of(lat, np.full(4, BASE_LON), 500.0)
    assert_array_equal(labels, [0, 1, 0, 1])


def test_kernel_cuts_meridian_example_of_the_spec() -> None:
    # spec 4.5: wifis at 0 m, 200 m and 600 m give {0 m, 200 m} and {600 m}.
    lat = BASE_LAT + np.array([0.0, 200.0, 600.0]) / M_PER_DEG
    assert_array_equal(labels_of(lat, np.full(3, BASE_LON), 500.0), [0, 0, 1])


def test_kernel_groups_have_diameter_at_most_the_cut_off() -> None:
    lat, lon = scan(np.random.default_rng(13), 80, 600.0)
    labels = labels_of(lat, lon, 500.0)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        i, j = np.meshgrid(members, members)
        assert reference.distance_m(lat[i], lon[i], lat[j], lon[j]).max() <= 500.0


def test_kernel_rejects_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="length"):
        _fast.cluster_complete_linkage(np.zeros(3), np.zeros(2), 500.0, np.empty(3, dtype=np.int64))
    with pytest.raises(ValueError, match="length"):
        _fast.cluster_complete_linkage(np.zeros(3), np.zeros(3), 500.0, np.empty(2, dtype=np.int64))


def test_kernel_rejects_float32_arrays() -> None:
    values = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match="dtype mismatch"):
        _fast.cluster_complete_linkage(values, values, 500.0, np.empty(3, dtype=np.int64))


def test_kernel_rejects_more_points_than_the_matrix_takes() -> None:
    many = np.zeros(40_001)
    with pytest.raises(ValueError, match="more than"):
        _fast.cluster_complete_linkage(many, many, 500.0, np.empty(40_001, dtype=np.int64))


# A small integer grid makes exact ties likely: equal offsets on one
# parallel give bit-equal distances.
grid_points = st.lists(st.tuples(st.integers(-6, 6), st.integers(-6, 6)), min_size=0, max_size=14)


@HYPOTHESIS
@given(
    points=grid_points,
    step_m=st.sampled_from([40.0, 90.0, 170.0, 250.0]),
    max_distance_m=st.sampled_from([100.0, 500.0]),
    lat0=st.sampled_from([0.0, 51.5, -33.9, 89.99]),
)
def test_kernel_matches_scipy_on_grids_property(
    points: list[tuple[int, int]], step_m: float, max_distance_m: float, lat0: float
) -> None:
    offsets = np.array(points, dtype=np.float64).reshape(-1, 2) * step_m / M_PER_DEG
    lat = np.clip(lat0 + offsets[:, 0], -90.0, 90.0)
    lon = 10.0 + offsets[:, 1]
    assert_matches_reference(lat, lon, max_distance_m)


@HYPOTHESIS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 40),
    spread_m=st.floats(1.0, 3_000.0),
)
def test_kernel_matches_scipy_on_random_scans_property(seed: int, n: int, spread_m: float) -> None:
    lat, lon = scan(np.random.default_rng(seed), n, spread_m)
    assert_matches_reference(lat, lon, 500.0)


# ---------------------------------------------------------------------------
# order_groups
# ---------------------------------------------------------------------------


def groups_of(labels: np.ndarray, n_groups: int, min_size: int) -> list[list[int]]:
    members = np.empty(len(labels), dtype=np.int64)
    ends = np.empty(n_groups, dtype=np.int64)
    kept = _fast.order_groups(labels, n_groups, min_size, members, ends)
    bounds = [0, *ends[:kept].tolist()]
    return [members[a:b].tolist() for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("min_size", [0, 1, 2, 3])
def test_order_groups_lists_members_of_large_enough_groups(min_size: int) -> None:
    rng = np.random.default_rng(min_size)
    for n in (0, 1, 5, 40):
        lat, lon = scan(rng, n, 800.0)
        labels = labels_of(lat, lon, 500.0)
        n_groups = int(labels.max()) + 1 if n else 0
        want = [np.flatnonzero(labels == k).tolist() for k in range(n_groups)]
        want = [members for members in want if len(members) >= min_size]
        assert groups_of(labels, n_groups, min_size) == want


def test_order_groups_rejects_bad_labels_and_lengths() -> None:
    labels = np.array([0, 2, 1], dtype=np.int64)
    with pytest.raises(ValueError, match="not in"):
        _fast.order_groups(labels, 2, 2, np.empty(3, dtype=np.int64), np.empty(2, dtype=np.int64))
    with pytest.raises(ValueError, match="length"):
        _fast.order_groups(labels, 3, 2, np.empty(2, dtype=np.int64), np.empty(3, dtype=np.int64))
    with pytest.raises(ValueError, match="length"):
        _fast.order_groups(labels, 3, 2, np.empty(3, dtype=np.int64), np.empty(2, dtype=np.int64))


# ---------------------------------------------------------------------------
# The chord bracket the kernel decides comparisons with
# ---------------------------------------------------------------------------


def test_chord_bracket_contains_vincenty_distance() -> None:
    # The kernel's premise (see _clustering.pyx): with c the ECEF chord,
    # c (1 - 1e-9) - 1 mm <= distance_m <= c (1 + 1.01 c² / 24K² + 1e-9) + 1 mm
    # for c <= 1000 km, K = a (1 - e²). Vincenty's own error reaches 0.06 mm
    # for very short lines (it reports the distance of its second-to-last
    # pass); the slack leaves a margin of 15.
    a, f = 6378137.0, 1.0 / 298.257223563
    e2 = f * (2.0 - f)
    k = a * (1.0 - e2)
    rng = np.random.default_rng(31)
    n = 200_000
    lat1 = np.concatenate([rng.uniform(-90.0, 90.0, n - 2000), np.repeat([-90.0, 90.0], 1000)])
    lon1 = rng.uniform(-540.0, 540.0, n)
    lat2, lon2 = reference.destination(
        lat1, lon1, rng.uniform(0.0, 360.0, n), 10.0 ** rng.uniform(-3.0, 6.0, n)
    )
    lat2 = np.clip(lat2, -90.0, 90.0)

    def ecef(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        phi, lam = np.radians(lat), np.radians(lon)
        big_n = a / np.sqrt(1.0 - e2 * np.sin(phi) ** 2)
        return np.stack(
            [
                big_n * np.cos(phi) * np.cos(lam),
                big_n * np.cos(phi) * np.sin(lam),
                big_n * (1.0 - e2) * np.sin(phi),
            ]
        )

    chord = np.sqrt(((ecef(lat1, lon1) - ecef(lat2, lon2)) ** 2).sum(axis=0))
    distance = np.empty(n)
    _fast.distance_m_array(lat1, lon1, lat2, lon2, distance)
    near = chord <= 1e6
    c, d = chord[near], distance[near]
    assert near.mean() > 0.9
    assert (d >= c * (1.0 - 1e-9) - 1e-3).all()
    assert (d <= c * (1.0 + c * c * 1.01 / (24.0 * k * k) + 1e-9) + 1e-3).all()
    # Without the slack the bracket is tight: Vincenty's error stays small.
    assert (d - c).min() > -1e-4
    assert (c * (1.0 + c * c * 1.01 / (24.0 * k * k)) - d).min() > -1e-4
