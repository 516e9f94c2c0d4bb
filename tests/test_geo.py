"""The Python boundary of the geometry API: coercion, shapes and errors.

The numerics are tested against the reference in tests/_fast/test_geodesy.py;
these tests pin what ``ichnaea.geo`` promises its callers about types.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ichnaea import geo

# name -> (function, number of point arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "haversine_m": (geo.haversine_m, 4),
    "distance_m": (geo.distance_m, 4),
    "destination": (geo.destination, 4),
    "bbox": (geo.bbox, 3),
    "circle_radius_m": (geo.circle_radius_m, 6),
}


def outputs(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_scalars_in_give_python_scalars_out(name: str) -> None:
    function, arity = FUNCTIONS[name]
    for args in ([1.0] * arity, [np.float32(1.0)] * arity, [np.array(1.0)] * arity, [1] * arity):
        for out in outputs(function(*args)):
            assert type(out) is (int if name == "circle_radius_m" else float)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_arrays_in_give_arrays_of_the_broadcast_shape_out(name: str) -> None:
    function, arity = FUNCTIONS[name]
    column = np.linspace(1.0, 2.0, 3).reshape(3, 1)
    row = np.linspace(1.0, 2.0, 4)
    args = [column, row] + [1.5] * (arity - 2)
    expected_dtype = np.int64 if name == "circle_radius_m" else np.float64
    for out in outputs(function(*args)):
        assert isinstance(out, np.ndarray)
        assert out.shape == (3, 4)
        assert out.dtype == expected_dtype


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_scalar_centre_broadcasts_against_arrays(name: str) -> None:
    function, arity = FUNCTIONS[name]
    rng = np.random.default_rng(1)
    rest = [rng.uniform(0.0, 1.0, 5) for _ in range(arity - 2)]
    together = outputs(function(10.0, 20.0, *rest))
    for i in range(5):
        alone = outputs(function(10.0, 20.0, *(r[i] for r in rest)))
        for array, value in zip(together, alone, strict=True):
            assert array[i] == value


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_mismatched_shapes_raise_value_error(name: str) -> None:
    function, arity = FUNCTIONS[name]
    args = [np.zeros(3)] * (arity - 1) + [np.zeros(4)]
    with pytest.raises(ValueError, match="shapes do not match"):
        function(*args)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("bad", ["north", None, 1 + 2j, True, [object()]])
def test_non_numeric_input_raises_type_error(name: str, bad: Any) -> None:
    function, arity = FUNCTIONS[name]
    with pytest.raises(TypeError, match="must be real numbers"):
        function(*([1.0] * (arity - 1)), bad)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_read_only_and_strided_inputs_are_accepted_and_left_alone(name: str) -> None:
    function, arity = FUNCTIONS[name]
    rng = np.random.default_rng(2)
    base = [rng.uniform(0.0, 1.0, 20) for _ in range(arity)]
    read_only = [b.copy() for b in base]
    for array in read_only:
        array.flags.writeable = False
    strided = [np.repeat(b, 2)[::2] for b in base]
    assert not strided[0].flags.c_contiguous
    expected = outputs(function(*base))
    for args in (read_only, strided):
        for got, want in zip(outputs(function(*args)), expected, strict=True):
            assert_array_equal(got, want)
    for array, original in zip(read_only, base, strict=True):
        assert_array_equal(array, original)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_empty_arrays_give_empty_arrays(name: str) -> None:
    function, arity = FUNCTIONS[name]
    for out in outputs(function(*([[]] * arity))):
        assert out.shape == (0,)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int32, np.uint16, np.longdouble])
def test_any_real_dtype_is_converted_to_float64(dtype: type) -> None:
    lat = np.array([1, 2, 3], dtype=dtype)
    got = geo.distance_m(lat, lat, 0, 0)
    assert got.dtype == np.float64
    assert_array_equal(got, geo.distance_m(lat.astype(np.float64), lat.astype(np.float64), 0, 0))


@pytest.mark.parametrize("name", ["haversine_m", "distance_m", "destination", "bbox"])
def test_nan_input_gives_nan_output(name: str) -> None:
    function, arity = FUNCTIONS[name]
    for position in range(arity):
        args = [1.0] * arity
        args[position] = math.nan
        assert all(math.isnan(out) for out in outputs(function(*args)))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_circle_radius_raises_on_non_finite_radius(bad: float) -> None:
    with pytest.raises(ValueError, match="not finite"):
        geo.circle_radius_m(1.0, 1.0, 1.1, 1.1, 0.9, bad)
    with pytest.raises(ValueError, match="1 radius"):
        geo.circle_radius_m([1.0, bad], 1.0, 1.1, 1.1, 0.9, 0.9)


def test_max_distance_takes_a_scalar_centre_and_returns_a_float() -> None:
    radius = geo.max_distance_m(1, 1, np.array([1.0, 1.0], dtype=np.float32), [1, 1.1])
    assert type(radius) is float
    assert radius == geo.distance_m(1.0, 1.0, 1.0, 1.1)
    assert geo.max_distance_m(np.float64(1.0), np.array(1.0), [1.0], [1.0]) == 0.0
    with pytest.raises(ValueError, match="single point"):
        geo.max_distance_m(np.zeros(2), 0.0, [1.0], [1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shapes do not match"):
        geo.max_distance_m(0.0, 0.0, [1.0, 2.0], [1.0, 2.0, 3.0])


def test_max_distance_of_no_points_is_zero_and_nan_propagates() -> None:
    assert geo.max_distance_m(0.0, 0.0, [], []) == 0.0
    assert geo.max_distance_m(0.0, 0.0, np.empty((0, 3)), np.empty((0, 3))) == 0.0
    assert math.isnan(geo.max_distance_m(0.0, 0.0, [1.0, math.nan], [1.0, 1.0]))
    assert math.isnan(geo.max_distance_m(math.nan, 0.0, [1.0], [1.0]))


def test_max_distance_covers_every_point() -> None:
    rng = np.random.default_rng(4)
    lats = rng.uniform(50.0, 51.0, (10, 10))
    lons = rng.uniform(0.0, 1.0, (10, 10))
    radius = geo.max_distance_m(50.5, 0.5, lats, lons)
    assert radius == np.max(geo.distance_m(50.5, 0.5, lats, lons))


def test_distance_of_plain_floats_equals_the_array_path() -> None:
    rng = np.random.default_rng(5)
    lat1, lat2 = rng.uniform(-90, 90, (2, 500))
    lon1, lon2 = rng.uniform(-180, 180, (2, 500))
    expected = geo.distance_m(lat1, lon1, lat2, lon2)
    scalar = [
        geo.distance_m(*map(float, point)) for point in zip(lat1, lon1, lat2, lon2, strict=True)
    ]
    assert all(type(value) is float for value in scalar)
    assert_array_equal(scalar, expected)
    assert math.isnan(geo.distance_m(math.nan, 0.0, 1.0, 1.0))
