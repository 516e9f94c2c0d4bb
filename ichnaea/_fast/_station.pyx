"""Station-updater kernels: observation weights and per-station aggregates.

The station updater (spec/pipeline.md 8 and 9) learns where Wi-Fi access
points, Bluetooth beacons and cells are from batches of observations. Its
numeric work is three array passes over a whole batch, done here:

* ``observation_weights`` gives every observation the weight
  ``accuracy × age × speed × signal`` (spec 8). The first three factors
  qualify the report: each uses the absolute value x of its input, treats a
  missing value (NaN) or 0 as "unknown" (factor 1), is 0 above a maximum
  and otherwise ``min(√(full / max(x, floor)), 1)``: for the accuracy full =
  floor = 10 m and the maximum is 100 m (Bluetooth), 200 m (Wi-Fi) or
  1000 m (cells); for the age full = floor = 2000 ms, maximum 20000 ms; for
  the speed full = 5 m/s, floor 1 m/s, maximum 50 m/s. The signal factor
  ``(10000 / (s + o)²)²`` favours strong signals: s is the signal in dBm
  (NaN or 0 means the type's default), o the type's offset. Bluetooth always gets 1; Wi-Fi uses
  default −80 dBm and offset −20; cells use (default, offset) (−95, −5) for
  GSM, (−100, 0) for WCDMA, (−105, +5) for LTE and, our extension, (−110,
  +10) for NR, so a cell at its default signal weighs 1. A cell of any other
  radio (CDMA, or NaN) cannot be weighed and gets 0, which makes the
  updater drop it.
* ``aggregate_groups`` summarises the observations of every station of the
  batch at once. The observations are sorted by station and ``offsets``
  delimits the groups, CSR-style. Per group it returns the bounding box,
  whether the box is *consistent* (the Vincenty distance between its
  south-west and north-east corners is at most ``max_dist_m``), the
  weighted centre (the weighted arithmetic mean of the degrees), the circle
  radius from that centre to the box corners rounded half to even (as
  ``ichnaea.geo.circle_radius_m``), the summed weight and the count.
* ``max_distance_to_points`` measures, per group, the largest distance from
  a given point (the station's stored centre) to the group's observations:
  the station agrees with the observations when it is at most the type's
  maximum distance (spec 9.4).

Distances are ``distance_m`` of ``_geodesy.pxd`` (Vincenty inverse on
WGS-84, haversine where it does not converge), degrees in, metres out.

Unlike the geodesy kernels, which ``ichnaea/geo.py`` feeds, these entry
points are called by the pipeline directly, so each does its own boundary
work once per call: inputs are converted to contiguous float64 (no copy when
they already are, read-only arrays included; float32 and integer arrays are
converted), lengths are checked and the outputs are allocated and returned.
The loops then run over memoryviews without the GIL.
"""

import numpy as np

from libc.math cimport INFINITY, NAN, fabs, isfinite, isnan, rint, sqrt
from libc.stdint cimport uint8_t

from ichnaea._fast._geodesy cimport corner_distance_m, distance_m
from ichnaea._fast._typedefs cimport check_lengths, float64_t, int64_t

# Station kinds, the ``kind`` argument of observation_weights.
cdef enum:
    _BLUE = 0
    _WIFI = 1
    _CELL = 2

KIND_BLUE = _BLUE
KIND_WIFI = _WIFI
KIND_CELL = _CELL

# ichnaea.enums.Radio values of the cells that can be weighed.
cdef enum:
    _GSM = 0
    _WCDMA = 2
    _LTE = 3
    _NR = 4

# Largest accuracy (metres) an observation may report and still count.
cdef double MAX_ACCURACY_BLUE_M = 100.0
cdef double MAX_ACCURACY_WIFI_M = 200.0
cdef double MAX_ACCURACY_CELL_M = 1000.0
# Accuracies below this count as this good (metres).
cdef double MIN_ACCURACY_M = 10.0
# Ages up to this get the full weight, above the maximum none (ms).
cdef double FULL_WEIGHT_AGE_MS = 2000.0
cdef double MAX_AGE_MS = 20000.0
# Speeds up to this get the full weight, above the maximum none (m/s).
cdef double FULL_WEIGHT_SPEED_MPS = 5.0
cdef double MIN_SPEED_MPS = 1.0
cdef double MAX_SPEED_MPS = 50.0
# Signal weight (SIGNAL_SCALE / (s + offset)²)², dBm.
cdef double SIGNAL_SCALE = 10000.0
cdef double WIFI_DEFAULT_SIGNAL_DBM = -80.0
cdef double WIFI_SIGNAL_OFFSET_DBM = -20.0
cdef double GSM_DEFAULT_SIGNAL_DBM = -95.0
cdef double GSM_SIGNAL_OFFSET_DBM = -5.0
cdef double WCDMA_DEFAULT_SIGNAL_DBM = -100.0
cdef double WCDMA_SIGNAL_OFFSET_DBM = 0.0
cdef double LTE_DEFAULT_SIGNAL_DBM = -105.0
cdef double LTE_SIGNAL_OFFSET_DBM = 5.0
cdef double NR_DEFAULT_SIGNAL_DBM = -110.0
cdef double NR_SIGNAL_OFFSET_DBM = 10.0


# ---------------------------------------------------------------------------
# Scalar helpers
# ---------------------------------------------------------------------------

cdef inline bint _unknown(
    double value,  # IN
) noexcept nogil:
    # A missing (NaN) or zero value carries no information.
    return isnan(value) or value == 0.0


cdef inline double _qualify(
    double value,  # IN: accuracy, age or speed, any sign
    double floor_value,  # IN: smaller |value| counts as this
    double full_weight,  # IN: |value| up to this gets factor 1
    double max_value,  # IN: larger |value| gets factor 0
) noexcept nogil:
    # min(√(full_weight / max(|value|, floor_value)), 1), 1 if unknown,
    # 0 above max_value.
    cdef double x = fabs(value)
    cdef double factor
    if _unknown(value):
        return 1.0
    if x > max_value:
        return 0.0
    if x < floor_value:
        x = floor_value
    factor = sqrt(full_weight / x)
    if factor > 1.0:
        return 1.0
    return factor


cdef inline double _signal_factor(
    double signal_dbm,  # IN: NaN or 0 = unknown
    double default_dbm,  # IN
    double offset_dbm,  # IN
) noexcept nogil:
    # (10000 / (s + offset)²)², in (0, ∞]; +inf at s = −offset.
    cdef double s = default_dbm if _unknown(signal_dbm) else signal_dbm
    cdef double d = s + offset_dbm
    cdef double t
    if d == 0.0:
        return INFINITY  # explicit, so a debug build does not raise
    t = SIGNAL_SCALE / (d * d)
    return t * t


cdef double _observation_weight(
    int kind,  # IN: _BLUE, _WIFI or _CELL
    double accuracy_m,  # IN
    double age_ms,  # IN
    double speed_mps,  # IN
    double signal_dbm,  # IN
    double radio,  # IN: Radio value (cells only)
) noexcept nogil:
    cdef double max_accuracy_m, signal
    if kind == _BLUE:
        max_accuracy_m = MAX_ACCURACY_BLUE_M
        signal = 1.0
    elif kind == _WIFI:
        max_accuracy_m = MAX_ACCURACY_WIFI_M
        signal = _signal_factor(signal_dbm, WIFI_DEFAULT_SIGNAL_DBM, WIFI_SIGNAL_OFFSET_DBM)
    else:
        max_accuracy_m = MAX_ACCURACY_CELL_M
        if radio == _GSM:
            signal = _signal_factor(signal_dbm, GSM_DEFAULT_SIGNAL_DBM, GSM_SIGNAL_OFFSET_DBM)
        elif radio == _WCDMA:
            signal = _signal_factor(
                signal_dbm, WCDMA_DEFAULT_SIGNAL_DBM, WCDMA_SIGNAL_OFFSET_DBM
            )
        elif radio == _LTE:
            signal = _signal_factor(signal_dbm, LTE_DEFAULT_SIGNAL_DBM, LTE_SIGNAL_OFFSET_DBM)
        elif radio == _NR:
            signal = _signal_factor(signal_dbm, NR_DEFAULT_SIGNAL_DBM, NR_SIGNAL_OFFSET_DBM)
        else:
            return 0.0  # CDMA or unknown radio: cannot be weighed
    return (
        _qualify(accuracy_m, MIN_ACCURACY_M, MIN_ACCURACY_M, max_accuracy_m)
        * _qualify(age_ms, FULL_WEIGHT_AGE_MS, FULL_WEIGHT_AGE_MS, MAX_AGE_MS)
        * _qualify(speed_mps, MIN_SPEED_MPS, FULL_WEIGHT_SPEED_MPS, MAX_SPEED_MPS)
        * signal
    )


cdef Py_ssize_t _bad_offset(
    const int64_t[::1] offsets,  # IN
    Py_ssize_t n,  # IN: number of observations
) noexcept nogil:
    # Index of the first offset breaking 0 ≤ offsets[0] ≤ … ≤ offsets[-1] ≤ n,
    # or -1 if there is none.
    cdef Py_ssize_t i, m = offsets.shape[0]
    for i in range(m):
        if offsets[i] < 0 or offsets[i] > n:
            return i
        if i > 0 and offsets[i] < offsets[i - 1]:
            return i
    return -1


# ---------------------------------------------------------------------------
# Python-boundary helpers (once per call, never per observation)
# ---------------------------------------------------------------------------

cdef object _vector(object values, str name):
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return np.ascontiguousarray(array)


cdef object _offsets(object values, Py_ssize_t n):
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] == 0:
        raise ValueError(f"offsets must be a non-empty 1-D array, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise ValueError(f"offsets must be integers, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.int64)
    cdef const int64_t[::1] view = array
    cdef Py_ssize_t bad
    with nogil:
        bad = _bad_offset(view, n)
    if bad >= 0:
        raise ValueError(
            f"offsets must rise from 0 to at most {n}; offsets[{bad}] = {array[bad]}"
        )
    return array


# ---------------------------------------------------------------------------
# Array entry points
# ---------------------------------------------------------------------------

def observation_weights(int kind, accuracy_m, age_ms, speed_mps, signal_dbm, radio=None):
    """Weight of every observation of one station kind (spec 8).

    ``accuracy × age × speed × signal`` factors, see the module docs.

    Parameters
    ----------
    kind : int
        ``KIND_BLUE`` (0), ``KIND_WIFI`` (1) or ``KIND_CELL`` (2).
    accuracy_m : array_like of float, shape (n,)
        Position accuracy, metres; NaN or 0 = unknown (factor 1), above 100
        (Bluetooth), 200 (Wi-Fi) or 1000 (cell) gives 0.
    age_ms : array_like of float, shape (n,)
        Observation age, milliseconds, either sign; NaN or 0 = unknown;
        above 20000 gives 0.
    speed_mps : array_like of float, shape (n,)
        Speed, m/s; NaN or 0 = unknown; above 50 gives 0.
    signal_dbm : array_like of float, shape (n,)
        Signal strength, dBm; NaN or 0 = the type's default.
    radio : array_like of float or int, shape (n,), or None
        ``ichnaea.enums.Radio`` values (gsm 0, wcdma 2, lte 3, nr 4);
        required for cells, ignored otherwise. Other values or NaN give 0.

    Returns
    -------
    ndarray of float64, shape (n,)
        Weights ≥ 0; 1 for an observation with every input unknown.

    Raises
    ------
    ValueError
        For an unknown ``kind``, a missing ``radio`` for cells, inputs that
        are not one-dimensional or of different lengths.
    """
    if kind not in (_BLUE, _WIFI, _CELL):
        raise ValueError(f"kind must be 0 (blue), 1 (wifi) or 2 (cell), got {kind}")
    cdef const float64_t[::1] accuracy = _vector(accuracy_m, "accuracy_m")
    cdef const float64_t[::1] age = _vector(age_ms, "age_ms")
    cdef const float64_t[::1] speed = _vector(speed_mps, "speed_mps")
    cdef const float64_t[::1] signal = _vector(signal_dbm, "signal_dbm")
    cdef Py_ssize_t i, n = accuracy.shape[0]
    check_lengths(n, age.shape[0], "age_ms")
    check_lengths(n, speed.shape[0], "speed_mps")
    check_lengths(n, signal.shape[0], "signal_dbm")
    if radio is None:
        if kind == _CELL:
            raise ValueError("radio is required for cells")
        radio = np.full(n, NAN)
    cdef const float64_t[::1] radios = _vector(radio, "radio")
    check_lengths(n, radios.shape[0], "radio")
    result = np.empty(n, dtype=np.float64)
    cdef float64_t[::1] out = result
    with nogil:
        for i in range(n):
            out[i] = _observation_weight(
                kind, accuracy[i], age[i], speed[i], signal[i], radios[i]
            )
    return result


def aggregate_groups(lat_deg, lon_deg, weight, offsets, double max_dist_m):
    """Bounding box, consistency, weighted centre and radius of every group.

    Parameters
    ----------
    lat_deg, lon_deg : array_like of float, shape (n,)
        Observation positions, degrees, sorted by group.
    weight : array_like of float, shape (n,)
        Observation weights (``observation_weights``).
    offsets : array_like of int, shape (g + 1,)
        Group k is observations ``offsets[k]:offsets[k + 1]``; the offsets
        must rise (not strictly) within [0, n].
    max_dist_m : float
        Largest consistent box diagonal, metres (spec 9.3: Bluetooth 100,
        Wi-Fi 5000, cells 100000).

    Returns
    -------
    dict of str to ndarray, each of shape (g,)
        ``min_lat_deg``, ``max_lat_deg``, ``min_lon_deg``, ``max_lon_deg``
        (float64): the bounding box. ``consistent`` (bool): the distance
        from (min_lat, min_lon) to (max_lat, max_lon) is ≤ ``max_dist_m``.
        ``lat_deg``, ``lon_deg`` (float64): Σ w·x / Σ w. ``radius_m``
        (int64): the largest distance from the centre to a box corner,
        metres, rounded half to even. ``weight`` (float64): Σ w.
        ``count`` (int64): the number of observations.

        An empty group has a NaN box and centre, is not consistent, has
        radius -1, weight 0 and count 0. A NaN position makes its group's
        box and centre NaN, the group inconsistent and the radius -1; a NaN
        weight, or weights summing to 0, make the centre NaN and the radius
        -1 (no integer stands for NaN).
    """
    cdef const float64_t[::1] lat = _vector(lat_deg, "lat_deg")
    cdef const float64_t[::1] lon = _vector(lon_deg, "lon_deg")
    cdef const float64_t[::1] w = _vector(weight, "weight")
    cdef Py_ssize_t n = lat.shape[0]
    check_lengths(n, lon.shape[0], "lon_deg")
    check_lengths(n, w.shape[0], "weight")
    offsets_array = _offsets(offsets, n)
    cdef const int64_t[::1] off = offsets_array
    cdef Py_ssize_t g = off.shape[0] - 1
    cdef Py_ssize_t k, i
    cdef double min_lat, max_lat, min_lon, max_lon, total, sum_lat, sum_lon, radius
    cdef bint has_nan

    outputs = {
        "min_lat_deg": np.empty(g, dtype=np.float64),
        "max_lat_deg": np.empty(g, dtype=np.float64),
        "min_lon_deg": np.empty(g, dtype=np.float64),
        "max_lon_deg": np.empty(g, dtype=np.float64),
        "consistent": np.empty(g, dtype=np.uint8),
        "lat_deg": np.empty(g, dtype=np.float64),
        "lon_deg": np.empty(g, dtype=np.float64),
        "radius_m": np.empty(g, dtype=np.int64),
        "weight": np.empty(g, dtype=np.float64),
        "count": np.empty(g, dtype=np.int64),
    }
    cdef float64_t[::1] out_min_lat = outputs["min_lat_deg"]
    cdef float64_t[::1] out_max_lat = outputs["max_lat_deg"]
    cdef float64_t[::1] out_min_lon = outputs["min_lon_deg"]
    cdef float64_t[::1] out_max_lon = outputs["max_lon_deg"]
    cdef uint8_t[::1] out_consistent = outputs["consistent"]
    cdef float64_t[::1] out_lat = outputs["lat_deg"]
    cdef float64_t[::1] out_lon = outputs["lon_deg"]
    cdef int64_t[::1] out_radius = outputs["radius_m"]
    cdef float64_t[::1] out_weight = outputs["weight"]
    cdef int64_t[::1] out_count = outputs["count"]

    with nogil:
        for k in range(g):
            min_lat = INFINITY
            max_lat = -INFINITY
            min_lon = INFINITY
            max_lon = -INFINITY
            total = 0.0
            sum_lat = 0.0
            sum_lon = 0.0
            has_nan = off[k + 1] == off[k]  # an empty group has no box
            for i in range(off[k], off[k + 1]):
                if isnan(lat[i]) or isnan(lon[i]):
                    has_nan = True
                if lat[i] < min_lat:
                    min_lat = lat[i]
                if lat[i] > max_lat:
                    max_lat = lat[i]
                if lon[i] < min_lon:
                    min_lon = lon[i]
                if lon[i] > max_lon:
                    max_lon = lon[i]
                total += w[i]
                sum_lat += w[i] * lat[i]
                sum_lon += w[i] * lon[i]
            if has_nan:
                min_lat = NAN
                max_lat = NAN
                min_lon = NAN
                max_lon = NAN
            out_min_lat[k] = min_lat
            out_max_lat[k] = max_lat
            out_min_lon[k] = min_lon
            out_max_lon[k] = max_lon
            # A NaN box gives a NaN distance, which is not "at most".
            out_consistent[k] = distance_m(min_lat, min_lon, max_lat, max_lon) <= max_dist_m
            if total == 0.0 or has_nan:
                out_lat[k] = NAN
                out_lon[k] = NAN
            else:
                out_lat[k] = sum_lat / total
                out_lon[k] = sum_lon / total
            radius = corner_distance_m(
                out_lat[k], out_lon[k], max_lat, max_lon, min_lat, min_lon
            )
            # Casting a non-finite double to an integer is undefined in C.
            out_radius[k] = <int64_t>rint(radius) if isfinite(radius) else -1
            out_weight[k] = total
            out_count[k] = off[k + 1] - off[k]
    outputs["consistent"] = outputs["consistent"].view(np.bool_)
    return outputs


def max_distance_to_points(lat_deg, lon_deg, offsets, center_lat_deg, center_lon_deg):
    """Largest distance from each group's centre to the group's points.

    Parameters
    ----------
    lat_deg, lon_deg : array_like of float, shape (n,)
        Observation positions, degrees, sorted by group.
    offsets : array_like of int, shape (g + 1,)
        Group k is observations ``offsets[k]:offsets[k + 1]``, as for
        ``aggregate_groups``.
    center_lat_deg, center_lon_deg : array_like of float, shape (g,)
        One point per group (the station's stored centre), degrees; NaN for
        a station without a position.

    Returns
    -------
    ndarray of float64, shape (g,)
        The largest ``distance_m`` from the centre to a point of the group,
        metres; NaN if the centre or a point is NaN, 0.0 for an empty group
        with a centre.
    """
    cdef const float64_t[::1] lat = _vector(lat_deg, "lat_deg")
    cdef const float64_t[::1] lon = _vector(lon_deg, "lon_deg")
    cdef Py_ssize_t n = lat.shape[0]
    check_lengths(n, lon.shape[0], "lon_deg")
    offsets_array = _offsets(offsets, n)
    cdef const int64_t[::1] off = offsets_array
    cdef Py_ssize_t g = off.shape[0] - 1
    cdef const float64_t[::1] center_lat = _vector(center_lat_deg, "center_lat_deg")
    cdef const float64_t[::1] center_lon = _vector(center_lon_deg, "center_lon_deg")
    check_lengths(g, center_lat.shape[0], "center_lat_deg")
    check_lengths(g, center_lon.shape[0], "center_lon_deg")
    cdef Py_ssize_t k, i
    cdef double dist, farthest
    result = np.empty(g, dtype=np.float64)
    cdef float64_t[::1] out = result
    with nogil:
        for k in range(g):
            farthest = 0.0
            if isnan(center_lat[k]) or isnan(center_lon[k]):
                farthest = NAN
            else:
                for i in range(off[k], off[k + 1]):
                    dist = distance_m(center_lat[k], center_lon[k], lat[i], lon[i])
                    if isnan(dist):
                        farthest = NAN
                        break
                    if dist > farthest:
                        farthest = dist
            out[k] = farthest
    return result
