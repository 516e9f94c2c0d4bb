"""The geodesy kernels against their NumPy reference, and golden values.

Two kinds of test (STYLE rule 5): every kernel in ``ichnaea._fast`` is
compared with ``ichnaea._fast.reference`` over float32 and float64 input,
read-only, empty and NaN input and random points (fixed seeds and a
derandomised hypothesis property); and the geodesy results are pinned to the
golden values of spec/locate.md section 4.1.

float32 input is converted to float64 at the Python boundary, so its results
must equal the float64 reference evaluated on the converted values; both
dtypes therefore use the same tolerance. Coordinates also get an absolute
tolerance: a relative one means nothing for a longitude near 0.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from ichnaea import _fast, constants, geo
from ichnaea._fast import reference

RTOL = 1e-12
ATOL_DEG = 1e-10  # ~10 µm
ATOL_M = 1e-6

HYPOTHESIS = settings(max_examples=300, deadline=None, derandomize=True, database=None)

lats = st.floats(-90.0, 90.0, allow_nan=False)
lons = st.floats(-180.0, 180.0, allow_nan=False)


# ---------------------------------------------------------------------------
# Kernel drivers: allocate the outputs, call the kernel, return the outputs.
# ---------------------------------------------------------------------------


def fast_haversine_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> tuple[np.ndarray, ...]:
    out = np.empty(len(lat1))
    _fast.haversine_m_array(lat1, lon1, lat2, lon2, out)
    return (out,)


def fast_haversine_rdist(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> tuple[np.ndarray, ...]:
    out = np.empty(len(lat1))
    _fast.haversine_rdist_array(lat1, lon1, lat2, lon2, out)
    return (out,)


def fast_distance_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> tuple[np.ndarray, ...]:
    out = np.empty(len(lat1))
    _fast.distance_m_array(lat1, lon1, lat2, lon2, out)
    return (out,)


def fast_destination(lat: Any, lon: Any, bearing: Any, dist: Any) -> tuple[np.ndarray, ...]:
    out_lat, out_lon = np.empty(len(lat)), np.empty(len(lat))
    _fast.destination_array(lat, lon, bearing, dist, out_lat, out_lon)
    return out_lat, out_lon


def fast_bbox(lat: Any, lon: Any, dist: Any) -> tuple[np.ndarray, ...]:
    outs = tuple(np.empty(len(lat)) for _ in range(4))
    _fast.bbox_array(lat, lon, dist, *outs)
    return outs


def fast_circle_radius_m(*args: Any) -> tuple[np.ndarray, ...]:
    out = np.empty(len(args[0]), dtype=np.int64)
    _fast.circle_radius_m_array(*args, out)
    return (out,)


def fast_m_to_rdist(dist: Any) -> tuple[np.ndarray, ...]:
    out = np.empty(len(dist))
    _fast.m_to_rdist_array(dist, out)
    return (out,)


def as_tuple(value: Any) -> tuple[np.ndarray, ...]:
    return value if isinstance(value, tuple) else (value,)


# ---------------------------------------------------------------------------
# Synthetic inputs: a mix of nearby pairs (what the service computes) and
# pairs anywhere on the globe, out-of-range latitudes and exact duplicates.
# ---------------------------------------------------------------------------


def pair_inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    lat1 = rng.uniform(-90.0, 90.0, n)
    lon1 = rng.uniform(-180.0, 180.0, n)
    near = rng.random(n) < 0.5
    lat2 = np.where(near, lat1 + rng.normal(0.0, 0.05, n), rng.uniform(-90.0, 90.0, n))
    lon2 = np.where(near, lon1 + rng.normal(0.0, 0.05, n), rng.uniform(-180.0, 180.0, n))
    lat2[::17] = lat1[::17]  # coincident points
    lon2[::17] = lon1[::17]
    lat1[5::23] = rng.uniform(-200.0, 200.0, lat1[5::23].size)  # out of range
    return [lat1, lon1, lat2, lon2]


def destination_inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    lat = rng.uniform(-90.0, 90.0, n)
    lon = rng.uniform(-180.0, 180.0, n)
    bearing = rng.uniform(-360.0, 720.0, n)
    dist = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-1.0, 7.3, n)
    return [lat, lon, bearing, dist]


def bbox_inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    lat = rng.uniform(-90.0, 90.0, n)
    lon = rng.uniform(-180.0, 180.0, n)
    dist = 10.0 ** rng.uniform(0.0, 6.5, n)
    return [lat, lon, dist]


def circle_inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    lat = rng.uniform(-80.0, 80.0, n)
    lon = rng.uniform(-179.0, 179.0, n)
    half_lat = rng.uniform(0.0, 0.5, n)
    half_lon = rng.uniform(0.0, 0.5, n)
    return [lat, lon, lat + half_lat, lon + half_lon, lat - half_lat, lon - half_lon]


def rdist_threshold_inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    dist = rng.uniform(-1e5, 2.2e7, n)
    dist[::7] = 10.0 ** rng.uniform(0.0, 5.0, dist[::7].size)
    return [dist]


# name -> (kernel driver, reference, input generator, per-output atol)
KERNELS: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], float]] = {
    "haversine_m": (fast_haversine_m, reference.haversine_m, pair_inputs, ATOL_M),
    "haversine_rdist": (fast_haversine_rdist, reference.haversine_rdist, pair_inputs, 1e-18),
    "distance_m": (fast_distance_m, reference.distance_m, pair_inputs, ATOL_M),
    "destination": (fast_destination, reference.destination, destination_inputs, ATOL_DEG),
    "bbox": (fast_bbox, reference.bbox, bbox_inputs, ATOL_DEG),
    "circle_radius_m": (fast_circle_radius_m, reference.circle_radius_m, circle_inputs, 0.0),
    "m_to_rdist": (fast_m_to_rdist, reference.m_to_rdist, rdist_threshold_inputs, 1e-18),
}

# name -> the public geo.py function (these must convert float32 etc.)
GEO_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "haversine_m": geo.haversine_m,
    "distance_m": geo.distance_m,
    "destination": geo.destination,
    "bbox": geo.bbox,
    "circle_radius_m": geo.circle_radius_m,
}


def assert_outputs_match(
    actual: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...], atol: float
) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.shape == want.shape
        if want.dtype.kind == "i":
            assert got.dtype == np.int64
            assert_array_equal(got, want)
        else:
            assert_allclose(got, want, rtol=RTOL, atol=atol)


# ---------------------------------------------------------------------------
# Kernel vs reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("n", [1, 10, 1000])
def test_kernel_matches_reference_on_random_points(name: str, n: int) -> None:
    kernel, ref, make_inputs, atol = KERNELS[name]
    inputs = make_inputs(np.random.default_rng(20250131 + n), n)
    assert_outputs_match(kernel(*inputs), as_tuple(ref(*inputs)), atol)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_accepts_read_only_arrays(name: str) -> None:
    kernel, ref, make_inputs, atol = KERNELS[name]
    inputs = make_inputs(np.random.default_rng(7), 50)
    for array in inputs:
        array.flags.writeable = False
    assert_outputs_match(kernel(*inputs), as_tuple(ref(*inputs)), atol)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_accepts_empty_arrays(name: str) -> None:
    kernel, ref, make_inputs, atol = KERNELS[name]
    inputs = make_inputs(np.random.default_rng(7), 0)
    outputs = kernel(*inputs)
    assert all(out.shape == (0,) for out in outputs)
    assert_outputs_match(outputs, as_tuple(ref(*inputs)), atol)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_propagates_nan_like_reference(name: str) -> None:
    kernel, ref, make_inputs, atol = KERNELS[name]
    inputs = make_inputs(np.random.default_rng(11), 40)
    for position, array in enumerate(inputs):
        array[position :: len(inputs) + 1] = math.nan
    outputs = kernel(*inputs)
    assert_outputs_match(outputs, as_tuple(ref(*inputs)), atol)
    hit = np.zeros(40, dtype=bool)
    for position in range(len(inputs)):
        hit[position :: len(inputs) + 1] = True
    for out in outputs:
        if out.dtype.kind == "i":
            assert (out[hit] == -1).all()  # circle_radius_m: no integer for NaN
        else:
            assert np.isnan(out[hit]).all()


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_rejects_arrays_of_different_lengths(name: str) -> None:
    kernel, _, make_inputs, _ = KERNELS[name]
    inputs = make_inputs(np.random.default_rng(3), 5)
    inputs[-1] = inputs[-1][:4]
    if len(inputs) == 1:
        # A single input: the mismatch is with the out array instead.
        out = np.empty(5)
        with pytest.raises(ValueError, match="length"):
            _fast.m_to_rdist_array(inputs[0], out)
        return
    with pytest.raises(ValueError, match="length"):
        kernel(*inputs)


def test_kernel_rejects_float32_arrays() -> None:
    # The kernels are float64 only; geo.py does the conversion.
    values = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match="dtype mismatch"):
        _fast.haversine_m_array(values, values, values, values, np.empty(3))


@pytest.mark.parametrize("name", sorted(GEO_FUNCTIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_geo_matches_reference_after_float64_conversion(name: str, dtype: type) -> None:
    _, ref, make_inputs, atol = KERNELS[name]
    inputs = [a.astype(dtype) for a in make_inputs(np.random.default_rng(5), 200)]
    converted = [a.astype(np.float64) for a in inputs]
    assert_outputs_match(as_tuple(GEO_FUNCTIONS[name](*inputs)), as_tuple(ref(*converted)), atol)


def test_distance_near_antipodes_is_vincenty_or_haversine() -> None:
    # Vincenty is ill-conditioned near the antipode, where the iteration may
    # or may not converge: there both a converged Vincenty value and the
    # haversine fallback are correct answers, and which one a pair gets may
    # depend on the last bit of the libm in use. Elsewhere see above.
    rng = np.random.default_rng(99)
    n = 20_000
    lat1 = rng.uniform(-2.0, 2.0, n)
    lon1 = rng.uniform(-180.0, 180.0, n)
    lat2 = -lat1 + rng.uniform(-1.0, 1.0, n)
    lon2 = lon1 + 180.0 + rng.uniform(-1.0, 1.0, n)
    (got,) = fast_distance_m(lat1, lon1, lat2, lon2)
    vincenty, converged = reference.vincenty_m(lat1, lon1, lat2, lon2)
    haversine = reference.haversine_m(lat1, lon1, lat2, lon2)
    assert 0 < converged.sum() < n  # both branches are exercised
    ok = np.isclose(got, haversine, rtol=RTOL) | np.isclose(got, vincenty, rtol=1e-9)
    assert ok.all()


def test_max_distance_matches_reference() -> None:
    rng = np.random.default_rng(13)
    for n in (0, 1, 10, 1000):
        points_lat = rng.uniform(-90.0, 90.0, n)
        points_lon = rng.uniform(-180.0, 180.0, n)
        points_lat.flags.writeable = False
        got = _fast.max_distance_m_array(10.0, 20.0, points_lat, points_lon)
        want = reference.max_distance_m(10.0, 20.0, points_lat, points_lon)
        assert_allclose(got, want, rtol=RTOL)
    assert _fast.max_distance_m_array(0.0, 0.0, np.empty(0), np.empty(0)) == 0.0
    with_nan = np.array([1.0, math.nan, 2.0])
    assert math.isnan(_fast.max_distance_m_array(0.0, 0.0, with_nan, with_nan))
    assert math.isnan(reference.max_distance_m(0.0, 0.0, with_nan, with_nan))


def test_reduced_distance_threshold_agrees_with_haversine() -> None:
    rng = np.random.default_rng(17)
    lat1, lon1, lat2, lon2 = pair_inputs(rng, 2000)
    (rdist,) = fast_haversine_rdist(lat1, lon1, lat2, lon2)
    (metres,) = fast_haversine_m(lat1, lon1, lat2, lon2)
    for threshold_m in (-1.0, 0.0, 10.0, 5000.0, 1e6, math.pi * constants.EARTH_RADIUS_M):
        (threshold,) = fast_m_to_rdist(np.full(1, threshold_m))
        # Compare away from the boundary, where rounding decides.
        clear = np.abs(metres - threshold_m) > 1e-6 * max(1.0, threshold_m)
        assert_array_equal((rdist <= threshold[0])[clear], (metres <= threshold_m)[clear])


@HYPOTHESIS
@given(lat1=lats, lon1=lons, lat2=lats, lon2=lons)
def test_distance_kernel_matches_reference_property(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    args = [np.array([v]) for v in (lat1, lon1, lat2, lon2)]
    (haversine,) = fast_haversine_m(*args)
    assert_allclose(haversine, reference.haversine_m(*args), rtol=RTOL, atol=ATOL_M)
    # Near the antipode see test_distance_near_antipodes_is_vincenty_or_haversine.
    assume(haversine[0] < 0.99 * math.pi * constants.EARTH_RADIUS_M)
    (distance,) = fast_distance_m(*args)
    assert_allclose(distance, reference.distance_m(*args), rtol=RTOL, atol=ATOL_M)
    assert distance[0] >= 0.0


@HYPOTHESIS
@given(
    lat=st.floats(-89.0, 89.0),
    lon=lons,
    bearing=st.floats(-360.0, 360.0),
    dist=st.floats(-1e7, 1e7),
)
def test_destination_round_trip_property(
    lat: float, lon: float, bearing: float, dist: float
) -> None:
    out_lat, out_lon = geo.destination(lat, lon, bearing, dist)
    want_lat, want_lon = reference.destination(lat, lon, bearing, dist)
    assert_allclose([out_lat, out_lon], [want_lat, want_lon], rtol=RTOL, atol=ATOL_DEG)
    # Going there and measuring the way back gives the distance again.
    assert geo.distance_m(lat, lon, out_lat, out_lon) == pytest.approx(abs(dist), abs=1e-3)


@HYPOTHESIS
@given(
    lat=st.floats(-80.0, 80.0),
    lon=st.floats(-179.0, 179.0),
    dlat=st.floats(0.0, 1.0),
    dlon=st.floats(0.0, 1.0),
)
def test_circle_radius_is_python_round_of_largest_corner_distance(
    lat: float, lon: float, dlat: float, dlon: float
) -> None:
    box = (lat + dlat, lon + dlon, lat - dlat, lon - dlon)
    corners = [
        geo.distance_m(lat, lon, box[0], box[1]),
        geo.distance_m(lat, lon, box[0], box[3]),
        geo.distance_m(lat, lon, box[2], box[1]),
        geo.distance_m(lat, lon, box[2], box[3]),
    ]
    radius = geo.circle_radius_m(lat, lon, *box)
    assert isinstance(radius, int)
    assert radius == round(max(corners))


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------


def test_compiled_constants_equal_python_constants() -> None:
    compiled = _fast.geodesy_constants()
    for name, value in compiled.items():
        assert getattr(constants, name) == value, name
        assert getattr(reference, name) == value, name
    assert compiled["MAX_LAT_DEG"] == constants.MAX_LAT_DEG == -constants.MIN_LAT_DEG
    assert compiled["MAX_LON_DEG"] == constants.MAX_LON_DEG == -constants.MIN_LON_DEG


# ---------------------------------------------------------------------------
# Golden values (spec/locate.md 4.1)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((90, 0, -90, 0), 20003931.4586),
        ((0, 0, 0.5, 179), 19902751.0326),
        ((0, 0, 0.5, 179.7), 19950277.9698),
        ((44.0337065, -79.4908184, 44.0349396, -79.4908184), 137.0133),
        ((1, 1, 1, 1.1), 11130.265),
        ((-100, -186, 0, 0), 11112616.8752),
    ],
)
def test_distance_golden_values(args: tuple[float, ...], expected: float) -> None:
    assert round(geo.distance_m(*args), 4) == expected


def test_haversine_golden_value() -> None:
    assert round(geo.haversine_m(90, 0, -90, 0), 4) == 20015115.0704


def test_distance_is_vincenty_not_haversine_over_short_distances() -> None:
    args = (44.0337065, -79.4908184, 44.0349396, -79.4908184)
    assert round(geo.distance_m(*args), 4) == 137.0133
    assert round(geo.haversine_m(*args), 4) == 137.1147


def test_distance_falls_back_to_haversine_when_vincenty_does_not_converge() -> None:
    _, converged = reference.vincenty_m(0, 0, 0.5, 179.7)
    assert not converged
    assert geo.distance_m(0, 0, 0.5, 179.7) == geo.haversine_m(0, 0, 0.5, 179.7)
    assert round(geo.distance_m(0, 0, 0.5, 179.7), 4) == 19950277.9698


def test_distance_of_identical_points_is_zero() -> None:
    assert geo.distance_m(51.5, -0.1, 51.5, -0.1) == 0.0
    assert geo.distance_m(-100.0, -186.0, -100.0, -186.0) == 0.0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((1, 1, 0, 1000), (1.0090437, 1.0)),
        ((1, 1, 90, 1000), (1.0, 1.0089845)),
        ((1, 1, 0, -1000), (0.9909563, 1.0)),
        ((1, 1, 90, -1000), (1.0, 0.9910155)),
        ((-100, -186, 60, 100000), (80.4166734, -181.3373112)),
    ],
)
def test_destination_golden_values(args: tuple[float, ...], expected: tuple[float, float]) -> None:
    lat, lon = geo.destination(*args)
    assert (round(lat, 7), round(lon, 7)) == expected


def test_local_scales_at_51_5_north() -> None:
    # 0.00009° lat ≈ 10.01 m, 0.001° lat ≈ 111.26 m, 0.001° lon ≈ 69.44 m,
    # 0.05° lat ≈ 5563 m.
    assert geo.distance_m(51.5, 0.0, 51.50009, 0.0) == pytest.approx(10.01, abs=0.005)
    assert geo.distance_m(51.5, 0.0, 51.501, 0.0) == pytest.approx(111.26, abs=0.005)
    assert geo.distance_m(51.5, 0.0, 51.5, 0.001) == pytest.approx(69.44, abs=0.005)
    assert geo.distance_m(51.5, 0.0, 51.55, 0.0) == pytest.approx(5563, abs=0.5)


def test_bbox_golden_values() -> None:
    max_lat, min_lat, max_lon, min_lon = geo.bbox(51.5, -0.1, 111.26)
    assert max_lat == pytest.approx(51.501, abs=1e-6)
    assert min_lat == pytest.approx(51.499, abs=1e-6)
    max_lat, min_lat, max_lon, min_lon = geo.bbox(51.5, -0.1, 69.44)
    assert max_lon == pytest.approx(-0.099, abs=1e-6)
    assert min_lon == pytest.approx(-0.101, abs=1e-6)
    # Latitude bounds are destinations at bearing 0, longitude bounds at 90.
    assert geo.bbox(1, 1, 1000) == (
        geo.destination(1, 1, 0, 1000)[0],
        geo.destination(1, 1, 0, -1000)[0],
        geo.destination(1, 1, 90, 1000)[1],
        geo.destination(1, 1, 90, -1000)[1],
    )
    assert tuple(round(v, 7) for v in geo.bbox(1, 1, 1000)) == (
        1.0090437,
        0.9909563,
        1.0089845,
        0.9910155,
    )


def test_bbox_is_clamped_to_web_mercator_and_dateline() -> None:
    assert geo.bbox(85.0, 179.99, 10_000) == pytest.approx(
        (85.051, 84.9104627, 180.0, 178.9628375), abs=1e-7
    )
    assert geo.bbox(-85.0, -179.99, 10_000) == pytest.approx(
        (-84.9104627, -85.051, -178.9628375, -180.0), abs=1e-7
    )


def test_bbox_does_not_reach_over_the_pole() -> None:
    # Documented quirk kept from the original: the northern bound is the
    # destination due north, which past the pole comes back down.
    max_lat, min_lat, _, _ = geo.bbox(89.0, 0.0, 1_000_000)
    assert max_lat == pytest.approx(82.0464505, abs=1e-7)
    assert min_lat == pytest.approx(80.0459608, abs=1e-7)


def test_circle_radius_golden_values() -> None:
    # The corner of a 0.05°-high box at 51.5°N is ~5563 m from the far edge.
    assert geo.circle_radius_m(51.5, -0.1, 51.55, -0.1, 51.5, -0.1) == 5563
    # A degenerate box at the centre has radius 0.
    assert geo.circle_radius_m(1.0, 1.0, 1.0, 1.0, 1.0, 1.0) == 0
    # The box of bbox(d) is reached at its corners, a bit beyond d.
    box = geo.bbox(51.5, -0.1, 1000.0)
    radius = geo.circle_radius_m(51.5, -0.1, box[0], box[2], box[1], box[3])
    assert radius == 1414  # ≈ √2 · 1000 m


def test_max_distance_golden_values() -> None:
    assert geo.max_distance_m(0.0, 0.0, [], []) == 0.0
    assert geo.max_distance_m(1, 1, [1, 1, 1], [1, 1.1, 1]) == pytest.approx(11130.265, abs=1e-3)
    assert geo.max_distance_m(90, 0, [-90, 0], [0, 0]) == pytest.approx(20003931.4586, abs=1e-4)


# ---------------------------------------------------------------------------
# Import surface
# ---------------------------------------------------------------------------


def test_missing_extension_fails_with_build_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import of the compiled module fail.
    monkeypatch.setitem(sys.modules, "ichnaea._fast._geodesy", None)
    monkeypatch.delitem(sys.modules, "ichnaea._fast")
    with pytest.raises(ImportError) as info:
        importlib.import_module("ichnaea._fast")
    message = str(info.value)
    assert "not built" in message
    assert "pip install -e ." in message
    assert "python setup.py build_ext --inplace" in message
    assert "make test" in message


def test_fast_exports_only_the_kernels() -> None:
    geodesy = {
        "bbox_array",
        "circle_radius_m_array",
        "destination_array",
        "distance_m_array",
        "geodesy_constants",
        "haversine_m_array",
        "haversine_rdist_array",
        "m_to_rdist_array",
        "max_distance_m_array",
    }
    assert geodesy <= set(_fast.__all__)
    # The station kernels' kind codes are the only non-functions.
    constants = {"KIND_BLUE", "KIND_CELL", "KIND_WIFI"}
    assert all(type(getattr(_fast, name)) is int for name in constants)
    functions = set(_fast.__all__) - constants
    # Nothing but the compiled entry points: no Python helpers leak out.
    assert all(
        type(getattr(_fast, name)).__name__
        in ("cython_function_or_method", "builtin_function_or_method")
        for name in functions
    )
