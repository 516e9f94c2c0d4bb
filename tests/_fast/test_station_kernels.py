"""The station-updater kernels against their NumPy reference, and spec 8's table.

Two kinds of test (STYLE rule 5): ``observation_weights``,
``aggregate_groups`` and ``max_distance_to_points`` of
``ichnaea._fast._station`` are compared with ``ichnaea._fast.reference`` on
random batches with unknown (NaN and 0) values, NaN positions, empty groups,
empty arrays, float32 and read-only input; and the weights are pinned to the
reference values of spec/pipeline.md section 8, compared at the precision
the spec prints them with.

These kernels convert their inputs to float64 themselves (the pipeline calls
them directly), so float32 input must give the reference's result on the
converted values.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import ichnaea._fast._station as station
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ichnaea._fast import reference

RTOL = 1e-12
ATOL_DEG = 1e-12
NAN = math.nan
BLUE, WIFI, CELL = station.KIND_BLUE, station.KIND_WIFI, station.KIND_CELL
GSM, WCDMA, LTE, NR = 0, 2, 3, 4


def weight(
    kind: int,
    accuracy: float = NAN,
    age: float = NAN,
    speed: float = NAN,
    signal: float = NAN,
    radio: float = NAN,
) -> float:
    """One observation's weight from the kernel."""
    radios = None if kind != CELL else [radio]
    return float(station.observation_weights(kind, [accuracy], [age], [speed], [signal], radios)[0])


def assert_printed(actual: float, printed: str) -> None:
    """``actual`` rounds to ``printed`` at the number of decimals printed."""
    decimals = len(printed.partition(".")[2])
    assert round(actual, decimals) == float(printed), (actual, printed)


# ---------------------------------------------------------------------------
# Spec 8 reference values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accuracy", "printed"),
    [
        (10, "1"),
        (20, "0.707"),
        (40, "0.5"),
        (80, "0.354"),
        (90, "0.333"),
        (100, "0.316"),
        (200, "0.224"),
        (200.1, "0"),
    ],
)
def test_accuracy_weight_reference_values(accuracy: float, printed: str) -> None:
    assert_printed(weight(WIFI, accuracy=accuracy, signal=-80), printed)


@pytest.mark.parametrize(("kind", "max_accuracy"), [(BLUE, 100.0), (WIFI, 200.0), (CELL, 1000.0)])
def test_accuracy_weight_is_zero_only_above_the_type_maximum(
    kind: int, max_accuracy: float
) -> None:
    assert weight(kind, accuracy=max_accuracy, radio=GSM) == pytest.approx(
        math.sqrt(10 / max_accuracy)
    )
    assert weight(kind, accuracy=max_accuracy + 0.1, radio=GSM) == 0.0


@pytest.mark.parametrize(
    ("age", "printed"),
    [
        (0, "1"),
        (2000, "1"),
        (4000, "0.707"),
        (5000, "0.632"),
        (8000, "0.5"),
        (18000, "0.333"),
        (20000, "0.316"),
        (20001, "0"),
        (-8000, "0.5"),
        (1000, "1"),
    ],
)
def test_age_weight_reference_values(age: float, printed: str) -> None:
    assert_printed(weight(BLUE, age=age), printed)


@pytest.mark.parametrize(
    ("speed", "printed"),
    [
        (0, "1"),
        (1, "1"),
        (2.5, "1"),
        (5, "1"),
        (10, "0.707"),
        (20, "0.5"),
        (45, "0.333"),
        (50, "0.316"),
        (50.1, "0"),
        (-20, "0.5"),
    ],
)
def test_speed_weight_reference_values(speed: float, printed: str) -> None:
    assert_printed(weight(BLUE, speed=speed), printed)


@pytest.mark.parametrize(
    ("signal", "printed"),
    [
        (-100, "0.482"),
        (-98.9, "0.5"),
        (-80, "1"),
        (-64.1, "2.0"),
        (-50.7, "4.0"),
        (-30, "16"),
        (-10, "123.46"),
    ],
)
def test_wifi_signal_weight_reference_values(signal: float, printed: str) -> None:
    assert_printed(weight(WIFI, signal=signal), printed)


@pytest.mark.parametrize(
    ("radio", "signal", "printed"),
    [
        (GSM, -113, "0.52"),
        (GSM, -95, "1"),
        (GSM, -79, "2.01"),
        (GSM, -51, "10.17"),
        (WCDMA, -121, "0.47"),
        (WCDMA, -100, "1"),
        (WCDMA, -25, "256"),
        (LTE, -140, "0.30"),
        (LTE, -105, "1"),
        (LTE, -43, "47.96"),
        (NR, -110, "1"),
        (NR, -80.7, "4.0"),
    ],
)
def test_cell_signal_weight_reference_values(radio: int, signal: float, printed: str) -> None:
    assert_printed(weight(CELL, signal=signal, radio=radio), printed)


@pytest.mark.parametrize(
    ("kind", "radio"), [(WIFI, NAN), (CELL, GSM), (CELL, WCDMA), (CELL, LTE), (CELL, NR)]
)
@pytest.mark.parametrize("unknown", [NAN, 0.0])
def test_unknown_values_give_weight_one(kind: int, radio: float, unknown: float) -> None:
    assert weight(kind, unknown, unknown, unknown, unknown, radio) == 1.0


def test_bluetooth_ignores_the_signal() -> None:
    assert weight(BLUE, signal=-30) == weight(BLUE, signal=-100) == 1.0


@pytest.mark.parametrize("radio", [1, 5, NAN])
def test_cell_of_radio_without_signal_rule_gets_weight_zero(radio: float) -> None:
    assert weight(CELL, signal=-80, radio=radio) == 0.0


@pytest.mark.parametrize(
    ("kind", "accuracy", "signal", "radio", "printed"),
    [
        (WIFI, 40, -30, NAN, "8.0"),
        (WIFI, 100, -30, NAN, "5.06"),
        (WIFI, 100, -10, NAN, "39.04"),
        (CELL, 160, -95, GSM, "0.25"),
        (CELL, 160, -51, GSM, "2.54"),
        (CELL, 160, -25, WCDMA, "64"),
        (CELL, 160, -43, LTE, "11.99"),
        (BLUE, 40, NAN, NAN, "0.5"),
        (BLUE, 100, NAN, NAN, "0.32"),
    ],
)
def test_combined_weight_examples(
    kind: int, accuracy: float, signal: float, radio: float, printed: str
) -> None:
    assert_printed(weight(kind, accuracy=accuracy, signal=signal, radio=radio), printed)


def test_station_examples_weights_of_spec_9_7() -> None:
    # The per-observation weights quoted in examples 10-12.
    assert weight(WIFI, accuracy=20, signal=-30) == pytest.approx(11.3137, abs=5e-5)
    assert weight(WIFI, accuracy=40, age=-8000, signal=-60) == pytest.approx(0.6104, abs=5e-5)
    assert weight(WIFI, accuracy=10, age=1000, signal=-90) == pytest.approx(0.6830, abs=5e-5)
    assert weight(WIFI, accuracy=10, speed=20) == pytest.approx(0.5)
    assert weight(BLUE, accuracy=20, signal=-30) == pytest.approx(0.7071, abs=5e-5)
    assert weight(BLUE, accuracy=40, age=-8000) == pytest.approx(0.25)
    assert weight(CELL, accuracy=20, signal=-51, radio=GSM) == pytest.approx(7.1901, abs=5e-5)
    assert weight(CELL, accuracy=1000, signal=-111, radio=GSM) == pytest.approx(0.0552, abs=5e-5)


# ---------------------------------------------------------------------------
# observation_weights vs reference
# ---------------------------------------------------------------------------


def weight_inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """accuracy, age, speed, signal, radio with unknown (NaN, 0) and out-of-range values."""
    accuracy = rng.uniform(-1200.0, 1200.0, n)
    age = rng.uniform(-25000.0, 25000.0, n)
    speed = rng.uniform(-60.0, 60.0, n)
    signal = rng.uniform(-150.0, -5.0, n)
    radio = rng.choice([0.0, 1.0, 2.0, 3.0, 4.0, NAN], n)
    for array in (accuracy, age, speed, signal):
        array[rng.random(n) < 0.1] = NAN
        array[rng.random(n) < 0.05] = 0.0
    return [accuracy, age, speed, signal, radio]


@pytest.mark.parametrize("kind", [BLUE, WIFI, CELL])
@pytest.mark.parametrize("n", [1, 10, 1000])
def test_weights_match_reference(kind: int, n: int) -> None:
    inputs = weight_inputs(np.random.default_rng(20250131 + n + kind), n)
    got = station.observation_weights(kind, *inputs)
    assert got.dtype == np.float64
    assert_allclose(got, reference.observation_weights(kind, *inputs), rtol=RTOL)
    if n == 1000:
        assert (got == 0.0).any() and (got > 0.0).any()


@pytest.mark.parametrize("kind", [BLUE, WIFI, CELL])
def test_weights_of_float32_input_match_reference_on_converted_values(kind: int) -> None:
    inputs = [a.astype(np.float32) for a in weight_inputs(np.random.default_rng(3), 300)]
    converted = [a.astype(np.float64) for a in inputs]
    assert_allclose(
        station.observation_weights(kind, *inputs),
        reference.observation_weights(kind, *converted),
        rtol=RTOL,
    )


def test_weights_accept_integer_radio_and_read_only_arrays() -> None:
    inputs = weight_inputs(np.random.default_rng(5), 100)
    inputs[4] = np.nan_to_num(inputs[4], nan=1.0).astype(np.int8)
    for array in inputs:
        array.flags.writeable = False
    assert_allclose(
        station.observation_weights(CELL, *inputs),
        reference.observation_weights(CELL, *inputs),
        rtol=RTOL,
    )


@pytest.mark.parametrize("kind", [BLUE, WIFI, CELL])
def test_weights_of_no_observations_are_empty(kind: int) -> None:
    empty = np.empty(0)
    assert station.observation_weights(kind, empty, empty, empty, empty, empty).shape == (0,)


@pytest.mark.parametrize("short", range(5))
def test_weights_reject_arrays_of_different_lengths(short: int) -> None:
    inputs: list[Any] = [np.zeros(4) for _ in range(5)]
    inputs[short] = np.zeros(3)
    with pytest.raises(ValueError, match="length"):
        station.observation_weights(CELL, *inputs)


def test_weights_reject_unknown_kind_missing_cell_radio_and_2d_input() -> None:
    values = np.zeros(2)
    with pytest.raises(ValueError, match="kind"):
        station.observation_weights(3, values, values, values, values, values)
    with pytest.raises(ValueError, match="radio"):
        station.observation_weights(CELL, values, values, values, values)
    with pytest.raises(ValueError, match="one-dimensional"):
        station.observation_weights(WIFI, np.zeros((2, 2)), values, values, values)


# ---------------------------------------------------------------------------
# aggregate_groups and max_distance_to_points vs reference
# ---------------------------------------------------------------------------


def group_inputs(
    rng: np.random.Generator, n_groups: int, spread_deg: float = 0.0005, nan_rate: float = 0.0
) -> tuple[np.ndarray, ...]:
    """lat, lon, weight, offsets of ``n_groups`` groups of 0-9 points, plus one centre each."""
    sizes = rng.integers(0, 10, n_groups)
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(sizes)
    center_lat = rng.uniform(-60.0, 70.0, n_groups)
    center_lon = rng.uniform(-180.0, 180.0, n_groups)
    # Spreads of a few metres to a few km, so both outcomes of the 100 m test occur.
    spread = spread_deg * 10.0 ** rng.uniform(-1.0, 1.5, n_groups)
    lat = np.repeat(center_lat, sizes) + rng.normal(0.0, 1.0, offsets[-1]) * np.repeat(
        spread, sizes
    )
    lon = np.repeat(center_lon, sizes) + rng.normal(0.0, 1.0, offsets[-1]) * np.repeat(
        spread, sizes
    )
    weights = rng.uniform(0.01, 20.0, offsets[-1])
    if nan_rate:
        lat[rng.random(lat.size) < nan_rate] = NAN
        weights[rng.random(lat.size) < nan_rate] = NAN
        center_lat[rng.random(n_groups) < 0.2] = NAN
    return lat, lon, weights, offsets, center_lat, center_lon


def assert_aggregates_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for name, expected in want.items():
        actual = got[name]
        assert actual.shape == expected.shape, name
        assert actual.dtype == expected.dtype, name
        if expected.dtype.kind == "f":
            assert_allclose(actual, expected, rtol=RTOL, atol=ATOL_DEG, err_msg=name)
        else:
            assert_array_equal(actual, expected, err_msg=name)


@pytest.mark.parametrize("n_groups", [1, 10, 500])
def test_aggregates_match_reference(n_groups: int) -> None:
    lat, lon, w, offsets, _, _ = group_inputs(np.random.default_rng(n_groups), n_groups)
    got = station.aggregate_groups(lat, lon, w, offsets, 100.0)
    assert_aggregates_equal(got, reference.aggregate_groups(lat, lon, w, offsets, 100.0))
    if n_groups == 500:
        assert got["consistent"].any() and not got["consistent"].all()
        assert (got["count"] == 0).any()


def test_aggregates_with_nan_positions_and_weights_match_reference() -> None:
    lat, lon, w, offsets, _, _ = group_inputs(np.random.default_rng(8), 300, nan_rate=0.05)
    got = station.aggregate_groups(lat, lon, w, offsets, 5000.0)
    assert_aggregates_equal(got, reference.aggregate_groups(lat, lon, w, offsets, 5000.0))
    nan_group = np.array([np.isnan(lat[a:b]).any() for a, b in itertools.pairwise(offsets)])
    assert nan_group.any()
    assert not got["consistent"][nan_group].any()
    assert (got["radius_m"][nan_group] == -1).all()


def test_aggregates_of_float32_input_match_reference_on_converted_values() -> None:
    lat, lon, w, offsets, _, _ = group_inputs(np.random.default_rng(9), 50, spread_deg=0.05)
    lat32, lon32, w32 = (a.astype(np.float32) for a in (lat, lon, w))
    got = station.aggregate_groups(lat32, lon32, w32, offsets.astype(np.int32), 5000.0)
    want = reference.aggregate_groups(
        lat32.astype(np.float64), lon32.astype(np.float64), w32.astype(np.float64), offsets, 5000.0
    )
    assert_aggregates_equal(got, want)


def test_aggregates_accept_read_only_arrays() -> None:
    arrays = group_inputs(np.random.default_rng(10), 40)
    for array in arrays:
        array.flags.writeable = False
    lat, lon, w, offsets, _, _ = arrays
    got = station.aggregate_groups(lat, lon, w, offsets, 100.0)
    assert_aggregates_equal(got, reference.aggregate_groups(lat, lon, w, offsets, 100.0))


def test_aggregates_of_no_observations() -> None:
    empty = np.empty(0)
    none = station.aggregate_groups(empty, empty, empty, [0], 100.0)
    assert all(values.shape == (0,) for values in none.values())
    two_empty = station.aggregate_groups(empty, empty, empty, [0, 0, 0], 100.0)
    assert_aggregates_equal(
        two_empty, reference.aggregate_groups(empty, empty, empty, [0, 0, 0], 100.0)
    )
    assert_array_equal(two_empty["count"], [0, 0])
    assert_array_equal(two_empty["radius_m"], [-1, -1])
    assert not two_empty["consistent"].any()
    assert np.isnan(two_empty["lat_deg"]).all()


def test_aggregate_of_the_five_point_example_of_spec_9_7() -> None:
    lat = [51.5, 51.5001, 51.4997, 51.5, 51.5]
    lon = [-0.1, -0.1, -0.1, -0.0998, -0.1004]
    got = station.aggregate_groups(lat, lon, np.ones(5), [0, 5], 100.0)
    assert_allclose(got["lat_deg"], [51.49996], atol=1e-9)
    assert_allclose(got["lon_deg"], [-0.10004], atol=1e-9)
    assert_array_equal(got["max_lat_deg"], [51.5001])
    assert_array_equal(got["min_lon_deg"], [-0.1004])
    assert_array_equal(got["radius_m"], [38])
    assert_array_equal(got["weight"], [5.0])
    assert_array_equal(got["count"], [5])
    assert got["consistent"].tolist() == [True]


def test_consistency_is_the_box_diagonal_at_most_the_maximum() -> None:
    # Two points 0.001° of latitude apart: their distance is the diagonal.
    lat, lon = [51.5, 51.501], [-0.1, -0.1]
    diagonal = float(reference.distance_m(51.5, -0.1, 51.501, -0.1))
    at = station.aggregate_groups(lat, lon, [1.0, 1.0], [0, 2], diagonal)
    below = station.aggregate_groups(lat, lon, [1.0, 1.0], [0, 2], math.nextafter(diagonal, 0))
    assert at["consistent"].tolist() == [True]
    assert below["consistent"].tolist() == [False]


def test_aggregate_centre_is_the_weighted_mean() -> None:
    got = station.aggregate_groups([10.0, 11.0], [20.0, 24.0], [3.0, 1.0], [0, 2], 1e6)
    assert_allclose(got["lat_deg"], [10.25])
    assert_allclose(got["lon_deg"], [21.0])
    assert_array_equal(got["weight"], [4.0])


def test_aggregate_of_zero_weights_has_no_centre() -> None:
    got = station.aggregate_groups([10.0, 10.0], [20.0, 20.0], [0.0, 0.0], [0, 2], 100.0)
    assert np.isnan(got["lat_deg"]).all()
    assert_array_equal(got["radius_m"], [-1])
    assert got["consistent"].tolist() == [True]


@pytest.mark.parametrize("short", range(3))
def test_aggregates_reject_arrays_of_different_lengths(short: int) -> None:
    inputs: list[Any] = [np.zeros(4) for _ in range(3)]
    inputs[short] = np.zeros(3)
    with pytest.raises(ValueError, match="length"):
        station.aggregate_groups(*inputs, [0, 3], 100.0)


@pytest.mark.parametrize(
    "offsets",
    [[], [0, 5], [-1, 2], [0, 3, 2], np.array([0.0, 2.0]), np.zeros((1, 2), dtype=np.int64)],
)
def test_aggregates_reject_bad_offsets(offsets: Any) -> None:
    values = np.zeros(4)
    with pytest.raises(ValueError, match="offsets"):
        station.aggregate_groups(values, values, values, offsets, 100.0)
    with pytest.raises(ValueError, match="offsets"):
        station.max_distance_to_points(values, values, offsets, [0.0], [0.0])


@pytest.mark.parametrize("nan_rate", [0.0, 0.05])
def test_max_distance_matches_reference(nan_rate: float) -> None:
    lat, lon, _, offsets, clat, clon = group_inputs(
        np.random.default_rng(12), 300, spread_deg=0.05, nan_rate=nan_rate
    )
    got = station.max_distance_to_points(lat, lon, offsets, clat, clon)
    want = reference.max_distance_to_points(lat, lon, offsets, clat, clon)
    assert_allclose(got, want, rtol=RTOL, atol=1e-6)
    assert np.isnan(got).any() == bool(nan_rate)


def test_max_distance_of_float32_and_read_only_input_matches_reference() -> None:
    lat, lon, _, offsets, clat, clon = group_inputs(np.random.default_rng(13), 60)
    lat32, lon32, clat32, clon32 = (a.astype(np.float32) for a in (lat, lon, clat, clon))
    for array in (lat32, lon32, clat32, clon32, offsets):
        array.flags.writeable = False
    got = station.max_distance_to_points(lat32, lon32, offsets, clat32, clon32)
    lat64, lon64, clat64, clon64 = (a.astype(np.float64) for a in (lat32, lon32, clat32, clon32))
    want = reference.max_distance_to_points(lat64, lon64, offsets, clat64, clon64)
    assert_allclose(got, want, rtol=RTOL, atol=1e-6)


def test_max_distance_is_nan_without_centre_and_zero_for_empty_group() -> None:
    got = station.max_distance_to_points(
        [51.5, 51.501], [-0.1, -0.1], [0, 2, 2, 2], [51.5, 51.5, NAN], [-0.1, -0.1, -0.1]
    )
    assert got[0] == pytest.approx(float(reference.distance_m(51.5, -0.1, 51.501, -0.1)))
    assert got[1] == 0.0
    assert math.isnan(got[2])
    empty = np.empty(0)
    assert station.max_distance_to_points(empty, empty, [0], empty, empty).shape == (0,)


def test_max_distance_rejects_centres_not_one_per_group() -> None:
    values = np.zeros(4)
    with pytest.raises(ValueError, match="length"):
        station.max_distance_to_points(values, values, [0, 2, 4], [0.0], [0.0])
    with pytest.raises(ValueError, match="length"):
        station.max_distance_to_points(values, values[:3], [0, 2, 3], [0.0, 0.0], [0.0, 0.0])
