"""Pure-NumPy executable specification of the geodesy kernels.

Every array kernel in ``ichnaea._fast._geodesy`` has a function here that
computes the same thing with whole-array NumPy operations and no compiled
code. The functions are written for clarity, not speed: tests compare the
kernels with them (``tests/_fast``) and the benchmarks time them side by side
(``benchmarks/bench_geodesy.py``). Nothing in ichnaea calls this module at run
time, and it imports only NumPy and :mod:`math`.

The iterative Vincenty formulae are evaluated element by element with a mask:
an element stops iterating as soon as it has converged (or was found to be a
pair of coincident points), exactly as the scalar C loop does, so that both
implementations perform the same floating-point operations on every element.

All angles are degrees, all distances metres. Inputs are array-likes that are
converted to float64; outputs have the broadcast shape of the inputs.
"""

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "bbox",
    "circle_radius_m",
    "destination",
    "distance_m",
    "haversine_m",
    "haversine_rdist",
    "m_to_rdist",
    "max_distance_m",
    "vincenty_m",
]

# Own copies, like the kernels: see ichnaea/constants.py for their meaning.
EARTH_RADIUS_M = 6371009.0
WGS84_A_M = 6378137.0
WGS84_B_M = 6356752.314245
WGS84_F = 1.0 / 298.257223563
VINCENTY_TOLERANCE_RAD = 1e-11
VINCENTY_MAX_ITERATIONS = 25
MAX_LAT_DEG = 85.051
MAX_LON_DEG = 180.0

_DEG_TO_RAD = math.pi / 180.0
_RAD_TO_DEG = 180.0 / math.pi
# u^2 = cos^2(alpha) * (a^2 - b^2) / b^2
_E2_PRIME = (WGS84_A_M * WGS84_A_M - WGS84_B_M * WGS84_B_M) / (WGS84_B_M * WGS84_B_M)

Float64Array = NDArray[np.float64]


def _f64(*values: ArrayLike) -> list[Float64Array]:
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values))
    return [np.array(a, dtype=np.float64) for a in arrays]


def haversine_rdist(
    lat1_deg: ArrayLike, lon1_deg: ArrayLike, lat2_deg: ArrayLike, lon2_deg: ArrayLike
) -> Float64Array:
    """Reduced haversine distance ``sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2)``.

    Monotonic in the great-circle distance; 0 for identical points, 1 for
    antipodes (possibly a rounding error above).
    """
    lat1, lon1, lat2, lon2 = _f64(lat1_deg, lon1_deg, lat2_deg, lon2_deg)
    with np.errstate(all="ignore"):
        phi1 = lat1 * _DEG_TO_RAD
        phi2 = lat2 * _DEG_TO_RAD
        s_dphi = np.sin((phi2 - phi1) * 0.5)
        s_dlam = np.sin((lon2 - lon1) * _DEG_TO_RAD * 0.5)
        rdist: Float64Array = s_dphi * s_dphi + np.cos(phi1) * np.cos(phi2) * (s_dlam * s_dlam)
    return rdist


def _rdist_to_m(rdist: Float64Array) -> Float64Array:
    with np.errstate(all="ignore"):
        return 2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(rdist)))


def m_to_rdist(distance_m: ArrayLike) -> Float64Array:
    """Threshold in reduced space: ``rdist <= m_to_rdist(d)`` iff ``haversine <= d``.

    Negative distances give -1 (nothing is that close), distances of half the
    circumference or more give +inf (everything is that close), NaN stays NaN.
    """
    (d,) = _f64(distance_m)
    with np.errstate(all="ignore"):
        s = np.sin(d / (2.0 * EARTH_RADIUS_M))
        out = s * s
    out = np.where(d < 0.0, -1.0, out)
    return np.where(d >= math.pi * EARTH_RADIUS_M, math.inf, out)


def haversine_m(
    lat1_deg: ArrayLike, lon1_deg: ArrayLike, lat2_deg: ArrayLike, lon2_deg: ArrayLike
) -> Float64Array:
    """Great-circle distance on the sphere of radius ``EARTH_RADIUS_M``, metres."""
    return _rdist_to_m(haversine_rdist(lat1_deg, lon1_deg, lat2_deg, lon2_deg))


def vincenty_m(
    lat1_deg: ArrayLike, lon1_deg: ArrayLike, lat2_deg: ArrayLike, lon2_deg: ArrayLike
) -> tuple[Float64Array, NDArray[np.bool_]]:
    """Vincenty inverse distance on WGS-84, metres, and a converged mask.

    Where the iteration does not converge within ``VINCENTY_MAX_ITERATIONS``
    passes the distance is NaN and the mask is False.
    """
    lat1, lon1, lat2, lon2 = _f64(lat1_deg, lon1_deg, lat2_deg, lon2_deg)
    shape = lat1.shape
    lat1, lon1, lat2, lon2 = (a.ravel() for a in (lat1, lon1, lat2, lon2))
    n = lat1.size
    f = WGS84_F
    with np.errstate(all="ignore"):
        big_l = (lon2 - lon1) * _DEG_TO_RAD
        # Reduced latitudes U = atan((1 - f) tan(lat)), via cos U = 1 / sqrt(1 + tan^2 U).
        tan_u1 = (1.0 - f) * np.tan(lat1 * _DEG_TO_RAD)
        tan_u2 = (1.0 - f) * np.tan(lat2 * _DEG_TO_RAD)
        cos_u1 = 1.0 / np.sqrt(1.0 + tan_u1 * tan_u1)
        cos_u2 = 1.0 / np.sqrt(1.0 + tan_u2 * tan_u2)
        sin_u1 = tan_u1 * cos_u1
        sin_u2 = tan_u2 * cos_u2

        lam = big_l.copy()
        sin_sigma = np.zeros(n)
        cos_sigma = np.zeros(n)
        sigma = np.zeros(n)
        cos_sq_alpha = np.zeros(n)
        cos_2sigma_m = np.zeros(n)
        coincident = np.zeros(n, dtype=bool)
        active = np.ones(n, dtype=bool)

        for _ in range(VINCENTY_MAX_ITERATIONS):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            lm = lam[idx]
            su1, cu1, su2, cu2 = sin_u1[idx], cos_u1[idx], sin_u2[idx], cos_u2[idx]
            sin_lam, cos_lam = np.sin(lm), np.cos(lm)
            t1 = cu2 * sin_lam
            t2 = cu1 * su2 - su1 * cu2 * cos_lam
            ss = np.sqrt(t1 * t1 + t2 * t2)
            cs = su1 * su2 + cu1 * cu2 * cos_lam
            sg = np.arctan2(ss, cs)
            sin_alpha = cu1 * cu2 * sin_lam / ss
            csa = 1.0 - sin_alpha * sin_alpha
            c2sm = np.where(csa != 0.0, cs - 2.0 * su1 * su2 / csa, 0.0)
            c = f / 16.0 * csa * (4.0 + f * (4.0 - 3.0 * csa))
            new_lam = big_l[idx] + (1.0 - c) * f * sin_alpha * (
                sg + c * ss * (c2sm + c * cs * (-1.0 + 2.0 * c2sm * c2sm))
            )
            same = ss == 0.0
            sin_sigma[idx], cos_sigma[idx], sigma[idx] = ss, cs, sg
            cos_sq_alpha[idx], cos_2sigma_m[idx] = csa, c2sm
            coincident[idx] = same
            lam[idx] = np.where(same, lm, new_lam)
            # NaN differences end the loop (the result is then NaN anyway).
            active[idx] = ~same & (np.abs(new_lam - lm) > VINCENTY_TOLERANCE_RAD)

        u_sq = cos_sq_alpha * _E2_PRIME
        big_a = 1.0 + u_sq / 16384.0 * (4096.0 + u_sq * (-768.0 + u_sq * (320.0 - 175.0 * u_sq)))
        big_b = u_sq / 1024.0 * (256.0 + u_sq * (-128.0 + u_sq * (74.0 - 47.0 * u_sq)))
        c2 = cos_2sigma_m * cos_2sigma_m
        delta_sigma = (
            big_b
            * sin_sigma
            * (
                cos_2sigma_m
                + big_b
                / 4.0
                * (
                    cos_sigma * (-1.0 + 2.0 * c2)
                    - big_b
                    / 6.0
                    * cos_2sigma_m
                    * (-3.0 + 4.0 * sin_sigma * sin_sigma)
                    * (-3.0 + 4.0 * c2)
                )
            )
        )
        dist = WGS84_B_M * big_a * (sigma - delta_sigma)
    dist = np.where(coincident, 0.0, dist)
    dist = np.where(active, math.nan, dist)
    return dist.reshape(shape), (~active).reshape(shape)


def distance_m(
    lat1_deg: ArrayLike, lon1_deg: ArrayLike, lat2_deg: ArrayLike, lon2_deg: ArrayLike
) -> Float64Array:
    """Vincenty inverse distance on WGS-84 with a haversine fallback, metres."""
    dist, converged = vincenty_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg)
    return np.where(converged, dist, haversine_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg))


def destination(
    lat_deg: ArrayLike, lon_deg: ArrayLike, bearing_deg: ArrayLike, distance_m: ArrayLike
) -> tuple[Float64Array, Float64Array]:
    """Vincenty direct on WGS-84: the point ``distance_m`` away along ``bearing_deg``.

    Returns ``(lat_deg, lon_deg)``; the longitude is not normalised. Both are
    NaN where an input is NaN or the iteration does not converge.
    """
    lat, lon, bearing, dist = _f64(lat_deg, lon_deg, bearing_deg, distance_m)
    shape = lat.shape
    lat, lon, bearing, dist = (a.ravel() for a in (lat, lon, bearing, dist))
    n = lat.size
    f = WGS84_F
    with np.errstate(all="ignore"):
        alpha1 = bearing * _DEG_TO_RAD
        sin_alpha1, cos_alpha1 = np.sin(alpha1), np.cos(alpha1)
        tan_u1 = (1.0 - f) * np.tan(lat * _DEG_TO_RAD)
        cos_u1 = 1.0 / np.sqrt(1.0 + tan_u1 * tan_u1)
        sin_u1 = tan_u1 * cos_u1
        sigma1 = np.arctan2(tan_u1, cos_alpha1)
        sin_alpha = cos_u1 * sin_alpha1
        cos_sq_alpha = 1.0 - sin_alpha * sin_alpha
        u_sq = cos_sq_alpha * _E2_PRIME
        big_a = 1.0 + u_sq / 16384.0 * (4096.0 + u_sq * (-768.0 + u_sq * (320.0 - 175.0 * u_sq)))
        big_b = u_sq / 1024.0 * (256.0 + u_sq * (-128.0 + u_sq * (74.0 - 47.0 * u_sq)))
        sigma0 = dist / (WGS84_B_M * big_a)

        sigma = sigma0.copy()
        sin_sigma = np.zeros(n)
        cos_sigma = np.zeros(n)
        cos_2sigma_m = np.zeros(n)
        active = np.ones(n, dtype=bool)
        for _ in range(VINCENTY_MAX_ITERATIONS):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            sg = sigma[idx]
            c2sm = np.cos(2.0 * sigma1[idx] + sg)
            ss, cs = np.sin(sg), np.cos(sg)
            bb = big_b[idx]
            c2 = c2sm * c2sm
            delta_sigma = (
                bb
                * ss
                * (
                    c2sm
                    + bb
                    / 4.0
                    * (
                        cs * (-1.0 + 2.0 * c2)
                        - bb / 6.0 * c2sm * (-3.0 + 4.0 * ss * ss) * (-3.0 + 4.0 * c2)
                    )
                )
            )
            new_sigma = sigma0[idx] + delta_sigma
            sin_sigma[idx], cos_sigma[idx], cos_2sigma_m[idx] = ss, cs, c2sm
            sigma[idx] = new_sigma
            active[idx] = np.abs(new_sigma - sg) > VINCENTY_TOLERANCE_RAD

        tmp = sin_u1 * sin_sigma - cos_u1 * cos_sigma * cos_alpha1
        phi2 = np.arctan2(
            sin_u1 * cos_sigma + cos_u1 * sin_sigma * cos_alpha1,
            (1.0 - f) * np.sqrt(sin_alpha * sin_alpha + tmp * tmp),
        )
        lam = np.arctan2(
            sin_sigma * sin_alpha1, cos_u1 * cos_sigma - sin_u1 * sin_sigma * cos_alpha1
        )
        c = f / 16.0 * cos_sq_alpha * (4.0 + f * (4.0 - 3.0 * cos_sq_alpha))
        big_l = lam - (1.0 - c) * f * sin_alpha * (
            sigma
            + c
            * sin_sigma
            * (cos_2sigma_m + c * cos_sigma * (-1.0 + 2.0 * cos_2sigma_m * cos_2sigma_m))
        )
        lat2 = phi2 * _RAD_TO_DEG
        lon2 = lon + big_l * _RAD_TO_DEG
    # A NaN anywhere in the input makes both outputs NaN (the latitude would
    # otherwise survive a NaN start longitude).
    invalid = active | np.isnan(lat) | np.isnan(lon) | np.isnan(bearing) | np.isnan(dist)
    lat2 = np.where(invalid, math.nan, lat2)
    lon2 = np.where(invalid, math.nan, lon2)
    return lat2.reshape(shape), lon2.reshape(shape)


def bbox(
    lat_deg: ArrayLike, lon_deg: ArrayLike, distance_m: ArrayLike
) -> tuple[Float64Array, Float64Array, Float64Array, Float64Array]:
    """Bounding box ``(max_lat, min_lat, max_lon, min_lon)`` in degrees.

    The latitude bounds are the destinations at bearing 0 with +d and -d
    clamped to ±MAX_LAT_DEG; the longitude bounds the destinations at bearing
    90 with +d and -d clamped to ±MAX_LON_DEG. NaN propagates through the clamp.
    """
    lat, lon, dist = _f64(lat_deg, lon_deg, distance_m)
    max_lat = np.clip(destination(lat, lon, 0.0, dist)[0], -MAX_LAT_DEG, MAX_LAT_DEG)
    min_lat = np.clip(destination(lat, lon, 0.0, -dist)[0], -MAX_LAT_DEG, MAX_LAT_DEG)
    max_lon = np.clip(destination(lat, lon, 90.0, dist)[1], -MAX_LON_DEG, MAX_LON_DEG)
    min_lon = np.clip(destination(lat, lon, 90.0, -dist)[1], -MAX_LON_DEG, MAX_LON_DEG)
    return max_lat, min_lat, max_lon, min_lon


def circle_radius_m(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    max_lat_deg: ArrayLike,
    max_lon_deg: ArrayLike,
    min_lat_deg: ArrayLike,
    min_lon_deg: ArrayLike,
) -> NDArray[np.int64]:
    """Largest distance from the centre to the four box corners, metres, as int64.

    Rounded half to even (like Python's ``round``). -1 where that distance is
    not finite (NaN or infinite input), since NaN has no integer value.
    """
    lat, lon, max_lat, max_lon, min_lat, min_lon = _f64(
        lat_deg, lon_deg, max_lat_deg, max_lon_deg, min_lat_deg, min_lon_deg
    )
    corners = np.stack(
        [
            distance_m(lat, lon, max_lat, max_lon),
            distance_m(lat, lon, max_lat, min_lon),
            distance_m(lat, lon, min_lat, max_lon),
            distance_m(lat, lon, min_lat, min_lon),
        ]
    )
    with np.errstate(all="ignore"):
        radius = np.max(corners, axis=0)  # NaN propagates through np.max
        finite = np.isfinite(radius)
        return np.where(finite, np.rint(np.where(finite, radius, 0.0)), -1).astype(np.int64)


def max_distance_m(
    lat_deg: float, lon_deg: float, lats_deg: ArrayLike, lons_deg: ArrayLike
) -> float:
    """Radius of the circle around the centre covering all points, metres.

    0.0 for an empty set of points; NaN if any distance is NaN.
    """
    d = distance_m(lat_deg, lon_deg, lats_deg, lons_deg)
    if d.size == 0:
        return 0.0
    return float(np.max(d))
