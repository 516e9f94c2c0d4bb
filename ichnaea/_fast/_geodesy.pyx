"""Geodesy kernels: distances, destinations and bounding boxes on the Earth.

Two models of the Earth are used. The *haversine* distance treats the Earth
as a sphere of radius R = 6371.009 km: with Δφ and Δλ the differences of
latitude and longitude, the reduced distance
h = sin²(Δφ/2) + cos φ1 · cos φ2 · sin²(Δλ/2) lies in [0, 1] and the
distance is 2R · asin(min(1, √h)). Since h grows with the distance,
comparisons against a threshold can stay in this reduced space and convert
once (``m_to_rdist``), which saves an asin and a square root per pair.

The *Vincenty* formulae work on the WGS-84 ellipsoid (a = 6378.137 km,
b = 6356.752314245 km, f = 1/298.257223563) and are accurate to
millimetres. Both map the ellipsoid onto an auxiliary sphere through the
reduced latitude tan U = (1 − f) · tan φ.

* The *inverse* problem (distance between two points) iterates on λ, the
  longitude difference on the auxiliary sphere, starting at λ = Δlon, while
  |λ − λ′| > 1e-11 for at most 25 passes. Each pass derives the angular
  distance σ, the azimuth of the geodesic at the equator α and the position
  of the midpoint 2σm from λ; coincident points (sin σ = 0) end it with a
  distance of 0, and an equatorial line (cos² α = 0) uses cos 2σm = 0. The
  distance is then s = b · A · (σ − Δσ) with the series coefficients A and B
  of u² = cos² α · (a² − b²) / b². For nearly antipodal points the
  iteration does not converge; ``distance_m`` then falls back to the
  haversine distance.
* The *direct* problem (the point at a given distance along an initial
  bearing) iterates on σ, starting at s / (b · A), with the same cut-off and
  pass limit, and then reads latitude and longitude off the auxiliary
  sphere. Negative distances go backwards along the bearing, and the output
  longitude is not normalised.

Neither formula clamps its input: out-of-range latitudes are passed through
tan() like any other angle. ``bbox`` clamps its output to ±85.051° latitude
and ±180° longitude; ``circle_radius_m`` rounds the largest corner distance
half to even.

The scalar ``cdef ... noexcept nogil`` helpers declared in ``_geodesy.pxd``
are cimported by other kernels. The ``def ..._array`` entry points loop over
contiguous float64 memoryviews without the GIL and write into caller-supplied
``out`` arrays; ichnaea/geo.py validates and converts the inputs.
"""

from libc.math cimport asin, atan2, cos, fabs, isfinite, isnan, rint, sin, sqrt, tan
from libc.math cimport INFINITY, M_PI, NAN

from ichnaea._fast._typedefs cimport check_lengths, float64_t, int64_t

# (a² − b²) / b²: u² = cos² α · E2_PRIME.
cdef double E2_PRIME = (
    (WGS84_A_M * WGS84_A_M - WGS84_B_M * WGS84_B_M) / (WGS84_B_M * WGS84_B_M)
)
cdef double DEG_TO_RAD = M_PI / 180.0
cdef double RAD_TO_DEG = 180.0 / M_PI


def geodesy_constants():
    """Return the constants compiled into this module, keyed by name.

    Returns
    -------
    dict of str to float or int
        ``EARTH_RADIUS_M``, ``WGS84_A_M``, ``WGS84_B_M`` (metres),
        ``WGS84_F``, ``VINCENTY_TOLERANCE_RAD`` (radians),
        ``VINCENTY_MAX_ITERATIONS``, ``MAX_LAT_DEG`` and ``MAX_LON_DEG``
        (degrees). Tests compare them with ``ichnaea.constants``.
    """
    return {
        "EARTH_RADIUS_M": EARTH_RADIUS_M,
        "WGS84_A_M": WGS84_A_M,
        "WGS84_B_M": WGS84_B_M,
        "WGS84_F": WGS84_F,
        "VINCENTY_TOLERANCE_RAD": VINCENTY_TOLERANCE_RAD,
        "VINCENTY_MAX_ITERATIONS": VINCENTY_MAX_ITERATIONS,
        "MAX_LAT_DEG": MAX_LAT_DEG,
        "MAX_LON_DEG": MAX_LON_DEG,
    }


# ---------------------------------------------------------------------------
# Scalar helpers (declared in _geodesy.pxd)
# ---------------------------------------------------------------------------

cdef double haversine_rdist(
    double lat1_deg,  # IN
    double lon1_deg,  # IN
    double lat2_deg,  # IN
    double lon2_deg,  # IN
) noexcept nogil:
    cdef double phi1 = lat1_deg * DEG_TO_RAD
    cdef double phi2 = lat2_deg * DEG_TO_RAD
    cdef double s_dphi = sin((phi2 - phi1) * 0.5)
    cdef double s_dlam = sin((lon2_deg - lon1_deg) * DEG_TO_RAD * 0.5)
    return s_dphi * s_dphi + cos(phi1) * cos(phi2) * (s_dlam * s_dlam)


cdef double rdist_to_m(
    double rdist,  # IN
) noexcept nogil:
    cdef double root = sqrt(rdist)
    # Rounding can push h of antipodes just above 1, outside asin's domain.
    if root > 1.0:
        root = 1.0
    return 2.0 * EARTH_RADIUS_M * asin(root)


cdef double m_to_rdist(
    double dist_m,  # IN
) noexcept nogil:
    cdef double s
    if dist_m < 0.0:
        return -1.0  # below every reduced distance: nothing is closer
    if dist_m >= M_PI * EARTH_RADIUS_M:
        return INFINITY  # half the circumference or more: everything is
    s = sin(dist_m / (2.0 * EARTH_RADIUS_M))
    return s * s


cdef double haversine_m(
    double lat1_deg,  # IN
    double lon1_deg,  # IN
    double lat2_deg,  # IN
    double lon2_deg,  # IN
) noexcept nogil:
    return rdist_to_m(haversine_rdist(lat1_deg, lon1_deg, lat2_deg, lon2_deg))


cdef void reduce_point(
    double lat_deg,  # IN
    double lon_deg,  # IN
    Reduced* out,  # OUT
) noexcept nogil:
    # Reduced latitude U = atan((1 − f) · tan φ), with sin and cos taken
    # from tan U directly (cos U = 1 / √(1 + tan² U) > 0 as U is in (−π/2, π/2)).
    cdef double tan_u = (1.0 - WGS84_F) * tan(lat_deg * DEG_TO_RAD)
    out.lat_deg = lat_deg
    out.lon_deg = lon_deg
    out.cos_u = 1.0 / sqrt(1.0 + tan_u * tan_u)
    out.sin_u = tan_u * out.cos_u


cdef double distance_reduced_m(
    const Reduced* a,  # IN
    const Reduced* b,  # IN
) noexcept nogil:
    cdef double dist
    if _vincenty_reduced_m(a, b, &dist) == GEODESY_OK:
        return dist
    return haversine_m(a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg)


cdef int vincenty_m(
    double lat1_deg,  # IN
    double lon1_deg,  # IN
    double lat2_deg,  # IN
    double lon2_deg,  # IN
    double* out_m,  # OUT
) noexcept nogil:
    cdef Reduced a, b
    reduce_point(lat1_deg, lon1_deg, &a)
    reduce_point(lat2_deg, lon2_deg, &b)
    return _vincenty_reduced_m(&a, &b, out_m)


cdef int _vincenty_reduced_m(
    const Reduced* a,  # IN
    const Reduced* b,  # IN
    double* out_m,  # OUT
) noexcept nogil:
    cdef double f = WGS84_F
    cdef double big_l = (b.lon_deg - a.lon_deg) * DEG_TO_RAD
    cdef double cos_u1 = a.cos_u
    cdef double cos_u2 = b.cos_u
    cdef double sin_u1 = a.sin_u
    cdef double sin_u2 = b.sin_u
    cdef double lam = big_l, lam_prev
    cdef double sin_lam, cos_lam, t1, t2
    cdef double sin_sigma = 0.0, cos_sigma = 0.0, sigma = 0.0
    cdef double sin_alpha, cos_sq_alpha = 0.0, cos_2sigma_m = 0.0, c, c2
    cdef double u_sq, big_a, big_b, delta_sigma
    cdef int _pass
    cdef bint converged = False

    for _pass in range(VINCENTY_MAX_ITERATIONS):
        sin_lam = sin(lam)
        cos_lam = cos(lam)
        t1 = cos_u2 * sin_lam
        t2 = cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_lam
        sin_sigma = sqrt(t1 * t1 + t2 * t2)
        if sin_sigma == 0.0:
            out_m[0] = 0.0  # coincident points
            return GEODESY_OK
        cos_sigma = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_lam
        sigma = atan2(sin_sigma, cos_sigma)
        sin_alpha = cos_u1 * cos_u2 * sin_lam / sin_sigma
        cos_sq_alpha = 1.0 - sin_alpha * sin_alpha
        if cos_sq_alpha != 0.0:
            cos_2sigma_m = cos_sigma - 2.0 * sin_u1 * sin_u2 / cos_sq_alpha
        else:
            cos_2sigma_m = 0.0  # equatorial line
        c = f / 16.0 * cos_sq_alpha * (4.0 + f * (4.0 - 3.0 * cos_sq_alpha))
        lam_prev = lam
        lam = big_l + (1.0 - c) * f * sin_alpha * (
            sigma + c * sin_sigma * (
                cos_2sigma_m + c * cos_sigma * (-1.0 + 2.0 * cos_2sigma_m * cos_2sigma_m)
            )
        )
        # Written as "not above" so that a NaN difference also ends the loop:
        # NaN input gives a NaN distance, not 25 wasted passes.
        if not fabs(lam - lam_prev) > VINCENTY_TOLERANCE_RAD:
            converged = True
            break

    if not converged:
        out_m[0] = NAN
        return GEODESY_NO_CONVERGENCE

    u_sq = cos_sq_alpha * E2_PRIME
    big_a = 1.0 + u_sq / 16384.0 * (
        4096.0 + u_sq * (-768.0 + u_sq * (320.0 - 175.0 * u_sq))
    )
    big_b = u_sq / 1024.0 * (256.0 + u_sq * (-128.0 + u_sq * (74.0 - 47.0 * u_sq)))
    c2 = cos_2sigma_m * cos_2sigma_m
    delta_sigma = big_b * sin_sigma * (
        cos_2sigma_m + big_b / 4.0 * (
            cos_sigma * (-1.0 + 2.0 * c2)
            - big_b / 6.0 * cos_2sigma_m
            * (-3.0 + 4.0 * sin_sigma * sin_sigma) * (-3.0 + 4.0 * c2)
        )
    )
    out_m[0] = WGS84_B_M * big_a * (sigma - delta_sigma)
    return GEODESY_OK


cdef double distance_m(
    double lat1_deg,  # IN
    double lon1_deg,  # IN
    double lat2_deg,  # IN
    double lon2_deg,  # IN
) noexcept nogil:
    cdef double dist
    if vincenty_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg, &dist) == GEODESY_OK:
        return dist
    return haversine_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg)


cdef int destination(
    double lat_deg,  # IN
    double lon_deg,  # IN
    double bearing_deg,  # IN
    double dist_m,  # IN
    double* out_lat_deg,  # OUT
    double* out_lon_deg,  # OUT
) noexcept nogil:
    cdef double f = WGS84_F
    cdef double alpha1 = bearing_deg * DEG_TO_RAD
    cdef double sin_alpha1 = sin(alpha1), cos_alpha1 = cos(alpha1)
    cdef double tan_u1 = (1.0 - f) * tan(lat_deg * DEG_TO_RAD)
    cdef double cos_u1 = 1.0 / sqrt(1.0 + tan_u1 * tan_u1)
    cdef double sin_u1 = tan_u1 * cos_u1
    cdef double sigma1 = atan2(tan_u1, cos_alpha1)
    cdef double sin_alpha = cos_u1 * sin_alpha1
    cdef double cos_sq_alpha = 1.0 - sin_alpha * sin_alpha
    cdef double u_sq = cos_sq_alpha * E2_PRIME
    cdef double big_a = 1.0 + u_sq / 16384.0 * (
        4096.0 + u_sq * (-768.0 + u_sq * (320.0 - 175.0 * u_sq))
    )
    cdef double big_b = u_sq / 1024.0 * (
        256.0 + u_sq * (-128.0 + u_sq * (74.0 - 47.0 * u_sq))
    )
    cdef double sigma0 = dist_m / (WGS84_B_M * big_a)
    cdef double sigma = sigma0, sigma_prev
    cdef double sin_sigma = 0.0, cos_sigma = 0.0, cos_2sigma_m = 0.0, c2, c
    cdef double delta_sigma, tmp, phi2, lam, big_l
    cdef int _pass
    cdef bint converged = False

    # The end latitude does not depend on the start longitude, but a NaN
    # anywhere marks the whole input as invalid: both outputs are NaN.
    if isnan(lat_deg) or isnan(lon_deg) or isnan(bearing_deg) or isnan(dist_m):
        out_lat_deg[0] = NAN
        out_lon_deg[0] = NAN
        return GEODESY_OK

    for _pass in range(VINCENTY_MAX_ITERATIONS):
        cos_2sigma_m = cos(2.0 * sigma1 + sigma)
        sin_sigma = sin(sigma)
        cos_sigma = cos(sigma)
        c2 = cos_2sigma_m * cos_2sigma_m
        delta_sigma = big_b * sin_sigma * (
            cos_2sigma_m + big_b / 4.0 * (
                cos_sigma * (-1.0 + 2.0 * c2)
                - big_b / 6.0 * cos_2sigma_m
                * (-3.0 + 4.0 * sin_sigma * sin_sigma) * (-3.0 + 4.0 * c2)
            )
        )
        sigma_prev = sigma
        sigma = sigma0 + delta_sigma
        if not fabs(sigma - sigma_prev) > VINCENTY_TOLERANCE_RAD:
            converged = True
            break

    if not converged:
        out_lat_deg[0] = NAN
        out_lon_deg[0] = NAN
        return GEODESY_NO_CONVERGENCE

    # As in Vincenty (1975), the trigonometric terms of the last pass are used.
    tmp = sin_u1 * sin_sigma - cos_u1 * cos_sigma * cos_alpha1
    phi2 = atan2(
        sin_u1 * cos_sigma + cos_u1 * sin_sigma * cos_alpha1,
        (1.0 - f) * sqrt(sin_alpha * sin_alpha + tmp * tmp),
    )
    lam = atan2(
        sin_sigma * sin_alpha1, cos_u1 * cos_sigma - sin_u1 * sin_sigma * cos_alpha1
    )
    c = f / 16.0 * cos_sq_alpha * (4.0 + f * (4.0 - 3.0 * cos_sq_alpha))
    big_l = lam - (1.0 - c) * f * sin_alpha * (
        sigma + c * sin_sigma * (
            cos_2sigma_m + c * cos_sigma * (-1.0 + 2.0 * cos_2sigma_m * cos_2sigma_m)
        )
    )
    out_lat_deg[0] = phi2 * RAD_TO_DEG
    out_lon_deg[0] = lon_deg + big_l * RAD_TO_DEG
    return GEODESY_OK


cdef double corner_distance_m(
    double lat_deg,  # IN
    double lon_deg,  # IN
    double max_lat_deg,  # IN
    double max_lon_deg,  # IN
    double min_lat_deg,  # IN
    double min_lon_deg,  # IN
) noexcept nogil:
    cdef double corners[4]
    cdef double radius
    cdef int k
    corners[0] = distance_m(lat_deg, lon_deg, max_lat_deg, max_lon_deg)
    corners[1] = distance_m(lat_deg, lon_deg, max_lat_deg, min_lon_deg)
    corners[2] = distance_m(lat_deg, lon_deg, min_lat_deg, max_lon_deg)
    corners[3] = distance_m(lat_deg, lon_deg, min_lat_deg, min_lon_deg)
    radius = corners[0]
    for k in range(4):
        if isnan(corners[k]):
            return NAN
        if corners[k] > radius:
            radius = corners[k]
    return radius


cdef inline double _clamp(
    double value,  # IN
    double bound,  # IN: symmetric clamp to [-bound, bound]
) noexcept nogil:
    # Comparisons (not fmin/fmax, which drop NaN) so that NaN propagates.
    if value > bound:
        return bound
    if value < -bound:
        return -bound
    return value


# ---------------------------------------------------------------------------
# Array entry points
# ---------------------------------------------------------------------------

def haversine_rdist_array(
    const float64_t[::1] lat1_deg,  # IN
    const float64_t[::1] lon1_deg,  # IN
    const float64_t[::1] lat2_deg,  # IN
    const float64_t[::1] lon2_deg,  # IN
    float64_t[::1] out,  # OUT: reduced distance, [0, 1]
):
    """Reduced haversine distance ``sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2)``.

    Parameters
    ----------
    lat1_deg, lon1_deg, lat2_deg, lon2_deg : float64 array, shape (n,)
        The two points of every pair, degrees.
    out : float64 array, shape (n,)
        Receives the reduced distances, unitless in [0, 1] (rounding may
        exceed 1 by an ulp for antipodes).
    """
    cdef Py_ssize_t i, n = lat1_deg.shape[0]
    check_lengths(n, lon1_deg.shape[0], "lon1_deg")
    check_lengths(n, lat2_deg.shape[0], "lat2_deg")
    check_lengths(n, lon2_deg.shape[0], "lon2_deg")
    check_lengths(n, out.shape[0], "out")
    with nogil:
        for i in range(n):
            out[i] = haversine_rdist(lat1_deg[i], lon1_deg[i], lat2_deg[i], lon2_deg[i])


def m_to_rdist_array(
    const float64_t[::1] dist_m,  # IN
    float64_t[::1] out,  # OUT: reduced-distance thresholds
):
    """Convert distances in metres to reduced-distance thresholds.

    Parameters
    ----------
    dist_m : float64 array, shape (n,)
        Distances, metres.
    out : float64 array, shape (n,)
        Receives ``sin²(d / 2R)``, such that ``rdist <= out`` exactly when the
        haversine distance is ``<= d``; -1 for negative distances, +inf for
        distances of half the circumference (πR) or more, NaN for NaN.
    """
    cdef Py_ssize_t i, n = dist_m.shape[0]
    check_lengths(n, out.shape[0], "out")
    with nogil:
        for i in range(n):
            out[i] = m_to_rdist(dist_m[i])


def haversine_m_array(
    const float64_t[::1] lat1_deg,  # IN
    const float64_t[::1] lon1_deg,  # IN
    const float64_t[::1] lat2_deg,  # IN
    const float64_t[::1] lon2_deg,  # IN
    float64_t[::1] out,  # OUT: metres
):
    """Great-circle distance on a sphere of radius 6371.009 km.

    Parameters
    ----------
    lat1_deg, lon1_deg, lat2_deg, lon2_deg : float64 array, shape (n,)
        The two points of every pair, degrees.
    out : float64 array, shape (n,)
        Receives the distances, metres, in [0, π · 6371009].
    """
    cdef Py_ssize_t i, n = lat1_deg.shape[0]
    check_lengths(n, lon1_deg.shape[0], "lon1_deg")
    check_lengths(n, lat2_deg.shape[0], "lat2_deg")
    check_lengths(n, lon2_deg.shape[0], "lon2_deg")
    check_lengths(n, out.shape[0], "out")
    with nogil:
        for i in range(n):
            out[i] = haversine_m(lat1_deg[i], lon1_deg[i], lat2_deg[i], lon2_deg[i])


def distance_m_array(
    const float64_t[::1] lat1_deg,  # IN
    const float64_t[::1] lon1_deg,  # IN
    const float64_t[::1] lat2_deg,  # IN
    const float64_t[::1] lon2_deg,  # IN
    float64_t[::1] out,  # OUT: metres
):
    """Vincenty inverse distance on WGS-84, haversine where it does not converge.

    Parameters
    ----------
    lat1_deg, lon1_deg, lat2_deg, lon2_deg : float64 array, shape (n,)
        The two points of every pair, degrees.
    out : float64 array, shape (n,)
        Receives the distances, metres, in [0, ~20004 km]; 0 for identical
        points, NaN where an input is NaN.
    """
    cdef Py_ssize_t i, n = lat1_deg.shape[0]
    check_lengths(n, lon1_deg.shape[0], "lon1_deg")
    check_lengths(n, lat2_deg.shape[0], "lat2_deg")
    check_lengths(n, lon2_deg.shape[0], "lon2_deg")
    check_lengths(n, out.shape[0], "out")
    with nogil:
        for i in range(n):
            out[i] = distance_m(lat1_deg[i], lon1_deg[i], lat2_deg[i], lon2_deg[i])


def distance_m_scalar(double lat1_deg, double lon1_deg, double lat2_deg, double lon2_deg):
    """``distance_m_array`` for one pair of points, without the arrays (a per-call saving
    of several microseconds where the caller has plain floats)."""
    return distance_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg)


def destination_array(
    const float64_t[::1] lat_deg,  # IN
    const float64_t[::1] lon_deg,  # IN
    const float64_t[::1] bearing_deg,  # IN
    const float64_t[::1] dist_m,  # IN
    float64_t[::1] out_lat_deg,  # OUT
    float64_t[::1] out_lon_deg,  # OUT
):
    """Vincenty direct on WGS-84: travel ``dist_m`` along ``bearing_deg``.

    Parameters
    ----------
    lat_deg, lon_deg : float64 array, shape (n,)
        Start points, degrees.
    bearing_deg : float64 array, shape (n,)
        Initial bearings, degrees clockwise from north.
    dist_m : float64 array, shape (n,)
        Distances, metres; negative distances go the opposite way.
    out_lat_deg, out_lon_deg : float64 array, shape (n,)
        Receive the end points, degrees. The longitude is not normalised
        into [-180, 180]. NaN where the iteration does not converge or an
        input is NaN.
    """
    cdef Py_ssize_t i, n = lat_deg.shape[0]
    check_lengths(n, lon_deg.shape[0], "lon_deg")
    check_lengths(n, bearing_deg.shape[0], "bearing_deg")
    check_lengths(n, dist_m.shape[0], "dist_m")
    check_lengths(n, out_lat_deg.shape[0], "out_lat_deg")
    check_lengths(n, out_lon_deg.shape[0], "out_lon_deg")
    with nogil:
        for i in range(n):
            destination(
                lat_deg[i], lon_deg[i], bearing_deg[i], dist_m[i],
                &out_lat_deg[i], &out_lon_deg[i],
            )


def bbox_array(
    const float64_t[::1] lat_deg,  # IN
    const float64_t[::1] lon_deg,  # IN
    const float64_t[::1] dist_m,  # IN
    float64_t[::1] out_max_lat_deg,  # OUT
    float64_t[::1] out_min_lat_deg,  # OUT
    float64_t[::1] out_max_lon_deg,  # OUT
    float64_t[::1] out_min_lon_deg,  # OUT
):
    """Bounding box of the points within ``dist_m`` north, south, east and west.

    The latitude bounds are the destinations at bearing 0° for +d and -d,
    clamped to ±85.051°; the longitude bounds are the destinations at bearing
    90° for +d and -d, clamped to ±180°.

    Parameters
    ----------
    lat_deg, lon_deg : float64 array, shape (n,)
        Centres, degrees.
    dist_m : float64 array, shape (n,)
        Half the box size, metres.
    out_max_lat_deg, out_min_lat_deg, out_max_lon_deg, out_min_lon_deg :
        float64 array, shape (n,)
        Receive the box bounds, degrees; NaN where an input is NaN.
    """
    cdef Py_ssize_t i, n = lat_deg.shape[0]
    cdef double lat, lon
    check_lengths(n, lon_deg.shape[0], "lon_deg")
    check_lengths(n, dist_m.shape[0], "dist_m")
    check_lengths(n, out_max_lat_deg.shape[0], "out_max_lat_deg")
    check_lengths(n, out_min_lat_deg.shape[0], "out_min_lat_deg")
    check_lengths(n, out_max_lon_deg.shape[0], "out_max_lon_deg")
    check_lengths(n, out_min_lon_deg.shape[0], "out_min_lon_deg")
    with nogil:
        for i in range(n):
            destination(lat_deg[i], lon_deg[i], 0.0, dist_m[i], &lat, &lon)
            out_max_lat_deg[i] = _clamp(lat, MAX_LAT_DEG)
            destination(lat_deg[i], lon_deg[i], 0.0, -dist_m[i], &lat, &lon)
            out_min_lat_deg[i] = _clamp(lat, MAX_LAT_DEG)
            destination(lat_deg[i], lon_deg[i], 90.0, dist_m[i], &lat, &lon)
            out_max_lon_deg[i] = _clamp(lon, MAX_LON_DEG)
            destination(lat_deg[i], lon_deg[i], 90.0, -dist_m[i], &lat, &lon)
            out_min_lon_deg[i] = _clamp(lon, MAX_LON_DEG)


def circle_radius_m_array(
    const float64_t[::1] lat_deg,  # IN
    const float64_t[::1] lon_deg,  # IN
    const float64_t[::1] max_lat_deg,  # IN
    const float64_t[::1] max_lon_deg,  # IN
    const float64_t[::1] min_lat_deg,  # IN
    const float64_t[::1] min_lon_deg,  # IN
    int64_t[::1] out,  # OUT: metres, or -1
):
    """Radius of the circle around a centre that covers its bounding box.

    Parameters
    ----------
    lat_deg, lon_deg : float64 array, shape (n,)
        Centres, degrees.
    max_lat_deg, max_lon_deg, min_lat_deg, min_lon_deg : float64 array, shape (n,)
        Bounding boxes, degrees.
    out : int64 array, shape (n,)
        Receives the largest ``distance_m`` from the centre to the four box
        corners, metres, rounded half to even; -1 where that distance is not
        finite (a NaN or infinite input), since it has no integer value.
    """
    cdef Py_ssize_t i, n = lat_deg.shape[0]
    cdef double radius
    check_lengths(n, lon_deg.shape[0], "lon_deg")
    check_lengths(n, max_lat_deg.shape[0], "max_lat_deg")
    check_lengths(n, max_lon_deg.shape[0], "max_lon_deg")
    check_lengths(n, min_lat_deg.shape[0], "min_lat_deg")
    check_lengths(n, min_lon_deg.shape[0], "min_lon_deg")
    check_lengths(n, out.shape[0], "out")
    with nogil:
        for i in range(n):
            radius = corner_distance_m(
                lat_deg[i], lon_deg[i],
                max_lat_deg[i], max_lon_deg[i], min_lat_deg[i], min_lon_deg[i],
            )
            # Casting a non-finite double to an integer is undefined in C.
            if isfinite(radius):
                out[i] = <int64_t>rint(radius)  # rint: half to even
            else:
                out[i] = -1


def max_distance_m_array(
    double lat_deg,  # IN
    double lon_deg,  # IN
    const float64_t[::1] lats_deg,  # IN
    const float64_t[::1] lons_deg,  # IN
):
    """Radius of the circle around a centre that covers a set of points.

    Parameters
    ----------
    lat_deg, lon_deg : float
        The centre, degrees.
    lats_deg, lons_deg : float64 array, shape (n,)
        The points, degrees.

    Returns
    -------
    float
        The largest ``distance_m`` from the centre to a point, metres;
        0.0 for no points, NaN if any distance is NaN.
    """
    cdef Py_ssize_t i, n = lats_deg.shape[0]
    cdef double dist, radius = 0.0
    check_lengths(n, lons_deg.shape[0], "lons_deg")
    with nogil:
        for i in range(n):
            dist = distance_m(lat_deg, lon_deg, lats_deg[i], lons_deg[i])
            if isnan(dist):
                radius = NAN
                break
            if dist > radius:
                radius = dist
    return radius
