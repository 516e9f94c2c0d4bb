# Scalar geodesy helpers shared by the kernels in ichnaea._fast.
#
# Other kernel modules ``cimport`` these to compute distances inside their own
# nogil loops (for example the clustering kernel compares reduced haversine
# distances). Every helper is ``noexcept nogil``: no Python objects, no
# exceptions, no allocations. Failure is reported through a status code or a
# NaN, never by raising. Angles are degrees and distances metres unless the
# name says otherwise.
#
# The constants are compile-time C constants, copies of those in
# ichnaea/constants.py (ichnaea._fast imports nothing from ichnaea); the test
# suite checks that both sets agree.

cdef extern from *:
    """
    #define ICHNAEA_EARTH_RADIUS_M 6371009.0
    #define ICHNAEA_WGS84_A_M 6378137.0
    #define ICHNAEA_WGS84_B_M 6356752.314245
    #define ICHNAEA_WGS84_F (1.0 / 298.257223563)
    #define ICHNAEA_VINCENTY_TOLERANCE_RAD 1e-11
    #define ICHNAEA_VINCENTY_MAX_ITERATIONS 25
    #define ICHNAEA_MAX_LAT_DEG 85.051
    #define ICHNAEA_MAX_LON_DEG 180.0
    """
    # Mean Earth radius of the haversine sphere, metres.
    const double EARTH_RADIUS_M "ICHNAEA_EARTH_RADIUS_M"
    # WGS-84 semi-major / semi-minor axes (metres) and flattening.
    const double WGS84_A_M "ICHNAEA_WGS84_A_M"
    const double WGS84_B_M "ICHNAEA_WGS84_B_M"
    const double WGS84_F "ICHNAEA_WGS84_F"
    # Vincenty: iterate while the change is above this (radians), at most
    # VINCENTY_MAX_ITERATIONS passes.
    const double VINCENTY_TOLERANCE_RAD "ICHNAEA_VINCENTY_TOLERANCE_RAD"
    const int VINCENTY_MAX_ITERATIONS "ICHNAEA_VINCENTY_MAX_ITERATIONS"
    # Bounding-box clamp bounds, degrees.
    const double MAX_LAT_DEG "ICHNAEA_MAX_LAT_DEG"
    const double MAX_LON_DEG "ICHNAEA_MAX_LON_DEG"

# Status codes of the iterative helpers.
cdef enum:
    GEODESY_OK = 0
    GEODESY_NO_CONVERGENCE = 1

# Reduced haversine distance sin²(Δφ/2) + cos φ1·cos φ2·sin²(Δλ/2), in
# [0, 1] up to rounding. Monotonic in the distance, so comparisons can stay
# in this space and skip the asin/sqrt (convert thresholds with m_to_rdist).
cdef double haversine_rdist(
    double lat1_deg,  # IN
    double lon1_deg,  # IN
    double lat2_deg,  # IN
    double lon2_deg,  # IN
) noexcept nogil

# Reduced distance -> haversine metres: 2R·asin(min(1, √rdist)).
cdef double rdist_to_m(
    double rdist,  # IN
) noexcept nogil

# Metres -> reduced distance such that rdist <= m_to_rdist(d) exactly when
# the haversine distance is <= d: -1 for d < 0, +inf for d >= πR.
cdef double m_to_rdist(
    double dist_m,  # IN
) noexcept nogil

# Spherical great-circle distance (radius EARTH_RADIUS_M), metres.
cdef double haversine_m(
    double lat1_deg,  # IN
    double lon1_deg,  # IN
    double lat2_deg,  # IN
    double lon2_deg,  # IN
) noexcept nogil

# Vincenty inverse distance on WGS-84. Writes metres to out_m and returns
# GEODESY_OK, or returns GEODESY_NO_CONVERGENCE (out_m set to NaN) when the
# iteration does not converge within VINCENTY_MAX_ITERATIONS passes, which
# happens only for nearly antipodal points. NaN inputs give GEODESY_OK, NaN.
cdef int vincenty_m(
    double lat1_deg,  # IN
    double lon1_deg,  # IN
    double lat2_deg,  # IN
    double lon2_deg,  # IN
    double* out_m,  # OUT
) noexcept nogil

# A point with its reduced latitude's sine and cosine, for distances from or
# to it computed many times (the least-squares residuals): what vincenty_m
# derives for each point on every call.
cdef struct Reduced:
    double lat_deg
    double lon_deg
    double sin_u
    double cos_u

cdef void reduce_point(
    double lat_deg,  # IN
    double lon_deg,  # IN
    Reduced* out,  # OUT
) noexcept nogil

# distance_m(a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg), the same double.
cdef double distance_reduced_m(
    const Reduced* a,  # IN
    const Reduced* b,  # IN
) noexcept nogil

# Vincenty inverse, falling back to haversine_m on non-convergence, metres.
# 0 for identical points; NaN in, NaN out.
cdef double distance_m(
    double lat1_deg,  # IN
    double lon1_deg,  # IN
    double lat2_deg,  # IN
    double lon2_deg,  # IN
) noexcept nogil

# Vincenty direct on WGS-84: the point dist_m away from (lat, lon) along
# the initial bearing (degrees clockwise from north; a negative distance goes
# the opposite way). The longitude is not normalised. Returns GEODESY_OK, or
# GEODESY_NO_CONVERGENCE with both outputs set to NaN. A NaN input gives
# GEODESY_OK with both outputs NaN.
cdef int destination(
    double lat_deg,  # IN
    double lon_deg,  # IN
    double bearing_deg,  # IN
    double dist_m,  # IN
    double* out_lat_deg,  # OUT
    double* out_lon_deg,  # OUT
) noexcept nogil

# Largest distance_m from (lat, lon) to the four corners of a bounding box,
# metres, not rounded; NaN if any corner distance is NaN.
cdef double corner_distance_m(
    double lat_deg,  # IN
    double lon_deg,  # IN
    double max_lat_deg,  # IN
    double max_lon_deg,  # IN
    double min_lat_deg,  # IN
    double min_lon_deg,  # IN
) noexcept nogil
