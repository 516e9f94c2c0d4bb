"""Weighting kernels: the position, accuracy and score of one cluster.

A cluster of Wi-Fi or Bluetooth networks (spec/locate.md 4.6) becomes one
answer in three steps:

1. *Sample.* When the cluster has more than ``max_networks`` members only
   the ``max_networks`` heaviest ones (by the weights of step 2) are used,
   ties going to the earlier input. The old service sorted by ascending
   score and so kept the *worst* networks (quirk Q1); a decision of issue
   11 samples the networks whose positions say the most (the strongest
   signals, the smallest radii): on the accuracy harness's held-out worlds
   this took the Wi-Fi median error from 24.0 m (the highest scores) to
   23.4 m. The three agree whenever the cluster is no larger than
   ``max_networks``.
2. *Weighted mean.* Each sampled network k gets the weight
   w_k = min(√(2000 / age_k), 1) · 10^(signal_k / 15) / clip(radius_k, 30, 300)
   (a NULL radius counts as 30 m), and the answer is the weighted
   arithmetic mean of the latitudes and longitudes in degrees. A decision
   of issue 11: received power falls with a power of the distance, so a
   weight growing tenfold per 15 dB stands for 1 / distance² at a
   path-loss exponent of 3, and a
   station whose observations spread over a small radius is better placed
   than one heard over a wide area. The original weighted by
   score / signal² (-50 dBm only 3.2 times -90 dBm) and refined the mean
   by least squares over residuals distance / signal² (scipy's leastsq;
   our port of MINPACK lmdif for it is gone with that step); on the
   accuracy harness's held-out worlds the new weights took the Wi-Fi
   median error from 29.8 m to 24.0 m (benchmarks/RESULTS.md).
3. *Accuracy* is the 95th percentile, interpolated linearly between order
   statistics like NumPy's default, of the distances from the answer to the
   sampled networks, clamped to [min_accuracy_m, max_accuracy_m]. The
   answer's score is the sum of the scores of the *whole* cluster.

Cells (spec 4.7, changed by issue 11) are not grouped by cell area: every
cell found for a query takes part, whatever its radio, network and area.
Each cell k weighs

   w_k = min(√(2000 / age_k), 1) · 10^((signal_k - floor_k) / 15) / r_k²

where ``floor_k`` is the lowest signal its radio reports (-113 dBm GSM,
-121 WCDMA, -140 LTE, -156 NR: the signals of different radios are not on
one scale, their height above the floor is) and ``r_k`` is the cell radius
bounded to [1 km, 50 km] (a NULL radius counts as 1 km; the bounds are
arguments): 1 / r² is the
precision of a position spread over a disc of that radius. The heaviest
cell seeds a group; every remaining cell whose disc overlaps the seed's
(centres at most r_seed + r_k apart: a device can hear both) joins it; the
rest seed further groups the same way. A group's position is the weighted
mean (a single cell's own position), its accuracy the weighted root mean
square of the distances from it to the cells and of their bounded radii,
sqrt(Σ w (d² + r²) / Σ w) (a single cell: its bounded radius), and its
score the sum of the cells' scores. Against the 95th percentile of the
distances alone, this spread tracks the error better (a 6 % smaller mean
calibrated radius for the same coverage on the training worlds) and keeps
the radii of co-located cells (an LTE and a GSM cell of one mast). The
original grouped by area, weighted by score / signal² and let the best
area win: on the accuracy harness's held-out worlds these rules took the
cell median error from 615 m to 489 m and the 90th percentile from
2,075 m to 1,275 m (benchmarks/RESULTS.md). The cell areas a query hears
("lacf" answers, when no cell is known) are grouped the same way, their
radii bounded to [1 km, 500 km] (the caller passes the bounds).

Sums are evaluated in NumPy's pairwise order (8 partial sums, halves above
128 terms), so that a weighted mean of given weights matches NumPy's bit for
bit; the weights themselves (libm's ``pow``) may differ from NumPy's
``power`` in the last bit, so positions agree within rounding. The entry
points take contiguous float64 arrays (see ichnaea/positioning.py for the
public functions) and allocate their scratch memory once, before releasing
the GIL.
"""

from libc.math cimport NAN, floor, isnan, pow, sqrt
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc

from ichnaea._fast._geodesy cimport distance_m
from ichnaea._fast._typedefs cimport check_lengths, float64_t

# Ages up to this many milliseconds get the full weight.
cdef double FULL_WEIGHT_AGE_MS = 2000.0
# Percentile of the distances reported as accuracy, as a fraction.
cdef double ACCURACY_QUANTILE = 0.95
# Wi-Fi and Bluetooth weights (step 2): tenfold per this many dB, divided by
# the station radius bounded to [MIN, MAX] metres.
cdef double SIGNAL_DB_PER_DECADE = 15.0
cdef double MIN_WEIGHT_RADIUS_M = 30.0
cdef double MAX_WEIGHT_RADIUS_M = 300.0

# One cluster's sample, packed for the weighted mean.
cdef struct _Sample:
    Py_ssize_t m
    double* lat_deg
    double* lon_deg
    double* weight


# ---------------------------------------------------------------------------
# Scalar and pointer helpers
# ---------------------------------------------------------------------------

cdef inline double _age_factor(
    double age_ms,  # IN: ≥ 1000 by the caller's rule
) noexcept nogil:
    cdef double factor = sqrt(FULL_WEIGHT_AGE_MS / age_ms)
    if factor > 1.0:  # written so that NaN passes through
        return 1.0
    return factor


cdef double _sum(
    const double* a,  # IN
    Py_ssize_t n,  # IN
) noexcept nogil:
    # NumPy's pairwise summation (numpy/_core/src/umath/loops_utils.h).
    cdef double r[8]
    cdef double res
    cdef Py_ssize_t i, j, half
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return _sum(a, half) + _sum(a + half, n - half)


cdef void _weighted_mean(
    const _Sample* s,  # IN
    double* scratch,  # OUT: m doubles
    double* out_lat_deg,  # OUT
    double* out_lon_deg,  # OUT
) noexcept nogil:
    cdef Py_ssize_t k
    cdef double total = _sum(s.weight, s.m)
    if total == 0.0:
        # Weights summing to zero define no mean (and x / 0 raises when
        # ICHNAEA_CYTHON_DEBUG turns cdivision off).
        out_lat_deg[0] = NAN
        out_lon_deg[0] = NAN
        return
    for k in range(s.m):
        scratch[k] = s.weight[k] * s.lat_deg[k]
    out_lat_deg[0] = _sum(scratch, s.m) / total
    for k in range(s.m):
        scratch[k] = s.weight[k] * s.lon_deg[k]
    out_lon_deg[0] = _sum(scratch, s.m) / total


cdef double _percentile95_m(
    double lat_deg,  # IN
    double lon_deg,  # IN
    const double* lats_deg,  # IN
    const double* lons_deg,  # IN
    Py_ssize_t n,  # IN
    double* top,  # OUT: scratch, n doubles
) noexcept nogil:
    # NumPy's linear method: virtual index v = (n - 1) · 0.95 between the
    # order statistics ⌊v⌋ and ⌊v⌋ + 1. Only the n - ⌊v⌋ largest distances
    # are needed, kept in descending order by insertion.
    cdef Py_ssize_t i, j, lo, keep, kept = 0
    cdef double d, v, gamma, below, above, diff
    if n == 0:
        return NAN
    v = <double>(n - 1) * ACCURACY_QUANTILE
    lo = <Py_ssize_t>floor(v)
    if lo >= n - 1:
        lo = n - 1
    keep = n - lo
    for i in range(n):
        d = distance_m(lat_deg, lon_deg, lats_deg[i], lons_deg[i])
        if isnan(d):
            return NAN
        if kept == keep and d <= top[kept - 1]:
            continue
        j = kept if kept < keep else keep - 1
        while j > 0 and top[j - 1] < d:
            top[j] = top[j - 1]
            j -= 1
        top[j] = d
        if kept < keep:
            kept += 1
    below = top[keep - 1]
    if lo == n - 1:
        return below
    above = top[keep - 2]
    gamma = v - <double>lo
    diff = above - below
    if gamma >= 0.5:  # NumPy's _lerp, exact at both ends
        return above - diff * (1.0 - gamma)
    return below + diff * gamma


cdef inline double _clamp(
    double value,  # IN
    double lower,  # IN
    double upper,  # IN
) noexcept nogil:
    # Comparisons rather than fmin/fmax so that NaN passes through.
    if value > upper:
        value = upper
    if value < lower:
        value = lower
    return value


cdef inline bint _ranks_before(
    const double* rank,  # IN
    Py_ssize_t a,  # IN
    Py_ssize_t b,  # IN
) noexcept nogil:
    # Higher rank first; NaN ranks last; ties in input order.
    cdef double sa = rank[a], sb = rank[b]
    if sa > sb:
        return True
    if sa < sb:
        return False
    if isnan(sa) != isnan(sb):
        return not isnan(sa)
    return a < b


cdef void _select_sample(
    const double* rank,  # IN
    Py_ssize_t n,  # IN
    Py_ssize_t max_networks,  # IN
    Py_ssize_t* order,  # OUT: scratch, n
    Py_ssize_t* merge,  # OUT: scratch, n
    uint8_t* out_in_sample,  # OUT
) noexcept nogil:
    # Bottom-up merge sort of the indices by rank, then mark the first
    # max_networks.
    cdef Py_ssize_t i, width, lo, mid, hi, a, b, k
    cdef Py_ssize_t* tmp
    if n <= max_networks:
        for i in range(n):
            out_in_sample[i] = 1
        return
    for i in range(n):
        order[i] = i
        out_in_sample[i] = 0
    width = 1
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            a = lo
            b = mid
            k = lo
            while a < mid and b < hi:
                if _ranks_before(rank, order[b], order[a]):
                    merge[k] = order[b]
                    b += 1
                else:
                    merge[k] = order[a]
                    a += 1
                k += 1
            while a < mid:
                merge[k] = order[a]
                a += 1
                k += 1
            while b < hi:
                merge[k] = order[b]
                b += 1
                k += 1
            lo = hi
        tmp = order
        order = merge
        merge = tmp
        width *= 2
    for i in range(max_networks if max_networks > 0 else 0):
        out_in_sample[order[i]] = 1


cdef inline double _network_weight(
    double age_factor,  # IN
    double signal_dbm,  # IN
    double radius_m,  # IN: NaN for none
) noexcept nogil:
    # Step 2's Wi-Fi and Bluetooth weight.
    cdef double radius = radius_m
    if not radius >= MIN_WEIGHT_RADIUS_M:  # NaN too
        radius = MIN_WEIGHT_RADIUS_M
    elif radius > MAX_WEIGHT_RADIUS_M:
        radius = MAX_WEIGHT_RADIUS_M
    return age_factor * pow(10.0, signal_dbm / SIGNAL_DB_PER_DECADE) / radius


cdef inline double _cell_radius(
    double radius_m,  # IN: NaN for none
    double lowest,  # IN
    double highest,  # IN
) noexcept nogil:
    # A cell's (or area's) radius bounded as its weight and its group's
    # reach use it.
    if not radius_m >= lowest:  # NaN too
        return lowest
    if radius_m > highest:
        return highest
    return radius_m


cdef inline double _cell_weight(
    double age_ms,  # IN
    double signal_dbm,  # IN
    double floor_dbm,  # IN: the lowest signal of the cell's radio
    double radius_m,  # IN: NaN for none
    double lowest,  # IN: the radius bounds
    double highest,  # IN
) noexcept nogil:
    cdef double radius = _cell_radius(radius_m, lowest, highest)
    return (
        _age_factor(age_ms)
        * pow(10.0, (signal_dbm - floor_dbm) / SIGNAL_DB_PER_DECADE)
        / (radius * radius)
    )


cdef void _pack(
    _Sample* s,  # OUT: fills m and the arrays
    const double* lat_deg,  # IN
    const double* lon_deg,  # IN
    const double* weight,  # IN
    const uint8_t* in_sample,  # IN: NULL for all
    Py_ssize_t n,  # IN
) noexcept nogil:
    cdef Py_ssize_t i, k = 0
    for i in range(n):
        if in_sample != NULL and not in_sample[i]:
            continue
        s.lat_deg[k] = lat_deg[i]
        s.lon_deg[k] = lon_deg[i]
        s.weight[k] = weight[i]
        k += 1
    s.m = k


cdef double* _alloc_sample(
    _Sample* s,  # OUT: array pointers into the block
    Py_ssize_t n,  # IN
    Py_ssize_t extra,  # IN: further doubles after the sample arrays
) noexcept nogil:
    # Returns the block to free, or NULL if it cannot be allocated.
    cdef double* block = <double*>malloc((3 * n + extra + 1) * sizeof(double))
    s.m = 0
    s.lat_deg = block
    s.lon_deg = block + n
    s.weight = block + 2 * n
    return block


# ---------------------------------------------------------------------------
# Array entry points
# ---------------------------------------------------------------------------

def cluster_weights(
    const float64_t[::1] age_ms,  # IN
    const float64_t[::1] signal_dbm,  # IN
    const float64_t[::1] radius_m,  # IN
    float64_t[::1] out,  # OUT: weights
):
    """Wi-Fi and Bluetooth weights (step 2):
    ``min(√(2000 / age_ms), 1) · 10^(signal_dbm / 15) / clip(radius_m, 30, 300)``.

    Parameters
    ----------
    age_ms : float64 array, shape (n,)
        Observation ages, milliseconds, already ``max(|age|, 1000)``.
    signal_dbm : float64 array, shape (n,)
        Signal strengths, dBm, missing values already replaced.
    radius_m : float64 array, shape (n,)
        Station radii, metres; NaN for none (counts as 30).
    out : float64 array, shape (n,)
        Receives the weights.
    """
    cdef Py_ssize_t i, n = age_ms.shape[0]
    check_lengths(n, signal_dbm.shape[0], "signal_dbm")
    check_lengths(n, radius_m.shape[0], "radius_m")
    check_lengths(n, out.shape[0], "out")
    with nogil:
        for i in range(n):
            out[i] = _network_weight(_age_factor(age_ms[i]), signal_dbm[i], radius_m[i])


def cell_weights(
    const float64_t[::1] age_ms,  # IN
    const float64_t[::1] signal_dbm,  # IN
    const float64_t[::1] floor_dbm,  # IN
    const float64_t[::1] radius_m,  # IN
    double min_radius_m,  # IN
    double max_radius_m,  # IN
    float64_t[::1] out,  # OUT: weights
):
    """Cell (and cell area) weights: ``min(√(2000 / age_ms), 1) · 10^((signal_dbm -
    floor_dbm) / 15) / clip(radius_m, min_radius_m, max_radius_m)²``.

    Parameters
    ----------
    age_ms : float64 array, shape (n,)
        Observation ages, milliseconds, already ``max(|age|, 1000)``.
    signal_dbm : float64 array, shape (n,)
        Signal strengths, dBm, missing values already the floor.
    floor_dbm : float64 array, shape (n,)
        The lowest signal of each cell's radio, dBm.
    radius_m : float64 array, shape (n,)
        Cell radii, metres; NaN for none (counts as ``min_radius_m``).
    min_radius_m, max_radius_m : float
        The radius bounds, metres (1 km and 50 km for cells).
    out : float64 array, shape (n,)
        Receives the weights.
    """
    cdef Py_ssize_t i, n = age_ms.shape[0]
    check_lengths(n, signal_dbm.shape[0], "signal_dbm")
    check_lengths(n, floor_dbm.shape[0], "floor_dbm")
    check_lengths(n, radius_m.shape[0], "radius_m")
    check_lengths(n, out.shape[0], "out")
    with nogil:
        for i in range(n):
            out[i] = _cell_weight(
                age_ms[i], signal_dbm[i], floor_dbm[i], radius_m[i], min_radius_m, max_radius_m
            )


def weighted_position(
    const float64_t[::1] lat_deg,  # IN
    const float64_t[::1] lon_deg,  # IN
    const float64_t[::1] weights,  # IN
):
    """Weighted arithmetic mean of positions, degrees.

    Parameters
    ----------
    lat_deg, lon_deg : float64 array, shape (n,)
        The positions, degrees.
    weights : float64 array, shape (n,)
        Their weights (see ``cluster_weights``).

    Returns
    -------
    (float, float)
        ``(Σ w·lat / Σ w, Σ w·lon / Σ w)``; NaN for no points, for weights
        summing to zero, or if an input is NaN.
    """
    cdef Py_ssize_t n = lat_deg.shape[0]
    cdef _Sample s
    cdef double lat = NAN, lon = NAN
    check_lengths(n, lon_deg.shape[0], "lon_deg")
    check_lengths(n, weights.shape[0], "weights")
    if n == 0:
        return NAN, NAN
    cdef double* scratch = <double*>malloc(n * sizeof(double))
    if scratch == NULL:
        raise MemoryError(f"cannot allocate scratch for {n} points")
    s.m = n
    s.lat_deg = <double*>&lat_deg[0]
    s.lon_deg = <double*>&lon_deg[0]
    s.weight = <double*>&weights[0]
    with nogil:
        _weighted_mean(&s, scratch, &lat, &lon)
    free(scratch)
    return lat, lon


def percentile95_distance_m(
    double lat_deg,  # IN
    double lon_deg,  # IN
    const float64_t[::1] lats_deg,  # IN
    const float64_t[::1] lons_deg,  # IN
):
    """95th percentile of the distances from a point to a set of points.

    Parameters
    ----------
    lat_deg, lon_deg : float
        The point, degrees.
    lats_deg, lons_deg : float64 array, shape (n,)
        The other points, degrees.

    Returns
    -------
    float
        Metres, interpolated linearly between order statistics exactly as
        ``numpy.percentile(d, 95)``; NaN for no points or any NaN distance.
    """
    cdef Py_ssize_t n = lats_deg.shape[0]
    cdef double result
    check_lengths(n, lons_deg.shape[0], "lons_deg")
    if n == 0:
        return NAN
    cdef double* top = <double*>malloc(n * sizeof(double))
    if top == NULL:
        raise MemoryError(f"cannot allocate scratch for {n} points")
    with nogil:
        result = _percentile95_m(lat_deg, lon_deg, &lats_deg[0], &lons_deg[0], n, top)
    free(top)
    return result


def select_sample(
    const float64_t[::1] weight,  # IN
    Py_ssize_t max_networks,  # IN
    uint8_t[::1] out_in_sample,  # OUT: 1 = in the sample
):
    """Mark the ``max_networks`` heaviest networks (ties: input order).

    Step 1 of the module's rules, in place of quirk Q1 (spec/locate.md
    4.6: the old service kept the *lowest*-scored networks). NaN weights
    rank below all others.

    Parameters
    ----------
    weight : float64 array, shape (n,)
        Network weights (``cluster_weights``).
    max_networks : int
        Sample size; every network is in the sample when n is not larger.
    out_in_sample : uint8 array, shape (n,)
        Receives 1 for the networks in the sample, 0 for the others.

    Returns
    -------
    int
        The sample size, min(n, max(max_networks, 0)).
    """
    cdef Py_ssize_t n = weight.shape[0]
    check_lengths(n, out_in_sample.shape[0], "out_in_sample")
    if n == 0:
        return 0
    cdef Py_ssize_t* order = <Py_ssize_t*>malloc(2 * n * sizeof(Py_ssize_t))
    if order == NULL:
        raise MemoryError(f"cannot allocate scratch for {n} networks")
    with nogil:
        _select_sample(&weight[0], n, max_networks, order, order + n, &out_in_sample[0])
    free(order)
    return min(n, max(max_networks, 0))


def aggregate_cluster(
    const float64_t[::1] lat_deg,  # IN
    const float64_t[::1] lon_deg,  # IN
    const float64_t[::1] age_ms,  # IN
    const float64_t[::1] signal_dbm,  # IN
    const float64_t[::1] score,  # IN
    const float64_t[::1] radius_m,  # IN
    Py_ssize_t max_networks,  # IN
    double min_accuracy_m,  # IN
    double max_accuracy_m,  # IN
    uint8_t[::1] out_in_sample,  # OUT: 1 = used for the position
):
    """Position, accuracy and score of one Wi-Fi/Bluetooth cluster (spec 4.6).

    Sample (the ``max_networks`` heaviest networks, in place of quirk Q1),
    weighted mean (issue 11's weights, no least squares), clamped 95th percentile
    accuracy, and the score summed over the whole cluster.

    Parameters
    ----------
    lat_deg, lon_deg : float64 array, shape (n,)
        The cluster's networks, degrees.
    age_ms : float64 array, shape (n,)
        Observation ages, milliseconds, already ``max(|age|, 1000)``.
    signal_dbm : float64 array, shape (n,)
        Signals, dBm, missing values already replaced by the default.
    score : float64 array, shape (n,)
        Station scores, > 0.
    radius_m : float64 array, shape (n,)
        Station radii, metres; NaN for none.
    max_networks : int
        Largest sample.
    min_accuracy_m, max_accuracy_m : float
        Clamp bounds of the accuracy, metres.
    out_in_sample : uint8 array, shape (n,)
        Receives 1 for the networks in the sample.

    Returns
    -------
    (float, float, float, float)
        ``(lat_deg, lon_deg, accuracy_m, score_sum)``. Position (both
        coordinates) and accuracy are NaN for an empty cluster, an empty
        sample or NaN in the sample's inputs.
    """
    cdef Py_ssize_t n = lat_deg.shape[0]
    cdef double out[4]
    check_lengths(n, lon_deg.shape[0], "lon_deg")
    check_lengths(n, age_ms.shape[0], "age_ms")
    check_lengths(n, signal_dbm.shape[0], "signal_dbm")
    check_lengths(n, score.shape[0], "score")
    check_lengths(n, radius_m.shape[0], "radius_m")
    check_lengths(n, out_in_sample.shape[0], "out_in_sample")
    if n == 0:
        return NAN, NAN, NAN, 0.0
    cluster_position(
        &lat_deg[0], &lon_deg[0], &age_ms[0], &signal_dbm[0], &score[0], &radius_m[0], n,
        max_networks, min_accuracy_m, max_accuracy_m, &out_in_sample[0], out,
    )
    return out[0], out[1], out[2], out[3]


cdef int cluster_position(
    const double* lat_deg,  # IN n
    const double* lon_deg,  # IN n
    const double* age_ms,  # IN n
    const double* signal_dbm,  # IN n
    const double* score,  # IN n
    const double* radius_m,  # IN n
    Py_ssize_t n,  # IN ≥ 1
    Py_ssize_t max_networks,  # IN
    double min_accuracy_m,  # IN
    double max_accuracy_m,  # IN
    uint8_t* out_in_sample,  # OUT n
    double* out,  # OUT 4: lat_deg, lon_deg, accuracy_m, score_sum
) except -1:
    """``aggregate_cluster`` on pointers, for the other kernels."""
    cdef _Sample s
    cdef double point[2]
    cdef double accuracy = NAN, score_sum
    cdef Py_ssize_t i
    cdef Py_ssize_t* order = NULL
    cdef double* block = NULL
    cdef double* work
    cdef double* weight
    point[0] = NAN
    point[1] = NAN
    order = <Py_ssize_t*>malloc(2 * n * sizeof(Py_ssize_t))
    if order == NULL:
        raise MemoryError(f"cannot allocate scratch for {n} networks")
    try:
        block = _alloc_sample(&s, n, 2 * n)
        if block == NULL:
            raise MemoryError(f"cannot allocate scratch for {n} networks")
        work = block + 3 * n
        weight = block + 4 * n
        with nogil:
            for i in range(n):
                weight[i] = _network_weight(_age_factor(age_ms[i]), signal_dbm[i], radius_m[i])
            _select_sample(weight, n, max_networks, order, order + n, out_in_sample)
            _pack(&s, lat_deg, lon_deg, weight, out_in_sample, n)
            if s.m > 0:
                _weighted_mean(&s, work, &point[0], &point[1])
                if isnan(point[0]) or isnan(point[1]):
                    # Half a position is no position.
                    point[0] = NAN
                    point[1] = NAN
                accuracy = _clamp(
                    _percentile95_m(point[0], point[1], s.lat_deg, s.lon_deg, s.m, work),
                    min_accuracy_m, max_accuracy_m,
                )
            score_sum = _sum(score, n)
    finally:
        free(order)
        free(block)
    out[0] = point[0]
    out[1] = point[1]
    out[2] = accuracy
    out[3] = score_sum
    return 0


def aggregate_cell_groups(
    const float64_t[::1] lat_deg,  # IN
    const float64_t[::1] lon_deg,  # IN
    const float64_t[::1] radius_m,  # IN
    const float64_t[::1] age_ms,  # IN
    const float64_t[::1] signal_dbm,  # IN
    const float64_t[::1] floor_dbm,  # IN
    const float64_t[::1] score,  # IN
    double min_radius_m,  # IN
    double max_radius_m,  # IN
    double min_accuracy_m,  # IN
    double max_accuracy_m,  # IN
    int64_t[::1] out_group,  # OUT: the group of each cell
):
    """The cells found for one query, grouped and aggregated (the module's rules).

    Parameters
    ----------
    lat_deg, lon_deg : float64 array, shape (n,)
        The cells, degrees.
    radius_m : float64 array, shape (n,)
        Cell radii, metres; NaN for none.
    age_ms, signal_dbm : float64 array, shape (n,)
        As for ``aggregate_cluster`` (missing signals already the floor).
    floor_dbm : float64 array, shape (n,)
        The lowest signal of each cell's radio, dBm.
    score : float64 array, shape (n,)
        Station scores.
    min_radius_m, max_radius_m : float
        The bounds of the radii in the weights, reaches and spread, metres
        (1 km and 50 km for cells, 1 km and 500 km for cell areas).
    min_accuracy_m, max_accuracy_m : float
        Clamp bounds of the accuracy, metres.
    out_group : int64 array, shape (n,)
        Receives the group of each cell, 0 for the heaviest cell's group.

    Returns
    -------
    list of (float, float, float, float)
        ``(lat_deg, lon_deg, accuracy_m, score_sum)`` per group, in group
        order; empty for no cells. The accuracy is the module's spread of
        the group, clamped. A NaN position makes the group's position (both
        coordinates) NaN, and its accuracy too unless it is a single cell's
        radius.
    """
    cdef Py_ssize_t n = lat_deg.shape[0]
    check_lengths(n, lon_deg.shape[0], "lon_deg")
    check_lengths(n, radius_m.shape[0], "radius_m")
    check_lengths(n, age_ms.shape[0], "age_ms")
    check_lengths(n, signal_dbm.shape[0], "signal_dbm")
    check_lengths(n, floor_dbm.shape[0], "floor_dbm")
    check_lengths(n, score.shape[0], "score")
    check_lengths(n, out_group.shape[0], "out_group")
    if n == 0:
        return []
    cdef double* out = <double*>malloc(4 * n * sizeof(double))
    if out == NULL:
        raise MemoryError(f"cannot allocate scratch for {n} cells")
    cdef Py_ssize_t g, groups
    try:
        groups = cell_groups(
            &lat_deg[0], &lon_deg[0], &radius_m[0], &age_ms[0], &signal_dbm[0], &floor_dbm[0],
            &score[0], n, min_radius_m, max_radius_m, min_accuracy_m, max_accuracy_m,
            &out_group[0], out,
        )
        return [(out[4 * g], out[4 * g + 1], out[4 * g + 2], out[4 * g + 3]) for g in range(groups)]
    finally:
        free(out)


cdef Py_ssize_t cell_groups(
    const double* lat_deg,  # IN n
    const double* lon_deg,  # IN n
    const double* radius_m,  # IN n: NaN for none
    const double* age_ms,  # IN n
    const double* signal_dbm,  # IN n
    const double* floor_dbm,  # IN n
    const double* score,  # IN n
    Py_ssize_t n,  # IN ≥ 1
    double min_radius_m,  # IN
    double max_radius_m,  # IN
    double min_accuracy_m,  # IN
    double max_accuracy_m,  # IN
    int64_t* out_group,  # OUT n: each cell's group
    double* out,  # OUT 4 per group: lat_deg, lon_deg, accuracy_m, score_sum
) except -1:
    """``aggregate_cell_groups`` on pointers, for the other kernels; returns the
    number of groups."""
    cdef _Sample s
    cdef Py_ssize_t i, seed, k, groups = 0, left = n
    cdef double lat, lon, d, total
    cdef double* weight
    cdef double* reach
    cdef double* scores
    cdef double* reaches
    cdef double* work
    # The group's sample (3n), then weight, reach, the group's scores and
    # reaches, and the scratch of the sums (n each).
    cdef double* block = _alloc_sample(&s, n, 5 * n)
    if block == NULL:
        raise MemoryError(f"cannot allocate scratch for {n} cells")
    weight = block + 3 * n
    reach = block + 4 * n
    scores = block + 5 * n
    reaches = block + 6 * n
    work = block + 7 * n
    try:
        with nogil:
            for i in range(n):
                weight[i] = _cell_weight(
                    age_ms[i], signal_dbm[i], floor_dbm[i], radius_m[i], min_radius_m, max_radius_m
                )
                reach[i] = _cell_radius(radius_m[i], min_radius_m, max_radius_m)
                out_group[i] = -1
            while left > 0:
                # The seed: the heaviest cell left (NaN weights last, ties to
                # the earlier input).
                seed = -1
                for i in range(n):
                    if out_group[i] >= 0:
                        continue
                    if seed < 0 or (
                        not isnan(weight[i]) and (isnan(weight[seed]) or weight[i] > weight[seed])
                    ):
                        seed = i
                k = 0
                for i in range(n):
                    if out_group[i] >= 0:
                        continue
                    # NaN distances compare False: such a cell stays out.
                    if i == seed or distance_m(
                        lat_deg[seed], lon_deg[seed], lat_deg[i], lon_deg[i]
                    ) <= reach[seed] + reach[i]:
                        out_group[i] = groups
                        s.lat_deg[k] = lat_deg[i]
                        s.lon_deg[k] = lon_deg[i]
                        s.weight[k] = weight[i]
                        scores[k] = score[i]
                        reaches[k] = reach[i]
                        k += 1
                s.m = k
                left -= k
                if k == 1:
                    lat = lat_deg[seed]
                    lon = lon_deg[seed]
                else:
                    _weighted_mean(&s, work, &lat, &lon)
                if isnan(lat) or isnan(lon):
                    # Half a position is no position.
                    lat = NAN
                    lon = NAN
                if k == 1:
                    d = reach[seed]
                else:
                    # The weighted root mean square of the distances and
                    # radii: sqrt(Σ w (d² + r²) / Σ w).
                    for i in range(k):
                        d = distance_m(lat, lon, s.lat_deg[i], s.lon_deg[i])
                        work[i] = s.weight[i] * (d * d + reaches[i] * reaches[i])
                    total = _sum(s.weight, k)
                    d = sqrt(_sum(work, k) / total) if total > 0.0 else NAN
                out[4 * groups] = lat
                out[4 * groups + 1] = lon
                out[4 * groups + 2] = _clamp(d, min_accuracy_m, max_accuracy_m)
                out[4 * groups + 3] = _sum(scores, k)
                groups += 1
    finally:
        free(block)
    return groups
