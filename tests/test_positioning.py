"""The public positioning API and the worked examples of spec/locate.md 4.5-4.7.

The kernels behind it are compared with SciPy in tests/_fast; here the
boundary is checked (dtype conversion, shapes, argument errors, the sample
mask) and every worked example of the spec gets its own test, through a
small helper that prepares the inputs as the locate service does (spec 4.5
step 1) and rounds the results to 7 decimals as the service does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ichnaea import positioning
from ichnaea._fast import reference

BASE_LAT, BASE_LON = 51.5, -0.1
FACTORY_SCORE = 0.05  # station_score of a new station with one sample (spec 4.3)

# spec 4.5 / 4.6 parameters: (max_distance_m, min_signal_dbm, max_networks,
# min_accuracy_m, max_accuracy_m)
WIFI = (500.0, -100.0, 20, 10.0, 500.0)
BLUE = (100.0, -127.0, 10, 10.0, 50.0)


def locate_macs(
    lats: Sequence[float],
    lons: Sequence[float],
    *,
    signals: Sequence[float | None] | None = None,
    ages: Sequence[float | None] | None = None,
    scores: Sequence[float] | None = None,
    radii: Sequence[float] | None = None,
    kind: tuple[float, float, int, float, float] = WIFI,
) -> list[tuple[float, float, float, float]]:
    """Cluster and aggregate as the service does; (lat, lon, accuracy, score).

    Station radii default to NULL (NaN), which weighs as 30 m: the spec's
    examples give none, and the original never used them (spec 4.5 step 2).
    """
    max_distance_m, min_signal, max_networks, min_accuracy_m, max_accuracy_m = kind
    n = len(lats)
    # spec 4.5 step 1: age = max(|age or 0|, 1000), signal = signal or default.
    age = np.array([max(abs(a or 0.0), 1000.0) for a in (ages or [None] * n)])
    signal = np.array([s or min_signal for s in (signals or [None] * n)], dtype=np.float64)
    score = np.array(scores or [FACTORY_SCORE] * n, dtype=np.float64)
    radius = np.array(radii or [math.nan] * n, dtype=np.float64)
    lat, lon = np.asarray(lats, dtype=np.float64), np.asarray(lons, dtype=np.float64)
    results = []
    for members in positioning.cluster_networks(lat, lon, max_distance_m=max_distance_m):
        found = positioning.aggregate_cluster_position(
            lat[members],
            lon[members],
            age[members],
            signal[members],
            score[members],
            radius[members],
            max_networks=max_networks,
            min_accuracy_m=min_accuracy_m,
            max_accuracy_m=max_accuracy_m,
        )
        results.append(
            (round(found.lat, 7), round(found.lon, 7), round(found.accuracy_m, 7), found.score)
        )
    return results


def cell_groups(
    lats: Sequence[float],
    lons: Sequence[float],
    radii: Sequence[float],
    scores: Sequence[float],
    signal_dbm: Sequence[float] | None = None,
    floor_dbm: float = -113.0,  # gsm
) -> list[positioning.CellPosition]:
    n = len(lats)
    signal = [floor_dbm] * n if signal_dbm is None else signal_dbm
    return positioning.group_cells(lats, lons, radii, [1000.0] * n, signal, [floor_dbm] * n, scores)


def cell_area(
    lats: Sequence[float], lons: Sequence[float], radii: Sequence[float], scores: Sequence[float]
) -> positioning.CellPosition:
    """The one group the cells form."""
    (found,) = cell_groups(lats, lons, radii, scores)
    return found


# ---------------------------------------------------------------------------
# spec 4.5 and 4.6 worked examples (Wi-Fi and Bluetooth)
# ---------------------------------------------------------------------------


def test_two_wifis_10_m_apart() -> None:
    found = locate_macs([BASE_LAT, 51.50009], [BASE_LON] * 2)
    # The 95th percentile is about 5 m, raised to the 10 m minimum.
    assert found == [(51.500045, BASE_LON, 10.0, pytest.approx(0.1))]


def test_two_wifis_400_m_apart() -> None:
    found = locate_macs([BASE_LAT, BASE_LAT + 0.0036], [BASE_LON] * 2)
    assert found == [(51.5018, BASE_LON, 200.2641902, pytest.approx(0.1))]


def test_two_wifis_500_66_m_apart_form_no_cluster() -> None:
    assert locate_macs([BASE_LAT, BASE_LAT + 0.0045], [BASE_LON] * 2) == []


def test_three_wifis_with_missing_and_invalid_signals() -> None:
    # Signals -50, omitted, and -130 (invalid: the schema drops it, so -100).
    found = locate_macs(
        [BASE_LAT, BASE_LAT + 1e-5, BASE_LAT + 2e-5], [BASE_LON] * 3, signals=[-50, None, None]
    )
    # Decision (issue 11): weights 10^(signal / 15) / radius, so the network
    # heard at -50 dBm outweighs the two at -100 about 2,000 to 1; the
    # original (score / signal², then least squares) answered 51.500005.
    assert found == [(BASE_LAT, BASE_LON, 10.0, pytest.approx(0.15))]


def test_three_bluetooth_beacons_with_missing_and_invalid_signals() -> None:
    # Signals -50, -150 (invalid, so -127) and omitted (-127).
    found = locate_macs(
        [BASE_LAT, BASE_LAT + 1e-5, BASE_LAT + 2e-5],
        [BASE_LON] * 3,
        signals=[-50, None, None],
        kind=BLUE,
    )
    # Issue 11's weights (see the Wi-Fi case); the original: lat +0.0000035.
    assert found == [(BASE_LAT, BASE_LON, 10.0, pytest.approx(0.15))]


def test_weights_test_of_four_wifis() -> None:
    # Signals -10..-100 and ages 0, 8000, 16000, omitted. Issue 11's weights
    # put nearly all the weight on the -10 dBm network (the original's least
    # squares answered (51.5000009, -0.0999994), accuracy 39.507531).
    i = np.arange(4)
    found = locate_macs(
        (BASE_LAT + i * 0.0001).tolist(),
        (BASE_LON + i * 0.00012).tolist(),
        signals=[-10, -40, -70, -100],
        ages=[0, 8000, 16000, None],
    )
    assert found == [(51.5000005, -0.0999994, 39.5457688, pytest.approx(0.2))]


def test_two_wifis_with_different_samples() -> None:
    # Scores 0.564 (50 samples) and 0.664 (100 samples), signals -60 and -80.
    found = locate_macs(
        [BASE_LAT] * 2,
        [BASE_LON, BASE_LON + 0.00001],
        signals=[-60, -80],
        scores=[0.564, 0.664],
    )
    # Issue 11's weights: -60 dBm outweighs -80 dBm 21.5 to 1 (the scores
    # no longer weigh); the original answered lon +0.000004.
    assert found == [(BASE_LAT, round(BASE_LON + 0.0000004, 7), 10.0, pytest.approx(1.228))]
    assert found[0][3] > 1.0


def test_two_bluetooth_beacons_with_different_samples() -> None:
    found = locate_macs(
        [BASE_LAT] * 2,
        [BASE_LON, BASE_LON + 0.00001],
        signals=[-80, -90],
        scores=[0.564, 0.664],
        kind=BLUE,
    )
    # Issue 11's weights: -80 dBm outweighs -90 dBm 4.6 to 1; the original
    # (scores and signal²) answered lon +0.0000048.
    assert [(lat, lon) for lat, lon, *_ in found] == [(BASE_LAT, round(BASE_LON + 0.0000018, 7))]


def test_outlier_wifi_is_removed() -> None:
    found = locate_macs(
        [BASE_LAT, BASE_LAT + 0.00001, BASE_LAT + 0.00002, BASE_LAT + 1.0], [BASE_LON] * 4
    )
    assert found == [(BASE_LAT + 0.00001, BASE_LON, 10.0, pytest.approx(0.15))]


def test_two_clusters_1_degree_apart_are_both_returned() -> None:
    # Three weak wifis at the base, two strong ones sharing a position 1°
    # away: the smaller cluster has the higher summed score (what best()
    # picks, test_cluster_score_over_size) and, its members coinciding, the
    # minimum accuracy.
    found = locate_macs(
        [BASE_LAT, BASE_LAT + 0.00001, BASE_LAT + 0.00002, BASE_LAT + 1.0, BASE_LAT + 1.0],
        [BASE_LON] * 5,
        scores=[0.05, 0.05, 0.05, 1.0, 1.0],
    )
    assert found == [
        (BASE_LAT + 0.00001, BASE_LON, 10.0, pytest.approx(0.15)),
        (BASE_LAT + 1.0, BASE_LON, 10.0, pytest.approx(2.0)),
    ]
    assert max(found, key=lambda result: result[3])[0] == BASE_LAT + 1.0


def test_three_wifis_on_a_meridian_keep_the_pair() -> None:
    # spec 4.5: 0 m, 200 m and 600 m give {0 m, 200 m} and {600 m}; the
    # single network is discarded.
    lat = BASE_LAT + np.array([0.0, 200.0, 600.0]) / 111_000.0
    clusters = positioning.cluster_networks(lat, [BASE_LON] * 3, max_distance_m=500.0)
    assert [c.tolist() for c in clusters] == [[0, 1]]


# ---------------------------------------------------------------------------
# spec 4.7 worked examples (cells)
# ---------------------------------------------------------------------------


def test_cell_with_factory_radius_has_minimum_accuracy() -> None:
    found = cell_area([BASE_LAT], [BASE_LON], [500.0], [0.5])
    assert (found.lat, found.lon, found.accuracy_m, found.score) == (
        BASE_LAT,
        BASE_LON,
        1000.0,
        0.5,
    )
    assert found.members.tolist() == [0]


def test_cell_radius_15000_is_its_accuracy() -> None:
    assert cell_area([BASE_LAT], [BASE_LON], [15000.0], [0.5]).accuracy_m == 15000.0


def test_cell_radius_above_50000_is_clamped() -> None:
    assert cell_area([BASE_LAT], [BASE_LON], [75000.0], [0.5]).accuracy_m == 50000.0


def test_two_cells_1_degree_apart_are_two_answers_not_their_middle() -> None:
    # Spec 4.7's example (one area, samples 100 and 10) gave the point a
    # third of the way between cells 130 km apart, with a 50 km accuracy. A
    # decision of issue 11: no device hears two cells whose discs (500 m
    # radius, counted as 1 km) are that far apart, so they are two groups,
    # two answers with their own radii; the best of them is answered.
    found = cell_groups(
        [BASE_LAT, BASE_LAT + 1.0], [BASE_LON, BASE_LON + 1.0], [500.0, 500.0], [0.664, 0.332]
    )
    assert [(g.lat, g.lon, g.accuracy_m, g.score, g.members.tolist()) for g in found] == [
        (BASE_LAT, BASE_LON, 1000.0, 0.664, [0]),
        (BASE_LAT + 1.0, BASE_LON + 1.0, 1000.0, 0.332, [1]),
    ]


def test_overlapping_cells_are_weighted_by_signal_and_radius() -> None:
    # A decision of issue 11 (the original weighted by score / signal² and
    # ignored the radius of several cells, its accuracy the 95th percentile
    # of the distances): tenfold per 15 dB above the radio's floor, divided
    # by the radius² (bounded to [1 km, 50 km]); the spread holds the radii.
    lats, lons = [BASE_LAT, BASE_LAT + 0.01], [BASE_LON, BASE_LON]
    equal = cell_area(lats, lons, [2000.0, 2000.0], [1.0, 1.0])
    assert equal.lat == pytest.approx(BASE_LAT + 0.005, abs=1e-12)
    # The spread: sqrt(Σ w (d² + r²) / Σ w), each cell 556 m from the mean.
    assert equal.accuracy_m == pytest.approx(math.hypot(556.0, 2000.0), rel=1e-3)
    (louder,) = cell_groups(lats, lons, [2000.0, 2000.0], [1.0, 1.0], [-83.0, -98.0])
    assert louder.lat == pytest.approx(BASE_LAT + 0.01 / 11, abs=1e-12)
    smaller = cell_area(lats, lons, [1000.0, 3000.0], [1.0, 1.0])
    assert smaller.lat == pytest.approx(BASE_LAT + 0.001, abs=1e-12)  # 9:1
    assert smaller.score == 2.0 and smaller.members.tolist() == [0, 1]


# ---------------------------------------------------------------------------
# Quirk Q1
# ---------------------------------------------------------------------------


def test_sample_keeps_the_heaviest_networks_in_place_of_q1() -> None:
    # 25 wifis, max_networks 20: the 20 heaviest (strongest signal, smallest
    # radius) are used, a decision of issue 11 (the old service used the 20
    # lowest scores); ties keep input order; the result's score is the sum
    # over all 25, whatever the scores.
    n = 25
    signal = np.full(n, -70.0)
    signal[[3, 9, 17]] = -95.0  # the three weakest
    radius = np.full(n, 50.0)
    radius[[0, 5]] = 200.0  # two more below the rest
    score = np.linspace(1.0, 0.1, n)
    lat = BASE_LAT + np.arange(n) * 1e-6
    found = positioning.aggregate_cluster_position(
        lat,
        np.full(n, BASE_LON),
        np.full(n, 1000.0),
        signal,
        score,
        radius,
        max_networks=20,
        min_accuracy_m=10.0,
        max_accuracy_m=500.0,
    )
    expected = np.ones(n, dtype=bool)
    expected[[0, 3, 5, 9, 17]] = False
    assert_array_equal(found.sample_mask, expected)
    assert found.score == pytest.approx(score.sum())


def test_sample_ties_keep_input_order() -> None:
    found = positioning.aggregate_cluster_position(
        [1.0, 1.0, 1.0, 1.0],
        [2.0, 2.0, 2.0, 2.0],
        [1000.0] * 4,
        [-50.0] * 4,
        [0.5, 0.7, 0.5, 0.5],
        [50.0] * 4,
        max_networks=2,
        min_accuracy_m=10.0,
        max_accuracy_m=500.0,
    )
    assert found.sample_mask.tolist() == [True, True, False, False]


# ---------------------------------------------------------------------------
# The boundary
# ---------------------------------------------------------------------------


def random_cluster(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        BASE_LAT + rng.normal(0.0, 0.001, n),
        BASE_LON + rng.normal(0.0, 0.0015, n),
        np.maximum(rng.uniform(0.0, 16000.0, n).round(), 1000.0),
        rng.uniform(-100.0, -10.0, n).round(),
        rng.uniform(0.05, 10.0, n),
        rng.uniform(10.0, 400.0, n).round(),  # station radii
    ]


def test_cluster_networks_needs_two_networks() -> None:
    assert positioning.cluster_networks([], [], max_distance_m=500.0) == []
    assert positioning.cluster_networks([BASE_LAT], [BASE_LON], max_distance_m=500.0) == []


def test_cluster_networks_returns_clusters_in_order_of_first_member() -> None:
    lat = BASE_LAT + np.array([0.0, 2.0, 0.00001, 1.0, 2.00001, 1.00001, 3.0])
    clusters = positioning.cluster_networks(lat, np.full(7, BASE_LON), max_distance_m=500.0)
    assert [c.tolist() for c in clusters] == [[0, 2], [1, 4], [3, 5]]
    assert all(c.dtype == np.int64 for c in clusters)


def test_cluster_networks_matches_scipy() -> None:
    lat, lon, *_ = random_cluster(3, 60)
    labels = reference.cluster_complete_linkage(lat, lon, 100.0)
    expected = [np.flatnonzero(labels == k) for k in range(labels.max() + 1)]
    expected = [members for members in expected if members.size >= 2]
    clusters = positioning.cluster_networks(lat, lon, max_distance_m=100.0)
    assert [c.tolist() for c in clusters] == [e.tolist() for e in expected]


def test_cluster_networks_never_clusters_nan_positions() -> None:
    clusters = positioning.cluster_networks(
        [BASE_LAT, math.nan, BASE_LAT], [BASE_LON, BASE_LON, BASE_LON], max_distance_m=500.0
    )
    assert [c.tolist() for c in clusters] == [[0, 2]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_cluster_networks_converts_dtypes(dtype: type) -> None:
    lat = np.array([10, 10, 11, 12, 12], dtype=dtype)
    lon = np.array([20, 20, 20, 20, 20], dtype=dtype)
    clusters = positioning.cluster_networks(lat, lon, max_distance_m=1.0)
    assert [c.tolist() for c in clusters] == [[0, 1], [3, 4]]


def test_cluster_networks_accepts_lists_and_read_only_arrays() -> None:
    lat, lon, *_ = random_cluster(4, 30)
    lat.flags.writeable = False
    from_arrays = positioning.cluster_networks(lat, lon, max_distance_m=100.0)
    from_lists = positioning.cluster_networks(lat.tolist(), lon.tolist(), max_distance_m=100.0)
    assert [c.tolist() for c in from_arrays] == [c.tolist() for c in from_lists]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aggregate_cluster_position_matches_reference_after_float64_conversion(
    dtype: type,
) -> None:
    arrays = [a.astype(dtype) for a in random_cluster(5, 30)]
    found = positioning.aggregate_cluster_position(
        *arrays, max_networks=20, min_accuracy_m=10.0, max_accuracy_m=500.0
    )
    lat, lon, accuracy, score, sample = reference.aggregate_cluster(
        *(a.astype(np.float64) for a in arrays), 20, 10.0, 500.0
    )
    assert found.lat == pytest.approx(lat, abs=1e-6)
    assert found.lon == pytest.approx(lon, abs=1e-6)
    assert found.accuracy_m == pytest.approx(accuracy, rel=1e-9)
    assert found.score == pytest.approx(score, rel=1e-12)
    assert found.sample_mask.dtype == np.bool_
    assert_array_equal(found.sample_mask, sample)


def test_aggregate_cluster_position_accepts_non_contiguous_arrays() -> None:
    arrays = random_cluster(6, 40)
    strided = [a[::2] for a in arrays]
    found = positioning.aggregate_cluster_position(
        *strided, max_networks=20, min_accuracy_m=10.0, max_accuracy_m=500.0
    )
    copied = positioning.aggregate_cluster_position(
        *(a.copy() for a in strided), max_networks=20, min_accuracy_m=10.0, max_accuracy_m=500.0
    )
    assert (found.lat, found.lon, found.accuracy_m) == (copied.lat, copied.lon, copied.accuracy_m)


def test_aggregate_cluster_position_results_are_frozen() -> None:
    found = positioning.aggregate_cluster_position(
        *random_cluster(7, 3), max_networks=20, min_accuracy_m=10.0, max_accuracy_m=500.0
    )
    with pytest.raises(AttributeError):
        found.lat = 0.0  # type: ignore[misc]


def test_aggregate_cluster_position_rejects_bad_input() -> None:
    good = random_cluster(8, 3)
    options = {"max_networks": 20, "min_accuracy_m": 10.0, "max_accuracy_m": 500.0}
    with pytest.raises(ValueError, match="length"):
        positioning.aggregate_cluster_position(*good[:4], good[4][:2], good[5], **options)
    with pytest.raises(ValueError, match="one-dimensional"):
        positioning.aggregate_cluster_position(good[0].reshape(1, 3), *good[1:], **options)
    with pytest.raises(ValueError, match="at least one"):
        positioning.aggregate_cluster_position(*(np.empty(0) for _ in range(6)), **options)
    with pytest.raises(TypeError, match="real numbers"):
        positioning.aggregate_cluster_position(["a", "b", "c"], *good[1:], **options)
    with pytest.raises(TypeError, match="real numbers"):
        positioning.aggregate_cluster_position(np.ones(3, dtype=bool), *good[1:], **options)
    with pytest.raises(ValueError, match="max_networks"):
        positioning.aggregate_cluster_position(*good, **{**options, "max_networks": 0})
    with pytest.raises(TypeError):
        positioning.aggregate_cluster_position(*good, **{**options, "max_networks": 2.5})
    with pytest.raises(ValueError, match="min_accuracy_m"):
        positioning.aggregate_cluster_position(*good, **{**options, "min_accuracy_m": math.nan})


def test_aggregate_cluster_position_with_nan_input_is_nan() -> None:
    arrays = random_cluster(9, 4)
    arrays[3][1] = math.nan
    found = positioning.aggregate_cluster_position(
        *arrays, max_networks=20, min_accuracy_m=10.0, max_accuracy_m=500.0
    )
    assert math.isnan(found.lat) and math.isnan(found.lon) and math.isnan(found.accuracy_m)


def test_cluster_networks_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="length"):
        positioning.cluster_networks([1.0, 2.0], [1.0], max_distance_m=500.0)
    with pytest.raises(ValueError, match="max_distance_m"):
        positioning.cluster_networks([1.0, 2.0], [1.0, 2.0], max_distance_m=-1.0)
    with pytest.raises(ValueError, match="max_distance_m"):
        positioning.cluster_networks([1.0, 2.0], [1.0, 2.0], max_distance_m=math.nan)
    with pytest.raises(TypeError, match="real numbers"):
        positioning.cluster_networks(["x", "y"], [1.0, 2.0], max_distance_m=500.0)


def test_group_cells_matches_reference() -> None:
    lat, lon, age, signal, score, _ = random_cluster(10, 6)
    radius = np.full(6, 2000.0)
    floor = np.full(6, -140.0)
    found = positioning.group_cells(lat.astype(np.float32), lon, radius, age, signal, floor, score)
    want, group = reference.aggregate_cell_groups(
        lat.astype(np.float32).astype(np.float64), lon, radius, age, signal, floor, score,
        1000.0, 50000.0, 1000.0, 50000.0,
    )  # fmt: skip
    assert len(found) == len(want) >= 1
    for g, (position, expected) in enumerate(zip(found, want, strict=True)):
        got = (position.lat, position.lon, position.accuracy_m, position.score)
        assert got == pytest.approx(expected, rel=1e-12)
        assert position.members.tolist() == np.flatnonzero(group == g).tolist()


def test_group_cells_rejects_bad_input() -> None:
    assert positioning.group_cells([], [], [], [], [], [], []) == []
    with pytest.raises(ValueError, match="length"):
        positioning.group_cells([1.0], [1.0, 2.0], [1.0], [1.0], [1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="max_accuracy_m"):
        positioning.group_cells(
            [1.0], [1.0], [1.0], [1.0], [1.0], [1.0], [1.0], max_accuracy_m=-5.0
        )
