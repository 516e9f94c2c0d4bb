"""Pure-NumPy (and SciPy) executable specification of the kernels.

Every array kernel in ``ichnaea._fast`` has a function here that computes the
same thing with whole-array NumPy operations and no compiled code of ours.
The functions are written for clarity, not speed: tests compare the kernels
with them (``tests/_fast``) and the benchmarks time them side by side
(``benchmarks/bench_*.py``). Nothing in ichnaea calls this module at run
time. The geodesy references use only NumPy and :mod:`math`; the clustering
reference uses what the old service ran on every request, SciPy's
``scipy.cluster.hierarchy``, which is a test dependency only.

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
from scipy.cluster.hierarchy import fcluster, linkage

__all__ = [
    "age_factor",
    "aggregate_cell_groups",
    "aggregate_cluster",
    "bbox",
    "cell_weights",
    "circle_radius_m",
    "cluster_complete_linkage",
    "cluster_weights",
    "destination",
    "distance_m",
    "haversine_m",
    "haversine_rdist",
    "m_to_rdist",
    "max_distance_m",
    "percentile95_distance_m",
    "select_sample",
    "vincenty_m",
    "weighted_position",
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


# ---------------------------------------------------------------------------
# Clustering and weighting (ichnaea._fast._clustering, _weighting)
#
# The clustering reference uses SciPy's scipy.cluster.hierarchy, which the
# kernel replaces on the request path. SciPy is a test dependency only;
# nothing in ichnaea imports this module at run time.
# ---------------------------------------------------------------------------

# Sample and accuracy rules of spec/locate.md 4.6.
FULL_WEIGHT_AGE_MS = 2000.0
ACCURACY_PERCENTILE = 95.0


def _vector(value: ArrayLike) -> Float64Array:
    return np.array(value, dtype=np.float64).reshape(-1)


def cluster_complete_linkage(
    lat_deg: ArrayLike, lon_deg: ArrayLike, max_distance_m: float
) -> NDArray[np.int64]:
    """Complete-linkage groups of diameter ≤ ``max_distance_m``, per point.

    ``fcluster(linkage(d, method="complete"), t=max_distance_m,
    criterion="distance")`` over the condensed matrix of ``distance_m(i, j)``
    for i < j. Labels are renumbered 0, 1, ... in order of first appearance.
    Points with a non-finite coordinate (which SciPy refuses) are groups of
    their own; the others are clustered without them.
    """
    lat, lon = _vector(lat_deg), _vector(lon_deg)
    n = lat.size
    finite = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
    raw = np.arange(n, dtype=np.int64) + n  # distinct labels for the others
    if finite.size >= 2:
        i, j = np.triu_indices(finite.size, k=1)
        a, b = finite[i], finite[j]
        condensed = distance_m(lat[a], lon[a], lat[b], lon[b])
        tree = linkage(condensed, method="complete")
        raw[finite] = fcluster(tree, t=max_distance_m, criterion="distance")
    elif finite.size == 1:
        raw[finite] = 0
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    # Renumber the groups by the position of their first member.
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.reshape(-1)]


def age_factor(age_ms: ArrayLike) -> Float64Array:
    """``min(√(2000 / age_ms), 1)``: full weight up to 2 s."""
    with np.errstate(all="ignore"):
        return np.minimum(np.sqrt(FULL_WEIGHT_AGE_MS / _vector(age_ms)), 1.0)


def weighted_position(
    lat_deg: ArrayLike, lon_deg: ArrayLike, weights: ArrayLike
) -> tuple[float, float]:
    """Weighted arithmetic mean ``(Σ w·lat / Σ w, Σ w·lon / Σ w)``, degrees.

    NaN for no points or weights summing to zero.
    """
    lat, lon, w = _vector(lat_deg), _vector(lon_deg), _vector(weights)
    if w.size == 0:
        return math.nan, math.nan
    with np.errstate(all="ignore"):
        total = np.sum(w)
        if total == 0.0:
            return math.nan, math.nan
        return float(np.sum(w * lat) / total), float(np.sum(w * lon) / total)


def percentile95_distance_m(
    lat_deg: float, lon_deg: float, lats_deg: ArrayLike, lons_deg: ArrayLike
) -> float:
    """``numpy.percentile`` (linear) of the distances from a point, metres."""
    lats, lons = _vector(lats_deg), _vector(lons_deg)
    if lats.size == 0:
        return math.nan
    return float(np.percentile(distance_m(lat_deg, lon_deg, lats, lons), ACCURACY_PERCENTILE))


def select_sample(weight: ArrayLike, max_networks: int) -> NDArray[np.bool_]:
    """Mask of the ``max_networks`` heaviest networks, ties in input order.

    In place of quirk Q1 (the old service kept the lowest scores). A stable
    sort of the negated weights puts NaN last.
    """
    s = _vector(weight)
    mask = np.zeros(s.size, dtype=bool)
    mask[np.argsort(-s, kind="stable")[: max(max_networks, 0)]] = True
    return mask


def _clamp(value: float, lower: float, upper: float) -> float:
    if value > upper:
        value = upper
    if value < lower:
        value = lower
    return value


def cluster_weights(age_ms: ArrayLike, signal_dbm: ArrayLike, radius_m: ArrayLike) -> Float64Array:
    """Issue 11's Wi-Fi/Bluetooth weights: ``age_factor · 10^(signal / 15) /
    clip(radius, 30, 300)``, a NaN radius counting as 30."""
    radius = np.clip(np.nan_to_num(_vector(radius_m), nan=30.0), 30.0, 300.0)
    weights: Float64Array = age_factor(age_ms) * np.power(10.0, _vector(signal_dbm) / 15.0) / radius
    return weights


def aggregate_cluster(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    age_ms: ArrayLike,
    signal_dbm: ArrayLike,
    score: ArrayLike,
    radius_m: ArrayLike,
    max_networks: int,
    min_accuracy_m: float,
    max_accuracy_m: float,
) -> tuple[float, float, float, float, NDArray[np.bool_]]:
    """Spec 4.6 for one cluster, with issue 11's weights: ``(lat, lon, accuracy_m,
    score_sum, sample)``.

    Sample of the heaviest networks by :func:`cluster_weights` (in place of
    Q1), weighted mean with them (no least squares), clamped 95th-percentile
    accuracy over the sample, score summed over the whole cluster. The
    sample keeps input order. A NaN latitude or longitude makes both NaN.
    """
    lat, lon = _vector(lat_deg), _vector(lon_deg)
    age, signal, s = _vector(age_ms), _vector(signal_dbm), _vector(score)
    radius = _vector(radius_m)
    if lat.size == 0:
        return math.nan, math.nan, math.nan, 0.0, np.zeros(0, dtype=bool)
    weights = cluster_weights(age, signal, radius)
    sample = select_sample(weights, max_networks)
    score_sum = float(np.sum(s))
    if not sample.any():
        return math.nan, math.nan, math.nan, score_sum, sample
    lat0, lon0 = weighted_position(lat[sample], lon[sample], weights[sample])
    if math.isnan(lat0) or math.isnan(lon0):
        lat0 = lon0 = math.nan  # half a position is no position
    accuracy = percentile95_distance_m(lat0, lon0, lat[sample], lon[sample])
    return lat0, lon0, _clamp(accuracy, min_accuracy_m, max_accuracy_m), score_sum, sample


def cell_weights(
    age_ms: ArrayLike,
    signal_dbm: ArrayLike,
    floor_dbm: ArrayLike,
    radius_m: ArrayLike,
    min_radius_m: float = 1000.0,
    max_radius_m: float = 50000.0,
) -> Float64Array:
    """Issue 11's cell weights: ``age_factor · 10^((signal - floor) / 15) /
    clip(radius, min_radius_m, max_radius_m)²``, a NaN radius counting as the least."""
    radius = np.clip(np.nan_to_num(_vector(radius_m), nan=min_radius_m), min_radius_m, max_radius_m)
    above = _vector(signal_dbm) - _vector(floor_dbm)
    weights: Float64Array = age_factor(age_ms) * np.power(10.0, above / 15.0) / np.square(radius)
    return weights


def aggregate_cell_groups(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    radius_m: ArrayLike,
    age_ms: ArrayLike,
    signal_dbm: ArrayLike,
    floor_dbm: ArrayLike,
    score: ArrayLike,
    min_radius_m: float,
    max_radius_m: float,
    min_accuracy_m: float,
    max_accuracy_m: float,
) -> tuple[list[tuple[float, float, float, float]], NDArray[np.int64]]:
    """Issue 11's cell groups: ``([(lat, lon, accuracy_m, score_sum)] per group,
    the group of each cell)``.

    The heaviest cell left (NaN weights last, ties to the earlier input)
    seeds a group of the cells left whose discs (radius bounded to
    [min_radius_m, max_radius_m], NaN as the least) overlap its own. Position: the weighted
    mean (one cell: its own); accuracy: ``sqrt(Σ w (d² + r²) / Σ w)`` over
    the distances d from it and the bounded radii r, clamped; score: the
    sum. A NaN latitude or longitude makes both NaN.
    """
    lat, lon, radius = _vector(lat_deg), _vector(lon_deg), _vector(radius_m)
    s = _vector(score)
    weights = cell_weights(age_ms, signal_dbm, floor_dbm, radius, min_radius_m, max_radius_m)
    reach = np.clip(np.nan_to_num(radius, nan=min_radius_m), min_radius_m, max_radius_m)
    group = np.full(lat.size, -1, dtype=np.int64)
    groups: list[tuple[float, float, float, float]] = []
    rank = np.where(np.isnan(weights), -np.inf, weights)
    while (group < 0).any():
        left = np.flatnonzero(group < 0)
        seed = int(left[np.argmax(rank[left])])  # argmax: the first of equals
        with np.errstate(invalid="ignore"):
            near = (
                distance_m(lat[seed], lon[seed], lat[left], lon[left]) <= reach[seed] + reach[left]
            )
        members = left[near | (left == seed)]
        group[members] = len(groups)
        if members.size == 1:
            lat0, lon0 = float(lat[seed]), float(lon[seed])
        else:
            lat0, lon0 = weighted_position(lat[members], lon[members], weights[members])
        if math.isnan(lat0) or math.isnan(lon0):
            lat0 = lon0 = math.nan
        if members.size == 1:
            accuracy = float(reach[seed])
        else:
            w = weights[members]
            d = distance_m(lat0, lon0, lat[members], lon[members])
            with np.errstate(all="ignore"):
                total = float(np.sum(w))
                squares = float(np.sum(w * (d * d + reach[members] ** 2)))
                accuracy = math.sqrt(squares / total) if total > 0.0 else math.nan
        groups.append((lat0, lon0, _clamp(accuracy, min_accuracy_m, max_accuracy_m),
                       float(np.sum(s[members]))))  # fmt: skip
    return groups, group


# ---------------------------------------------------------------------------
# Station updater (ichnaea._fast._station), spec/pipeline.md 8 and 9.3-9.4
#
# Observations of many stations are passed at once, sorted by station, with
# ``offsets`` marking where each station's group starts and ends
# (group k = ``offsets[k]:offsets[k + 1]``).
# ---------------------------------------------------------------------------

# Station kinds: the ``kind`` argument of observation_weights.
KIND_BLUE = 0
KIND_WIFI = 1
KIND_CELL = 2

# Largest accuracy that still counts, metres, per kind.
STATION_MAX_ACCURACY_M = {KIND_BLUE: 100.0, KIND_WIFI: 200.0, KIND_CELL: 1000.0}
# (default signal, offset) in dBm of the signal factor (10000 / (s + offset)²)².
WIFI_SIGNAL_DBM = (-80.0, -20.0)
# Keyed by ichnaea.enums.Radio value: gsm, wcdma, lte, nr (our extension).
CELL_SIGNAL_DBM = {0: (-95.0, -5.0), 2: (-100.0, 0.0), 3: (-105.0, 5.0), 4: (-110.0, 10.0)}


def _qualifying_factor(value: ArrayLike, floor: float, full: float, maximum: float) -> Float64Array:
    """``min(√(full / max(|x|, floor)), 1)``; 1 for NaN or 0, 0 above ``maximum``."""
    x = np.abs(_vector(value))
    with np.errstate(all="ignore"):
        factor = np.minimum(np.sqrt(full / np.maximum(x, floor)), 1.0)
    factor = np.where(x > maximum, 0.0, factor)
    return np.where(np.isnan(x) | (x == 0.0), 1.0, factor)


def _signal_factor(signal_dbm: Float64Array, default: ArrayLike, offset: ArrayLike) -> Float64Array:
    """``(10000 / (s + offset)²)²`` with s = the signal, or the default for NaN or 0."""
    s = np.where(np.isnan(signal_dbm) | (signal_dbm == 0.0), default, signal_dbm)
    with np.errstate(all="ignore"):
        result: Float64Array = np.square(10000.0 / np.square(s + offset))
    return result


def observation_weights(
    kind: int,
    accuracy_m: ArrayLike,
    age_ms: ArrayLike,
    speed_mps: ArrayLike,
    signal_dbm: ArrayLike,
    radio: ArrayLike | None = None,
) -> Float64Array:
    """Spec 8: the product of the accuracy, age, speed and signal factors.

    Accuracy: floor 10 m, 0 above 100 (blue) / 200 (wifi) / 1000 m (cell);
    age: floor 2000 ms, 0 above 20000 ms; speed: floor 1 m/s, full weight
    up to 5 m/s, 0 above 50 m/s. Signal: 1 for Bluetooth, else per type;
    cells of a radio without a (default, offset) pair get weight 0.
    """
    if kind not in STATION_MAX_ACCURACY_M:
        raise ValueError(f"unknown station kind {kind}")
    signal = _vector(signal_dbm)
    quality = (
        _qualifying_factor(accuracy_m, 10.0, 10.0, STATION_MAX_ACCURACY_M[kind])
        * _qualifying_factor(age_ms, 2000.0, 2000.0, 20000.0)
        * _qualifying_factor(speed_mps, 1.0, 5.0, 50.0)
    )
    if kind == KIND_BLUE:
        return quality
    if kind == KIND_WIFI:
        return quality * _signal_factor(signal, *WIFI_SIGNAL_DBM)
    if radio is None:
        raise ValueError("radio is required for cells")
    radios = _vector(radio)
    known = np.isin(radios, list(CELL_SIGNAL_DBM))
    default = np.zeros(radios.size)
    offset = np.zeros(radios.size)
    for value, (default_dbm, offset_dbm) in CELL_SIGNAL_DBM.items():
        default[radios == value] = default_dbm
        offset[radios == value] = offset_dbm
    with np.errstate(all="ignore"):  # unknown radios may give 0 · inf, discarded
        return np.where(known, quality * _signal_factor(signal, default, offset), 0.0)


def aggregate_groups(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    weight: ArrayLike,
    offsets: ArrayLike,
    max_dist_m: float,
) -> dict[str, NDArray[np.float64] | NDArray[np.int64] | NDArray[np.bool_]]:
    """Spec 9.3 per group: bounding box, consistency, weighted centre, radius.

    Keys as in ``ichnaea._fast._station.aggregate_groups``. Consistent iff
    ``distance_m((min_lat, min_lon), (max_lat, max_lon)) <= max_dist_m``;
    centre ``Σ w·x / Σ w`` (NaN for weights summing to 0 or a NaN position);
    radius ``circle_radius_m`` (-1 where not finite). An empty group has a
    NaN box and centre, is inconsistent, radius -1, weight 0, count 0.
    """
    lat, lon, w = _vector(lat_deg), _vector(lon_deg), _vector(weight)
    bounds = np.asarray(offsets, dtype=np.int64)
    g = bounds.size - 1
    floats = ("min_lat_deg", "max_lat_deg", "min_lon_deg", "max_lon_deg", "lat_deg", "lon_deg")
    out: dict[str, list[float]] = {name: [] for name in (*floats, "weight")}
    consistent: list[bool] = []
    count: list[int] = []
    for k in range(g):
        la, lo, wk = (a[bounds[k] : bounds[k + 1]] for a in (lat, lon, w))
        count.append(la.size)
        if la.size == 0 or np.isnan(la).any() or np.isnan(lo).any():
            box = [math.nan] * 4
        else:
            box = [float(np.min(la)), float(np.max(la)), float(np.min(lo)), float(np.max(lo))]
        total = float(np.sum(wk))
        if math.isnan(box[0]) or total == 0.0:
            center = [math.nan, math.nan]
        else:
            with np.errstate(all="ignore"):
                center = [float(np.sum(wk * la) / total), float(np.sum(wk * lo) / total)]
        diagonal = distance_m(box[0], box[2], box[1], box[3])
        consistent.append(bool(diagonal <= max_dist_m))
        for name, value in zip(floats, [*box, *center], strict=True):
            out[name].append(value)
        out["weight"].append(total)
    result: dict[str, NDArray[np.float64] | NDArray[np.int64] | NDArray[np.bool_]] = {
        name: np.array(values, dtype=np.float64) for name, values in out.items()
    }
    result["consistent"] = np.array(consistent, dtype=np.bool_)
    result["count"] = np.array(count, dtype=np.int64)
    result["radius_m"] = circle_radius_m(
        result["lat_deg"],
        result["lon_deg"],
        result["max_lat_deg"],
        result["max_lon_deg"],
        result["min_lat_deg"],
        result["min_lon_deg"],
    )
    return result


def max_distance_to_points(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    offsets: ArrayLike,
    center_lat_deg: ArrayLike,
    center_lon_deg: ArrayLike,
) -> Float64Array:
    """Spec 9.4 per group: largest ``distance_m`` from the centre to the points.

    NaN for a NaN centre or point, 0.0 for an empty group with a centre.
    """
    lat, lon = _vector(lat_deg), _vector(lon_deg)
    center_lat, center_lon = _vector(center_lat_deg), _vector(center_lon_deg)
    bounds = np.asarray(offsets, dtype=np.int64)
    result = np.zeros(bounds.size - 1)
    for k in range(bounds.size - 1):
        if math.isnan(center_lat[k]) or math.isnan(center_lon[k]):
            result[k] = math.nan
            continue
        dist = distance_m(
            center_lat[k],
            center_lon[k],
            lat[bounds[k] : bounds[k + 1]],
            lon[bounds[k] : bounds[k + 1]],
        )
        if dist.size:
            result[k] = np.max(dist)
    return result


# -- station index ----------------------------------------------------------------

_STATION_RECORD = np.dtype(
    [
        ("lat", "<i4"),
        ("lon", "<i4"),
        ("radius", "<u4"),
        ("samples", "<u4"),
        ("created", "<u2"),
        ("modified", "<u4"),
        ("last_seen", "<u2"),
        ("block_last", "<u2"),
        ("block_count", "u1"),
        ("region", "<u2"),
    ]
)
_EPOCH_ORDINAL = 719163.0


def _station_score(
    now_s: float,
    radius_m: float,
    samples: float,
    created_day: float,
    modified_s: float,
    last_seen_day: float,
    block_last_day: float,
) -> float:
    """``ichnaea.api.locate.score.station_scores`` of one station, in NumPy's NaN rules."""
    if math.isnan(modified_s):
        known_day = last_seen_day if not math.isnan(last_seen_day) else created_day
        modified_s = now_s if math.isnan(known_day) else (known_day - _EPOCH_ORDINAL) * 86400.0
    with np.errstate(invalid="ignore"):
        modified_day = np.floor(modified_s / 86400.0) + _EPOCH_ORDINAL
        last_day = np.fmax(modified_day, last_seen_day)
        first_day = np.fmax(created_day, block_last_day)
        if math.isnan(first_day):
            first_day = last_day
        s = float(np.nan_to_num(samples, nan=0.0))
        if s > 1 and not float(np.nan_to_num(radius_m)) > 0:
            s = 1.0
        sample_weight = float(np.clip(np.log2(max(s, 1.0)), 0.5, 10.0))
        days_since = np.maximum(np.floor((now_s - modified_s) / 86400.0), 0.0)
        age_weight = 1.0 / np.sqrt(np.floor(days_since / 30.0) + 1.0)
        collection_weight = np.minimum(np.maximum(last_day - first_day, 1.0) / 10.0, 1.0)
        return float(age_weight * collection_weight * sample_weight)


# A blocked station relearned since its block is answered (issue 11; the
# constants of ichnaea/repositories/stations.py, held equal by
# tests/index/test_relearn.py).
RELEARN_SAMPLES = 10
MAX_RELEARN_BLOCKS = 2


def gather_stations(
    query: bytes,
    width: int,
    base_keys: NDArray[np.uint8],
    base_values: NDArray[np.uint8],
    over_keys: NDArray[np.uint8],
    over_values: NDArray[np.uint8],
    over_present: NDArray[np.uint8],
    today_day: float,
    now_s: float,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int32], NDArray[np.int8]]:
    """Spec of ``_index.gather_stations``: (out, query index, region, source) of the rows kept."""

    def keys_of(raw: NDArray[np.uint8]) -> list[bytes]:
        if width != 6:
            return [bytes(raw[i : i + width]) for i in range(0, len(raw), width)]
        # little-endian uint64 of a MAC read big-endian: its 6 low bytes, reversed
        return [bytes(raw[i : i + 6][::-1]) for i in range(0, len(raw), 8)]

    base_records = np.frombuffer(base_values.tobytes(), _STATION_RECORD)
    base = dict(zip(keys_of(base_keys), base_records, strict=True))
    over_records = np.frombuffer(over_values.tobytes(), _STATION_RECORD)
    over = {
        key: (record, bool(flag))
        for key, record, flag in zip(keys_of(over_keys), over_records, over_present, strict=True)
    }
    columns: list[list[float]] = [[] for _ in range(9)]
    at: list[int] = []
    regions: list[int] = []
    sources: list[int] = []
    for i in range(len(query) // width):
        key = query[i * width : (i + 1) * width]
        if key in over:
            record, present = over[key]
            if not present:
                continue
            source = 1
        elif key in base:
            record, source = base[key], 0
        else:
            continue

        def nullable(value: int, null: int, offset: float = 0.0) -> float:
            return math.nan if value == null else value + offset

        created = nullable(int(record["created"]), 0xFFFF, _EPOCH_ORDINAL)
        block_last = nullable(int(record["block_last"]), 0xFFFF, _EPOCH_ORDINAL)
        count = int(record["block_count"])
        samples = int(record["samples"])
        blocked = today_day - block_last < 2 or (
            count > 0 and not math.isnan(created) and count >= round(abs(created - today_day) / 30)
        )
        relearned = samples != 0xFFFFFFFF and samples >= RELEARN_SAMPLES
        if blocked and not (relearned and count <= MAX_RELEARN_BLOCKS):
            continue
        values = [
            int(record["lat"]) / 1e7,
            int(record["lon"]) / 1e7,
            nullable(int(record["radius"]), 0xFFFFFFFF),
            nullable(int(record["samples"]), 0xFFFFFFFF),
            created,
            nullable(int(record["modified"]), 0xFFFFFFFF),
            nullable(int(record["last_seen"]), 0xFFFF, _EPOCH_ORDINAL),
            block_last,
        ]
        values.append(_station_score(now_s, *values[2:]))
        for column, value in zip(columns, values, strict=True):
            column.append(value)
        at.append(i)
        regions.append(int(record["region"]))
        sources.append(source)
    return (
        np.array(columns, dtype=np.float64).reshape(9, len(at)),
        np.array(at, dtype=np.int64),
        np.array(regions, dtype=np.int32),
        np.array(sources, dtype=np.int8),
    )
