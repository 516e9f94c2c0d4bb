"""Public geometry API: distances, destinations and bounding boxes.

This module is the Python boundary in front of the compiled kernels in
``ichnaea._fast``. Each function accepts scalars or array-likes of any real
dtype (float32, float64, integers; read-only arrays are fine), broadcasts
them against each other, so that a scalar centre can be paired with arrays
of points, converts them to contiguous float64 arrays and lets the kernel
loop over them. Scalars in give Python scalars out; arrays in give arrays of
the broadcast shape out. Shapes that do not broadcast raise ``ValueError``,
non-numeric input raises ``TypeError``.

Latitudes, longitudes and bearings are degrees, distances metres. Two Earth
models are used (see ``ichnaea/_fast/_geodesy.pyx`` for the formulae):
``haversine_m`` is the great-circle distance on a sphere of radius
``EARTH_RADIUS_M``; ``distance_m`` is the Vincenty inverse distance on the
WGS-84 ellipsoid, which is what the rest of ichnaea uses, with the haversine
distance as the fallback for the nearly antipodal pairs where Vincenty's
iteration does not converge. ``destination``, ``bbox`` and hence the station
areas use the Vincenty direct formula.

NaN inputs give NaN outputs, except in ``circle_radius_m``, whose integer
result cannot hold NaN: there a non-finite radius raises ``ValueError``.
"""

from collections.abc import Sequence
from typing import overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ichnaea import _fast

__all__ = [
    "bbox",
    "circle_radius_m",
    "destination",
    "distance_m",
    "haversine_m",
    "max_distance_m",
]

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]

# Real numeric dtypes: signed and unsigned integers and floats (not bool,
# complex, strings or objects).
_NUMERIC_KINDS = frozenset("iuf")


def _coerce(
    names: Sequence[str], values: Sequence[ArrayLike]
) -> tuple[tuple[int, ...], list[Float64Array]]:
    """Broadcast ``values`` together and flatten each to contiguous float64.

    Returns the broadcast shape and one 1-D array of its size per value.
    Arrays that already are contiguous float64 of that shape are passed
    through without a copy (read-only ones included).
    """
    arrays = []
    for name, value in zip(names, values, strict=True):
        array = np.asarray(value)
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"{name} must be real numbers, got dtype {array.dtype}")
        arrays.append(array)
    # Fast paths for the common cases (equal shapes; scalars with one array
    # shape): np.broadcast_shapes and np.broadcast_to cost several
    # microseconds each, more than the kernel itself on a Wi-Fi scan.
    array_shapes = {array.shape for array in arrays if array.ndim}
    if len(array_shapes) <= 1:
        shape = array_shapes.pop() if array_shapes else ()
    else:
        try:
            shape = np.broadcast_shapes(*array_shapes)
        except ValueError:
            described = ", ".join(
                f"{name} {array.shape}" for name, array in zip(names, arrays, strict=True)
            )
            raise ValueError(f"shapes do not match: {described}") from None
    flat = []
    for array in arrays:
        if array.ndim == 0 and shape:
            flat.append(np.full(shape, array, dtype=np.float64).reshape(-1))
            continue
        if array.shape != shape:
            array = np.broadcast_to(array, shape)
        flat.append(np.ascontiguousarray(array, dtype=np.float64).reshape(-1))
    return shape, flat


def _result(out: Float64Array, shape: tuple[int, ...]) -> float | Float64Array:
    if shape == ():
        return float(out[0])
    return out.reshape(shape)


@overload
def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float: ...
@overload
def haversine_m(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> float | Float64Array: ...
def haversine_m(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> float | Float64Array:
    """Great-circle distance on a sphere of radius 6371.009 km.

    Parameters
    ----------
    lat1, lon1 : float or array_like
        First point(s), degrees.
    lat2, lon2 : float or array_like
        Second point(s), degrees; broadcast against the first.

    Returns
    -------
    float or ndarray of float64
        Distance in metres, in [0, π · 6371009]; NaN where an input is NaN.

    Raises
    ------
    ValueError
        If the input shapes do not broadcast.
    """
    shape, (a, b, c, d) = _coerce(("lat1", "lon1", "lat2", "lon2"), (lat1, lon1, lat2, lon2))
    out = np.empty(a.size, dtype=np.float64)
    _fast.haversine_m_array(a, b, c, d, out)
    return _result(out, shape)


@overload
def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float: ...
@overload
def distance_m(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> float | Float64Array: ...
def distance_m(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> float | Float64Array:
    """Distance on the WGS-84 ellipsoid (Vincenty inverse, haversine fallback).

    The Vincenty iteration runs while the auxiliary longitude changes by more
    than 1e-11 rad, for at most 25 passes; for the nearly antipodal pairs
    where it does not converge the haversine distance is returned instead.
    Inputs are not range-checked.

    Parameters
    ----------
    lat1, lon1 : float or array_like
        First point(s), degrees.
    lat2, lon2 : float or array_like
        Second point(s), degrees; broadcast against the first.

    Returns
    -------
    float or ndarray of float64
        Distance in metres, in [0, ~20004 km]; exactly 0 for identical
        points, NaN where an input is NaN.

    Raises
    ------
    ValueError
        If the input shapes do not broadcast.
    """
    if type(lat1) is float and type(lon1) is float and type(lat2) is float and type(lon2) is float:
        # The common scalar case (choosing among results), without the arrays.
        return _fast.distance_m_scalar(lat1, lon1, lat2, lon2)
    shape, (a, b, c, d) = _coerce(("lat1", "lon1", "lat2", "lon2"), (lat1, lon1, lat2, lon2))
    out = np.empty(a.size, dtype=np.float64)
    _fast.distance_m_array(a, b, c, d, out)
    return _result(out, shape)


@overload
def destination(
    lat: float, lon: float, bearing_deg: float, distance_m: float
) -> tuple[float, float]: ...
@overload
def destination(
    lat: ArrayLike, lon: ArrayLike, bearing_deg: ArrayLike, distance_m: ArrayLike
) -> tuple[float | Float64Array, float | Float64Array]: ...
def destination(
    lat: ArrayLike, lon: ArrayLike, bearing_deg: ArrayLike, distance_m: ArrayLike
) -> tuple[float | Float64Array, float | Float64Array]:
    """The point reached by travelling along a geodesic (Vincenty direct).

    Parameters
    ----------
    lat, lon : float or array_like
        Start point(s), degrees.
    bearing_deg : float or array_like
        Initial bearing, degrees clockwise from north.
    distance_m : float or array_like
        Distance, metres; a negative distance goes the opposite way.

    Returns
    -------
    lat, lon : float or ndarray of float64
        End point(s), degrees. The longitude is not normalised, e.g.
        ``destination(-100, -186, 60, 100000)`` is about (80.42, -181.34).
        NaN where an input is NaN or the iteration does not converge.

    Raises
    ------
    ValueError
        If the input shapes do not broadcast.
    """
    shape, (a, b, c, d) = _coerce(
        ("lat", "lon", "bearing_deg", "distance_m"), (lat, lon, bearing_deg, distance_m)
    )
    out_lat = np.empty(a.size, dtype=np.float64)
    out_lon = np.empty(a.size, dtype=np.float64)
    _fast.destination_array(a, b, c, d, out_lat, out_lon)
    return _result(out_lat, shape), _result(out_lon, shape)


@overload
def bbox(lat: float, lon: float, distance_m: float) -> tuple[float, float, float, float]: ...
@overload
def bbox(
    lat: ArrayLike, lon: ArrayLike, distance_m: ArrayLike
) -> tuple[
    float | Float64Array, float | Float64Array, float | Float64Array, float | Float64Array
]: ...
def bbox(
    lat: ArrayLike, lon: ArrayLike, distance_m: ArrayLike
) -> tuple[float | Float64Array, float | Float64Array, float | Float64Array, float | Float64Array]:
    """Bounding box reaching ``distance_m`` north, south, east and west.

    ``max_lat``/``min_lat`` are the latitudes of the destinations at bearing
    0° with +distance and -distance, clamped to ±85.051°; ``max_lon``/
    ``min_lon`` the longitudes of the destinations at bearing 90° with
    +distance and -distance, clamped to ±180° (a box crossing the
    antimeridian is therefore cut off at it). A distance that reaches over
    a pole comes back down on the other side, so such a box does not contain
    the pole: ``bbox(89, 0, 1_000_000)`` has ``max_lat`` ≈ 82.05.

    Parameters
    ----------
    lat, lon : float or array_like
        Centre(s), degrees.
    distance_m : float or array_like
        Half the box size, metres.

    Returns
    -------
    max_lat, min_lat, max_lon, min_lon : float or ndarray of float64
        The box, degrees; NaN where an input is NaN.

    Raises
    ------
    ValueError
        If the input shapes do not broadcast.
    """
    shape, (a, b, c) = _coerce(("lat", "lon", "distance_m"), (lat, lon, distance_m))
    outs = [np.empty(a.size, dtype=np.float64) for _ in range(4)]
    _fast.bbox_array(a, b, c, *outs)
    max_lat, min_lat, max_lon, min_lon = (_result(out, shape) for out in outs)
    return max_lat, min_lat, max_lon, min_lon


@overload
def circle_radius_m(
    lat: float, lon: float, max_lat: float, max_lon: float, min_lat: float, min_lon: float
) -> int: ...
@overload
def circle_radius_m(
    lat: ArrayLike,
    lon: ArrayLike,
    max_lat: ArrayLike,
    max_lon: ArrayLike,
    min_lat: ArrayLike,
    min_lon: ArrayLike,
) -> int | Int64Array: ...
def circle_radius_m(
    lat: ArrayLike,
    lon: ArrayLike,
    max_lat: ArrayLike,
    max_lon: ArrayLike,
    min_lat: ArrayLike,
    min_lon: ArrayLike,
) -> int | Int64Array:
    """Radius of the circle around a centre that covers a bounding box.

    This is the largest ``distance_m`` from the centre to the four corners of
    the box, rounded half to even (like Python's ``round``). The pipeline uses
    it as the ``radius`` of stations and areas.

    Parameters
    ----------
    lat, lon : float or array_like
        Centre(s), degrees.
    max_lat, max_lon, min_lat, min_lon : float or array_like
        Bounding box(es), degrees.

    Returns
    -------
    int or ndarray of int64
        Radius in metres, ≥ 0.

    Raises
    ------
    ValueError
        If the input shapes do not broadcast, or if a radius is not finite
        (an input is NaN or infinite): an integer radius cannot represent
        it, so the error is raised rather than returning a sentinel.
    """
    shape, arrays = _coerce(
        ("lat", "lon", "max_lat", "max_lon", "min_lat", "min_lon"),
        (lat, lon, max_lat, max_lon, min_lat, min_lon),
    )
    out = np.empty(arrays[0].size, dtype=np.int64)
    _fast.circle_radius_m_array(*arrays, out)
    # The kernel marks a non-finite radius with -1.
    invalid = np.flatnonzero(out < 0)
    if invalid.size:
        raise ValueError(
            f"circle_radius_m: {invalid.size} radius(es) not finite "
            f"(NaN or infinite input), first at flat index {invalid[0]}"
        )
    if shape == ():
        return int(out[0])
    return out.reshape(shape)


def max_distance_m(lat: float, lon: float, lats: ArrayLike, lons: ArrayLike) -> float:
    """Radius of the circle around a centre that covers a set of points.

    Parameters
    ----------
    lat, lon : float
        The centre, degrees (a scalar or a 0-d array).
    lats, lons : array_like
        The points, degrees; broadcast against each other.

    Returns
    -------
    float
        The largest ``distance_m`` from the centre to any point, metres;
        0.0 for an empty set of points, NaN if any distance is NaN.

    Raises
    ------
    ValueError
        If the centre is not a scalar or the point shapes do not broadcast.
    """
    centre_shape, (c_lat, c_lon) = _coerce(("lat", "lon"), (lat, lon))
    if centre_shape != ():
        raise ValueError(f"the centre must be a single point, got shape {centre_shape}")
    _, (p_lats, p_lons) = _coerce(("lats", "lons"), (lats, lons))
    return float(_fast.max_distance_m_array(c_lat[0], c_lon[0], p_lats, p_lons))
