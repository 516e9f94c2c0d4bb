"""Physical and geodetic constants, with their units in their names.

The geodesy itself runs in the compiled kernels of ``ichnaea._fast``, which
may not import from ``ichnaea`` (the import graph points the other way):
``ichnaea/_fast/_geodesy.pxd`` keeps its own C copies, and
``tests/_fast/test_geodesy.py`` holds them equal to these. Python code that
needs one of the values (report validation's coordinate ranges) reads it
here.
"""

from typing import Final

# Mean Earth radius used by the spherical (haversine) distance, in metres.
# 6371.009 km is the IUGG mean radius R1 = (2a + b) / 3 of WGS-84.
EARTH_RADIUS_M: Final = 6371009.0

# WGS-84 ellipsoid: semi-major axis a, semi-minor axis b (both metres) and
# flattening f = (a - b) / a, as used by the Vincenty formulae.
WGS84_A_M: Final = 6378137.0
WGS84_B_M: Final = 6356752.314245
WGS84_F: Final = 1.0 / 298.257223563

# Vincenty iteration rule: iterate while the change of the auxiliary
# longitude (inverse) or of the arc length (direct), both in radians, is
# above the cut-off, for at most this many passes.
VINCENTY_TOLERANCE_RAD: Final = 1e-11
VINCENTY_MAX_ITERATIONS: Final = 25

# Clamp bounds for bounding boxes, in degrees. 85.051 degrees is the
# latitude limit of the Web-Mercator projection used by the map tiles.
MAX_LAT_DEG: Final = 85.051
MIN_LAT_DEG: Final = -85.051
MAX_LON_DEG: Final = 180.0
MIN_LON_DEG: Final = -180.0
