"""The weighting kernels against NumPy.

Every entry point of ``ichnaea._fast._weighting`` is compared with
``ichnaea._fast.reference``: weights and weighted means (same summation
order as NumPy, so equal to the last bit), the 95th percentile
(``numpy.percentile``), the sample selection and whole clusters (issue 11's
weights: the least-squares refinement the original ran, and our port of
it, are gone). Inputs cover read-only, empty and NaN arrays; the kernels
are float64 only (ichnaea/positioning.py converts float32, see
tests/test_positioning.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ichnaea import _fast
from ichnaea._fast import reference

ATOL_DEG = 1e-6
RTOL_M = 1e-12
M_PER_DEG = 111_000.0


def random_cluster(
    rng: np.random.Generator, n: int, spread_m: float = 500.0
) -> tuple[np.ndarray, ...]:
    """A realistic cluster: networks within ``spread_m``, caller-prepared inputs.

    Signals -100..-10 dBm, ages max(|0..16000|, 1000) ms, station scores as
    station_score produces them (0.05..10), a random inhabited latitude.
    """
    lat0 = rng.uniform(-60.0, 70.0)
    lon0 = rng.uniform(-180.0, 180.0)
    radius = spread_m * np.sqrt(rng.random(n)) / M_PER_DEG
    angle = rng.uniform(0.0, 2.0 * math.pi, n)
    lat = lat0 + radius * np.sin(angle)
    lon = lon0 + radius * np.cos(angle) / math.cos(math.radians(lat0))
    signal = rng.uniform(-100.0, -10.0, n).round()
    age = np.maximum(np.abs(rng.uniform(0.0, 16000.0, n)).round(), 1000.0)
    score = rng.uniform(0.05, 10.0, n)
    return lat, lon, age, signal, score


def network_cluster(
    rng: np.random.Generator, n: int, spread_m: float = 500.0
) -> tuple[np.ndarray, ...]:
    """:func:`random_cluster` with station radii (0-400 m, a few NULL): the
    inputs of ``aggregate_cluster``."""
    radius = rng.uniform(0.0, 400.0, n).round()
    radius[rng.random(n) < 0.1] = math.nan
    return (*random_cluster(rng, n, spread_m), radius)


def fast_weights(age: np.ndarray, signal: np.ndarray, radius: np.ndarray) -> np.ndarray:
    out = np.empty(len(age))
    _fast.cluster_weights(age, signal, radius, out)
    return out


def fast_cell_weights(
    age: np.ndarray, signal: np.ndarray, floor: np.ndarray, radius: np.ndarray
) -> np.ndarray:
    out = np.empty(len(age))
    _fast.cell_weights(age, signal, floor, radius, 1000.0, 50000.0, out)
    return out


def fast_sample(score: np.ndarray, max_networks: int) -> np.ndarray:
    out = np.empty(len(score), dtype=np.uint8)
    size = _fast.select_sample(score, max_networks, out)
    assert size == int(out.sum())
    return out.view(bool)


def fast_cluster(
    *arrays: np.ndarray, max_networks: int = 20, bounds: tuple[float, float] = (10.0, 500.0)
) -> tuple[float, float, float, float, np.ndarray]:
    mask = np.empty(len(arrays[0]), dtype=np.uint8)
    lat, lon, accuracy, score = _fast.aggregate_cluster(*arrays, max_networks, *bounds, mask)
    return lat, lon, accuracy, score, mask.view(bool)


def assert_cluster_matches_reference(
    arrays: tuple[np.ndarray, ...], max_networks: int = 20, bounds: tuple[float, float] = (10, 500)
) -> None:
    got = fast_cluster(*arrays, max_networks=max_networks, bounds=bounds)
    want = reference.aggregate_cluster(*arrays, max_networks, *bounds)
    assert_array_equal(got[4], want[4])
    assert_allclose(got[:2], want[:2], rtol=0.0, atol=ATOL_DEG)
    assert_allclose(got[2], want[2], rtol=1e-9, atol=1e-3)
    assert_allclose(got[3], want[3], rtol=RTOL_M)


# ---------------------------------------------------------------------------
# Weights, weighted mean, percentile
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7, 8, 20, 129, 300])
def test_weights_and_mean_equal_numpy(n: int) -> None:
    lat, lon, age, signal, _, radius = network_cluster(np.random.default_rng(n), n)
    weights = fast_weights(age, signal, radius)
    assert_allclose(weights, reference.cluster_weights(age, signal, radius), rtol=1e-14)
    got = _fast.weighted_position(lat, lon, weights)
    want = reference.weighted_position(lat, lon, weights)
    # NumPy's pairwise summation order, reproduced: equal to the last bit.
    assert_array_equal(got, want)


def test_weights_follow_the_age_signal_and_radius_rules() -> None:
    # Full weight up to 2 s, half at 8 s, 1/sqrt(8) at 16 s; tenfold per
    # 15 dB; divided by the radius bounded to [30, 300] m (NULL: 30).
    age = np.array([1000.0, 2000.0, 8000.0, 16000.0])
    weights = fast_weights(age, np.full(4, -30.0), np.full(4, 100.0))
    assert_allclose(weights * 1e4, [1.0, 1.0, 0.5, 1.0 / math.sqrt(8.0)], rtol=1e-14)
    by_signal = fast_weights(np.full(2, 1000.0), np.array([-45.0, -60.0]), np.full(2, 100.0))
    assert by_signal[0] == pytest.approx(10 * by_signal[1], rel=1e-14)
    radius = np.array([10.0, 30.0, math.nan, 150.0, 300.0, 900.0])
    by_radius = fast_weights(np.full(6, 1000.0), np.zeros(6), radius)
    assert_allclose(by_radius, [1 / 30, 1 / 30, 1 / 30, 1 / 150, 1 / 300, 1 / 300], rtol=1e-15)


def test_cell_weights_count_the_signal_above_the_radio_floor() -> None:
    # -90 dBm LTE (50 dB above -140) weighs ten times -98 dBm GSM (15 dB
    # above -113) at one radius; 1 / radius², the radius in [1 km, 50 km].
    age = np.full(2, 1000.0)
    w = fast_cell_weights(age, np.array([-90.0, -98.0]), np.array([-140.0, -113.0]),
                          np.full(2, 2000.0))  # fmt: skip
    assert w[0] / w[1] == pytest.approx(10 ** (35 / 15), rel=1e-14)
    radius = np.array([500.0, math.nan, 2000.0, 90_000.0])
    w = fast_cell_weights(np.full(4, 1000.0), np.full(4, -113.0), np.full(4, -113.0), radius)
    assert_allclose(w, [1e-6, 1e-6, 1 / 4e6, 1 / 25e8], rtol=1e-15)
    floor = np.full(4, -140.0)
    args = (np.full(4, 1000.0), floor + 27, floor, radius)
    assert_allclose(fast_cell_weights(*args), reference.cell_weights(*args), rtol=1e-14)


def test_weights_propagate_nan() -> None:
    age = np.array([1000.0, math.nan, 1000.0])
    signal = np.array([-50.0, -50.0, math.nan])
    weights = fast_weights(age, signal, np.full(3, 50.0))
    assert_array_equal(np.isnan(weights), [False, True, True])
    assert_allclose(weights, reference.cluster_weights(age, signal, np.full(3, 50.0)), rtol=1e-14)


def test_weighted_position_of_nothing_is_nan() -> None:
    assert all(
        math.isnan(v) for v in _fast.weighted_position(np.empty(0), np.empty(0), np.empty(0))
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4, 19, 20, 21, 100, 301])
def test_percentile95_equals_numpy(n: int) -> None:
    lat, lon, *_ = random_cluster(np.random.default_rng(100 + n), n)
    lat.flags.writeable = False
    got = _fast.percentile95_distance_m(lat[0] + 1e-4, lon[0], lat, lon)
    want = reference.percentile95_distance_m(lat[0] + 1e-4, lon[0], lat, lon)
    assert_allclose(got, want, rtol=RTOL_M)


def test_percentile95_with_equal_distances_and_nan() -> None:
    lats = np.full(5, 1.0)
    assert _fast.percentile95_distance_m(0.0, 0.0, lats, np.zeros(5)) == pytest.approx(
        reference.percentile95_distance_m(0.0, 0.0, lats, np.zeros(5)), rel=RTOL_M
    )
    lats[3] = math.nan
    assert math.isnan(_fast.percentile95_distance_m(0.0, 0.0, lats, np.zeros(5)))
    assert math.isnan(reference.percentile95_distance_m(0.0, 0.0, lats, np.zeros(5)))
    assert math.isnan(_fast.percentile95_distance_m(0.0, 0.0, np.empty(0), np.empty(0)))


# ---------------------------------------------------------------------------
# Sample selection (in place of quirk Q1)
# ---------------------------------------------------------------------------


def test_sample_keeps_the_heaviest_networks_in_place_of_q1() -> None:
    # The old service sorted ascending and kept the lowest scores (Q1); the
    # kernel keeps the max_networks heaviest (aggregate_cluster ranks by the
    # weights, a decision of issue 11), ties in input order.
    score = np.array([0.5, 9.0, 0.1, 3.0, 9.0, 3.0, 0.2])
    assert_array_equal(fast_sample(score, 4), [False, True, False, True, True, True, False])
    assert_array_equal(fast_sample(score, 3), [False, True, False, True, True, False, False])
    assert_array_equal(fast_sample(score, 7), np.ones(7, dtype=bool))


@pytest.mark.parametrize("n", [0, 1, 10, 21, 57, 400])
@pytest.mark.parametrize("max_networks", [0, 1, 10, 20])
def test_sample_equals_reference(n: int, max_networks: int) -> None:
    rng = np.random.default_rng(n * 31 + max_networks)
    score = rng.choice([0.05, 0.5, 1.0, 2.5, 10.0], n) * rng.choice([1.0, 1.0, 1.1], n)
    if n > 4:
        score[::5] = math.nan  # NaN ranks last
    assert_array_equal(
        fast_sample(score, max_networks), reference.select_sample(score, max_networks)
    )


# ---------------------------------------------------------------------------
# Whole clusters and cells
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 10, 20, 21, 45, 200])
def test_aggregate_cluster_matches_reference(n: int) -> None:
    rng = np.random.default_rng(700 + n)
    for _ in range(10 if n < 50 else 2):
        assert_cluster_matches_reference(network_cluster(rng, n, float(rng.uniform(5.0, 500.0))))


def test_aggregate_cluster_matches_reference_for_bluetooth_parameters() -> None:
    rng = np.random.default_rng(77)
    for _ in range(20):
        arrays = network_cluster(rng, int(rng.integers(2, 25)), 100.0)
        assert_cluster_matches_reference(arrays, max_networks=10, bounds=(10.0, 50.0))


def test_aggregate_cluster_sums_the_score_of_the_whole_cluster() -> None:
    lat, lon, age, signal, score, radius = network_cluster(np.random.default_rng(5), 30)
    *_, total, sample = fast_cluster(lat, lon, age, signal, score, radius, max_networks=20)
    assert sample.sum() == 20
    assert total == pytest.approx(score.sum(), rel=RTOL_M)


def test_aggregate_cluster_accepts_read_only_arrays() -> None:
    arrays = network_cluster(np.random.default_rng(6), 12)
    for array in arrays:
        array.flags.writeable = False
    assert_cluster_matches_reference(arrays)


def test_aggregate_cluster_of_nothing() -> None:
    got = fast_cluster(*(np.empty(0) for _ in range(6)))
    want = reference.aggregate_cluster(*(np.empty(0) for _ in range(6)), 20, 10.0, 500.0)
    for value in (got, want):
        assert all(math.isnan(v) for v in value[:3]) and value[3] == 0.0
        assert value[4].shape == (0,)


@pytest.mark.parametrize("column", range(5))
def test_aggregate_cluster_propagates_nan_like_reference(column: int) -> None:
    arrays = network_cluster(np.random.default_rng(9), 6)
    arrays[column][2] = math.nan
    got = fast_cluster(*arrays)
    want = reference.aggregate_cluster(*arrays, 20, 10.0, 500.0)
    if column == 4:
        # The score only picks the sample and sums up (issue 11's weights
        # leave it out): the position stands, the summed score is NaN.
        assert_allclose(got[:3], want[:3], rtol=1e-9, atol=1e-9)
        assert not any(math.isnan(v) for v in got[:3])
        assert math.isnan(got[3]) and math.isnan(want[3])
    else:
        assert all(math.isnan(v) for v in got[:3]) and all(math.isnan(v) for v in want[:3])
        assert got[3] == pytest.approx(want[3], rel=RTOL_M)


def test_a_null_station_radius_weighs_as_30_m_and_radii_are_bounded_to_30_300() -> None:
    lat, lon, age, signal, score, _ = network_cluster(np.random.default_rng(11), 5)
    null = fast_cluster(lat, lon, age, signal, score, np.full(5, math.nan))
    assert null[:2] == fast_cluster(lat, lon, age, signal, score, np.full(5, 30.0))[:2]
    assert null[:2] == fast_cluster(lat, lon, age, signal, score, np.full(5, 5.0))[:2]
    radius = np.array([10.0, 300.0, 5000.0, 30.0, 100.0])
    bounded = np.array([30.0, 300.0, 300.0, 30.0, 100.0])
    got = fast_cluster(lat, lon, age, signal, score, radius)
    assert got[:2] == fast_cluster(lat, lon, age, signal, score, bounded)[:2]


def test_a_strong_signal_and_a_small_radius_pull_the_position() -> None:
    """Decision (issue 11): weights 10^(signal / 15) / radius. Two networks
    1 km apart on a meridian, one heard 15 dB stronger: the answer is ten
    times closer to it; with the radii 30 m and 300 m it is a hundred times."""
    lat, lon = np.array([0.0, 0.009]), np.zeros(2)
    age, score = np.full(2, 1000.0), np.ones(2)
    even = fast_cluster(lat, lon, age, np.array([-60.0, -75.0]), score, np.full(2, 50.0))
    assert even[0] == pytest.approx(0.009 / 11, rel=1e-9)
    radii = fast_cluster(lat, lon, age, np.array([-60.0, -75.0]), score, np.array([30.0, 300.0]))
    assert radii[0] == pytest.approx(0.009 / 101, rel=1e-9)


def test_aggregate_cluster_with_an_empty_sample() -> None:
    arrays = network_cluster(np.random.default_rng(10), 4)
    got = fast_cluster(*arrays, max_networks=0)
    want = reference.aggregate_cluster(*arrays, 0, 10.0, 500.0)
    assert not got[4].any() and not want[4].any()
    assert all(math.isnan(v) for v in got[:3]) and got[3] == pytest.approx(want[3], rel=RTOL_M)


def random_cells(rng: np.random.Generator, n: int, spread_m: float) -> tuple[np.ndarray, ...]:
    """The inputs of ``aggregate_cell_groups``: cells spread over ``spread_m``
    with radii of 0.3-8 km (a few NULL) and the floors of three radios."""
    lat, lon, age, signal, score = random_cluster(rng, n, spread_m)
    radius = rng.uniform(300.0, 8000.0, n).round()
    radius[rng.random(n) < 0.1] = math.nan
    floor = rng.choice([-113.0, -121.0, -140.0], n)
    signal = floor + rng.uniform(0.0, 60.0, n).round()
    return lat, lon, radius, age, signal, floor, score


# Radius bounds, then accuracy bounds, of cells.
CELL_BOUNDS = (1000.0, 50000.0, 1000.0, 50000.0)


def fast_cell_groups(*arrays: np.ndarray) -> tuple[list[tuple[float, ...]], np.ndarray]:
    group = np.empty(len(arrays[0]), dtype=np.int64)
    found = _fast.aggregate_cell_groups(*arrays, 1000.0, 50000.0, 1000.0, 50000.0, group)
    return found, group


@pytest.mark.parametrize("n", [0, 1, 2, 3, 12, 150])
@pytest.mark.parametrize("spread_m", [3_000.0, 30_000.0])
def test_aggregate_cell_groups_matches_reference(n: int, spread_m: float) -> None:
    arrays = random_cells(np.random.default_rng(900 + n), n, spread_m)
    got, group = fast_cell_groups(*arrays)
    want, want_group = reference.aggregate_cell_groups(*arrays, *CELL_BOUNDS)
    assert_array_equal(group, want_group)
    assert len(got) == len(want) == (len(set(group)) if n else 0)
    if n:
        assert_allclose(np.array(got), np.array(want), rtol=RTOL_M, atol=1e-12)


def test_cells_whose_discs_overlap_form_one_group_across_radios_and_areas() -> None:
    # A decision of issue 11 (the original made one cluster per area and
    # radio): cells 3 km apart with 2 km radii overlap and form one group,
    # whatever their radio; a cell 40 km away forms its own.
    lat = np.array([52.0, 52.0 + 3000 / 111_320, 52.0 + 40_000 / 111_320])
    lon = np.zeros(3)
    radius = np.full(3, 2000.0)
    age = np.full(3, 1000.0)
    floor = np.array([-113.0, -140.0, -140.0])
    signal = floor + np.array([30.0, 15.0, 45.0])  # the far cell is the heaviest
    score = np.array([1.0, 2.0, 4.0])
    found, group = fast_cell_groups(lat, lon, radius, age, signal, floor, score)
    assert group.tolist() == [1, 1, 0]
    assert found[0] == (lat[2], 0.0, 2000.0, 4.0)  # one cell: its radius
    # Weighted tenfold per 15 dB above each radio's floor: 10:1.
    assert found[1][0] == pytest.approx(lat[0] + (lat[1] - lat[0]) / 11, abs=1e-12)
    assert found[1][3] == 3.0


def test_aggregate_cell_groups_propagates_nan() -> None:
    lat, lon, radius, age, signal, floor, score = random_cells(np.random.default_rng(3), 3, 100.0)
    radius[:] = 1000.0
    signal[1] = math.nan
    found, group = fast_cell_groups(lat, lon, radius, age, signal, floor, score)
    # The NaN weight ranks last but its cell still overlaps the seed's disc.
    assert group.tolist() == [0, 0, 0]
    assert all(math.isnan(v) for v in found[0][:3])
    want, _ = reference.aggregate_cell_groups(lat, lon, radius, age, signal, floor, score,
                                              *CELL_BOUNDS)  # fmt: skip
    assert all(math.isnan(v) for v in want[0][:3])


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


def test_kernels_reject_arrays_of_different_lengths() -> None:
    three, two = np.zeros(3), np.zeros(2)
    mask = np.empty(3, dtype=np.uint8)
    with pytest.raises(ValueError, match="length"):
        _fast.cluster_weights(three, three, two, np.empty(3))
    with pytest.raises(ValueError, match="length"):
        _fast.cell_weights(three, three, three, two, 1e3, 5e4, np.empty(3))
    with pytest.raises(ValueError, match="length"):
        _fast.weighted_position(three, two, three)
    with pytest.raises(ValueError, match="length"):
        _fast.percentile95_distance_m(0.0, 0.0, three, two)
    with pytest.raises(ValueError, match="length"):
        _fast.select_sample(two, 1, mask)
    with pytest.raises(ValueError, match="length"):
        _fast.aggregate_cluster(three, three, three, three, three, two, 20, 10.0, 500.0, mask)
    with pytest.raises(ValueError, match="length"):
        _fast.aggregate_cell_groups(three, three, three, two, three, three, three, 1e3, 5e4,
                                    1e3, 5e4, np.empty(3, dtype=np.int64))  # fmt: skip


def test_kernels_reject_float32_arrays() -> None:
    values = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match="dtype mismatch"):
        _fast.weighted_position(values, values, values)
    with pytest.raises(ValueError, match="dtype mismatch"):
        _fast.aggregate_cluster(
            values,
            values,
            values,
            values,
            values,
            values,
            20,
            10.0,
            500.0,
            np.empty(3, dtype=np.uint8),
        )
