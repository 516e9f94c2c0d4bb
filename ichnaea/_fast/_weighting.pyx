"""Weighting kernels: the position, accuracy and score of one cluster.

A cluster of Wi-Fi or Bluetooth networks (spec/locate.md 4.6) becomes one
answer in three steps:

1. *Sample.* When the cluster has more than ``max_networks`` members only
   the ``max_networks`` highest-scored ones are used, ties going to the
   earlier input. This deliberately fixes quirk Q1 of the old service,
   which sorted by ascending score and so kept the *worst* networks; the
   two agree whenever the cluster is no larger than ``max_networks``.
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

Cells (spec 4.7) keep the original's weights, score · age factor /
signal²: a single cell gives its own position and its radius as accuracy,
several cells the weighted mean, the clamped 95th percentile and the
summed score. The cell radius is otherwise unused.

Sums are evaluated in NumPy's pairwise order (8 partial sums, halves above
128 terms), so that the kernels match a NumPy implementation bit for bit
instead of within rounding. The entry points take contiguous float64 arrays
(see ichnaea/positioning.py for the public functions) and allocate their
scratch memory once, before releasing the GIL.
"""

from libc.math cimport NAN, floor, isnan, pow, sqrt
from libc.stdint cimport uint8_t
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
    double* age_factor  # min(√(2000 / age), 1)
    double* signal_sq  # signal², dBm²
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
    const double* score,  # IN
    Py_ssize_t a,  # IN
    Py_ssize_t b,  # IN
) noexcept nogil:
    # Higher score first; NaN scores last; ties in input order.
    cdef double sa = score[a], sb = score[b]
    if sa > sb:
        return True
    if sa < sb:
        return False
    if isnan(sa) != isnan(sb):
        return not isnan(sa)
    return a < b


cdef void _select_sample(
    const double* score,  # IN
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
                if _ranks_before(score, order[b], order[a]):
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


cdef void _pack(
    _Sample* s,  # OUT: fills m and the arrays
    const double* lat_deg,  # IN
    const double* lon_deg,  # IN
    const double* age_ms,  # IN
    const double* signal_dbm,  # IN
    const double* score,  # IN
    const double* radius_m,  # IN: NULL for the cells' weights
    const uint8_t* in_sample,  # IN: NULL for all
    Py_ssize_t n,  # IN
) noexcept nogil:
    cdef Py_ssize_t i, k = 0
    for i in range(n):
        if in_sample != NULL and not in_sample[i]:
            continue
        s.lat_deg[k] = lat_deg[i]
        s.lon_deg[k] = lon_deg[i]
        s.age_factor[k] = _age_factor(age_ms[i])
        s.signal_sq[k] = signal_dbm[i] * signal_dbm[i]
        if radius_m == NULL:
            s.weight[k] = score[i] * s.age_factor[k] / s.signal_sq[k]
        else:
            s.weight[k] = _network_weight(s.age_factor[k], signal_dbm[i], radius_m[i])
        k += 1
    s.m = k


cdef double* _alloc_sample(
    _Sample* s,  # OUT: array pointers into the block
    Py_ssize_t n,  # IN
    Py_ssize_t extra,  # IN: further doubles after the sample arrays
) noexcept nogil:
    # Returns the block to free, or NULL if it cannot be allocated.
    cdef double* block = <double*>malloc((5 * n + extra + 1) * sizeof(double))
    s.m = 0
    s.lat_deg = block
    s.lon_deg = block + n
    s.age_factor = block + 2 * n
    s.signal_sq = block + 3 * n
    s.weight = block + 4 * n
    return block


# ---------------------------------------------------------------------------
# Array entry points
# ---------------------------------------------------------------------------

def network_weights(
    const float64_t[::1] score,  # IN
    const float64_t[::1] age_ms,  # IN
    const float64_t[::1] signal_dbm,  # IN
    float64_t[::1] out,  # OUT: weights
):
    """Per-network weights ``score · min(√(2000 / age_ms), 1) / signal_dbm²``.

    Parameters
    ----------
    score : float64 array, shape (n,)
        Station scores, > 0.
    age_ms : float64 array, shape (n,)
        Observation ages, milliseconds, already ``max(|age|, 1000)``.
    signal_dbm : float64 array, shape (n,)
        Signal strengths, dBm, missing values already replaced.
    out : float64 array, shape (n,)
        Receives the weights, 1 / dBm².
    """
    cdef Py_ssize_t i, n = score.shape[0]
    cdef double signal
    check_lengths(n, age_ms.shape[0], "age_ms")
    check_lengths(n, signal_dbm.shape[0], "signal_dbm")
    check_lengths(n, out.shape[0], "out")
    with nogil:
        for i in range(n):
            signal = signal_dbm[i]
            out[i] = score[i] * _age_factor(age_ms[i]) / (signal * signal)


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
        Their weights (see ``network_weights``).

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
    const float64_t[::1] score,  # IN
    Py_ssize_t max_networks,  # IN
    uint8_t[::1] out_in_sample,  # OUT: 1 = in the sample
):
    """Mark the ``max_networks`` highest-scored networks (ties: input order).

    This fixes quirk Q1 (spec/locate.md 4.6): the old service kept the
    *lowest*-scored networks. NaN scores rank below all others.

    Parameters
    ----------
    score : float64 array, shape (n,)
        Station scores.
    max_networks : int
        Sample size; every network is in the sample when n is not larger.
    out_in_sample : uint8 array, shape (n,)
        Receives 1 for the networks in the sample, 0 for the others.

    Returns
    -------
    int
        The sample size, min(n, max(max_networks, 0)).
    """
    cdef Py_ssize_t n = score.shape[0]
    check_lengths(n, out_in_sample.shape[0], "out_in_sample")
    if n == 0:
        return 0
    cdef Py_ssize_t* order = <Py_ssize_t*>malloc(2 * n * sizeof(Py_ssize_t))
    if order == NULL:
        raise MemoryError(f"cannot allocate scratch for {n} networks")
    with nogil:
        _select_sample(&score[0], n, max_networks, order, order + n, &out_in_sample[0])
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

    Sample (the ``max_networks`` highest scores, fixing quirk Q1), weighted
    mean (issue 11's weights, no least squares), clamped 95th percentile
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
    cdef Py_ssize_t* order = NULL
    cdef double* block = NULL
    cdef double* work
    point[0] = NAN
    point[1] = NAN
    order = <Py_ssize_t*>malloc(2 * n * sizeof(Py_ssize_t))
    if order == NULL:
        raise MemoryError(f"cannot allocate scratch for {n} networks")
    try:
        block = _alloc_sample(&s, n, n)
        if block == NULL:
            raise MemoryError(f"cannot allocate scratch for {n} networks")
        work = block + 5 * n
        with nogil:
            _select_sample(score, n, max_networks, order, order + n, out_in_sample)
            _pack(&s, lat_deg, lon_deg, age_ms, signal_dbm, score, radius_m, out_in_sample, n)
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


def aggregate_cells(
    const float64_t[::1] lat_deg,  # IN
    const float64_t[::1] lon_deg,  # IN
    const float64_t[::1] radius_m,  # IN
    const float64_t[::1] age_ms,  # IN
    const float64_t[::1] signal_dbm,  # IN
    const float64_t[::1] score,  # IN
    double min_accuracy_m,  # IN
    double max_accuracy_m,  # IN
):
    """Position, accuracy and score of the cells of one area (spec 4.7).

    One cell gives its own position, ``clamp(radius_m)`` and its score.
    Several cells give the weighted mean position (no least squares), the
    clamped 95th percentile of the distances from it, and the summed score.

    Parameters
    ----------
    lat_deg, lon_deg : float64 array, shape (n,)
        The cells, degrees.
    radius_m : float64 array, shape (n,)
        Cell radii, metres (used only for a single cell).
    age_ms, signal_dbm, score : float64 array, shape (n,)
        As for ``aggregate_cluster``.
    min_accuracy_m, max_accuracy_m : float
        Clamp bounds of the accuracy, metres.

    Returns
    -------
    (float, float, float, float)
        ``(lat_deg, lon_deg, accuracy_m, score_sum)``; NaN position and
        accuracy (score 0.0) for no cells. A NaN input makes the position
        (both coordinates) NaN, and the accuracy too unless it is a single
        cell's radius.
    """
    cdef Py_ssize_t n = lat_deg.shape[0]
    cdef double out[4]
    check_lengths(n, lon_deg.shape[0], "lon_deg")
    check_lengths(n, radius_m.shape[0], "radius_m")
    check_lengths(n, age_ms.shape[0], "age_ms")
    check_lengths(n, signal_dbm.shape[0], "signal_dbm")
    check_lengths(n, score.shape[0], "score")
    if n == 0:
        return NAN, NAN, NAN, 0.0
    cells_position(
        &lat_deg[0], &lon_deg[0], &radius_m[0], &age_ms[0], &signal_dbm[0], &score[0], n,
        min_accuracy_m, max_accuracy_m, out,
    )
    return out[0], out[1], out[2], out[3]


cdef int cells_position(
    const double* lat_deg,  # IN n
    const double* lon_deg,  # IN n
    const double* radius_m,  # IN n
    const double* age_ms,  # IN n
    const double* signal_dbm,  # IN n
    const double* score,  # IN n
    Py_ssize_t n,  # IN ≥ 1
    double min_accuracy_m,  # IN
    double max_accuracy_m,  # IN
    double* out,  # OUT 4: lat_deg, lon_deg, accuracy_m, score_sum
) except -1:
    """``aggregate_cells`` on pointers, for the other kernels."""
    cdef _Sample s
    cdef double lat, lon, accuracy, score_sum
    cdef double* block
    if n == 1:
        lat = lat_deg[0]
        lon = lon_deg[0]
        if isnan(lat) or isnan(lon):
            lat = NAN
            lon = NAN
        out[0] = lat
        out[1] = lon
        out[2] = _clamp(radius_m[0], min_accuracy_m, max_accuracy_m)
        out[3] = score[0]
        return 0
    block = _alloc_sample(&s, n, n)
    if block == NULL:
        raise MemoryError(f"cannot allocate scratch for {n} cells")
    try:
        with nogil:
            _pack(&s, lat_deg, lon_deg, age_ms, signal_dbm, score, NULL, NULL, n)
            _weighted_mean(&s, block + 5 * n, &lat, &lon)
            if isnan(lat) or isnan(lon):
                lat = NAN
                lon = NAN
            accuracy = _clamp(
                _percentile95_m(lat, lon, s.lat_deg, s.lon_deg, n, block + 5 * n),
                min_accuracy_m, max_accuracy_m,
            )
            score_sum = _sum(score, n)
    finally:
        free(block)
    out[0] = lat
    out[1] = lon
    out[2] = accuracy
    out[3] = score_sum
    return 0
