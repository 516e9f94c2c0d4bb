"""Station index kernel: find a request's keys and decode their records in one call.

The station index (``ichnaea/index/format.py``) keeps, per station kind, a
sorted key column and packed value records of 29 bytes::

    lat int32 (1e-7 degree) @0, lon int32 @4, radius uint32 (m) @8,
    samples uint32 @12, created uint16 (day since 1970) @16,
    modified uint32 (s since 1970) @18, last_seen uint16 @22,
    block_last uint16 @24, block_count uint8 @26, region uint16 @27

``gather_stations`` takes a request's keys (sorted, unique), finds each in
the overlay of changed stations first and else in the mapped generation
(binary search), drops the stations the overlay marks gone, decodes the
records into float64 columns (NULL, stored as the type's largest value,
becomes NaN; days become proleptic ordinals as ``date.toordinal()``) and
drops blocked stations by the locate rule (``repositories/stations.py``
``blocked``): blocked less than 2 days ago, or at least once per 30 days
of life (``block_count >= rint(|created - today| / 30)``, rounding half to
even as NumPy's ``round``), and scores the others as
``ichnaea/api/locate/score.py`` ``station_scores`` does (the same formula,
NaN where it gives NaN). It returns how many rows it wrote.

Keys come in two shapes. Wi-Fi and Bluetooth: 6-byte MACs (``width`` 6)
against a column of little-endian uint64 (the MAC read big-endian); cells
and areas: byte strings of ``width`` bytes against a column of the same
width, compared with ``memcmp`` (byte order is key order).
"""

from libc.math cimport NAN, fabs, floor, fmax, log2, rint, sqrt
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy

from ichnaea._fast._clustering cimport cluster_labels, group_members
from ichnaea._fast._weighting cimport cell_groups, cluster_position

cdef enum:
    RECORD_BYTES = 29  # a station's value record
    COLUMNS = 9  # rows of ``out``

# A query's MACs per call of locate_macs (the locate query keeps 100 at most).
cdef Py_ssize_t MAX_QUERY_MACS = 10000
cdef double EPOCH_ORDINAL = 719163.0  # date(1970, 1, 1).toordinal()
cdef double COORD_SCALE = 10000000.0
cdef double TEMPORARY_BLOCK_DAYS = 2.0
# A blocked station relearned since its block is answered (issue 11; the
# same rule and constants as ichnaea/repositories/stations.py ``relearned``).
cdef uint32_t RELEARN_SAMPLES = 10
cdef uint8_t MAX_RELEARN_BLOCKS = 2
cdef double SECONDS_PER_DAY = 86400.0


def block_rule():
    """(TEMPORARY_BLOCK_DAYS, RELEARN_SAMPLES, MAX_RELEARN_BLOCKS), for tests."""
    return (TEMPORARY_BLOCK_DAYS, RELEARN_SAMPLES, MAX_RELEARN_BLOCKS)


cdef inline double _max_nan(double a, double b) noexcept nogil:
    # np.maximum / np.minimum: NaN if either is NaN.
    if a != a or b != b:
        return NAN
    return a if a > b else b


cdef inline double _min_nan(double a, double b) noexcept nogil:
    if a != a or b != b:
        return NAN
    return a if a < b else b


cdef double _score(
    double now_s,  # IN
    double radius_m,  # IN
    double samples,  # IN
    double created_day,  # IN
    double modified_s,  # IN
    double last_seen_day,  # IN
    double block_last_day,  # IN
) noexcept nogil:
    """``ichnaea.api.locate.score.station_scores`` of one station, NaN alike."""
    if modified_s != modified_s:  # NULL: from last_seen, else created, else now
        if last_seen_day == last_seen_day:
            modified_s = (last_seen_day - EPOCH_ORDINAL) * SECONDS_PER_DAY
        elif created_day == created_day:
            modified_s = (created_day - EPOCH_ORDINAL) * SECONDS_PER_DAY
        else:
            modified_s = now_s
    cdef double modified_day = floor(modified_s / SECONDS_PER_DAY) + EPOCH_ORDINAL
    cdef double last_day = fmax(modified_day, last_seen_day)
    cdef double first_day = fmax(created_day, block_last_day)
    if first_day != first_day:  # neither known: a span of one day
        first_day = last_day
    cdef double s = 0.0 if samples != samples else samples
    cdef double radius = 0.0 if radius_m != radius_m else radius_m
    if s > 1 and not radius > 0:
        s = 1.0
    cdef double sample_weight = log2(s if s > 1.0 else 1.0)
    if sample_weight < 0.5:
        sample_weight = 0.5
    elif sample_weight > 10.0:
        sample_weight = 10.0
    cdef double days_since = _max_nan(floor((now_s - modified_s) / SECONDS_PER_DAY), 0.0)
    cdef double months = floor(days_since / 30.0)
    cdef double age_weight = 1.0 / sqrt(months + 1.0)
    cdef double span_days = _max_nan(last_day - first_day, 1.0)
    cdef double collection_weight = _min_nan(span_days / 10.0, 1.0)
    return age_weight * collection_weight * sample_weight


cdef inline uint64_t _mac(const uint8_t* key) noexcept nogil:
    cdef uint64_t value = 0
    cdef int i
    for i in range(6):
        value = (value << 8) | key[i]
    return value


cdef inline uint64_t _u64_at(const uint8_t* keys, Py_ssize_t i) noexcept nogil:
    cdef uint64_t value
    memcpy(&value, keys + 8 * i, 8)  # the column is little-endian, as this machine
    return value


cdef Py_ssize_t _find_mac(
    uint64_t key,  # IN
    const uint8_t* keys,  # IN count uint64, ascending
    Py_ssize_t count,  # IN
) noexcept nogil:
    cdef Py_ssize_t lo = 0, hi = count, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if _u64_at(keys, mid) < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < count and _u64_at(keys, lo) == key:
        return lo
    return -1


cdef Py_ssize_t _find_bytes(
    const uint8_t* key,  # IN width bytes
    const uint8_t* keys,  # IN count keys of width bytes, ascending
    Py_ssize_t count,  # IN
    Py_ssize_t width,  # IN
) noexcept nogil:
    cdef Py_ssize_t lo = 0, hi = count, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if memcmp(keys + width * mid, key, width) < 0:
            lo = mid + 1
        else:
            hi = mid
    if lo < count and memcmp(keys + width * lo, key, width) == 0:
        return lo
    return -1


cdef uint32_t NULL_U32 = 0xFFFFFFFFU
cdef uint16_t NULL_U16 = 0xFFFFU


cdef inline double _nullable32(uint32_t value) noexcept nogil:
    if value == NULL_U32:
        return NAN
    return <double>value


cdef inline double _day(uint16_t value) noexcept nogil:
    if value == NULL_U16:
        return NAN
    return value + EPOCH_ORDINAL


cdef bint _decode(
    const uint8_t* record,  # IN RECORD_BYTES
    double today_day,  # IN
    double now_s,  # IN
    double* out,  # OUT (COLUMNS, stride), row-major
    Py_ssize_t stride,  # IN the length of a row of out
    Py_ssize_t row,  # IN column of out to write
    int32_t* region,  # OUT
) noexcept nogil:
    """Decode one record into ``out[:, row]``; False when the station is blocked."""
    cdef int32_t lat, lon
    cdef uint32_t radius, samples, modified
    cdef uint16_t created, last_seen, block_last, region_code
    cdef uint8_t block_count
    cdef double created_day, block_last_day, age_months
    cdef bint blocked
    memcpy(&lat, record, 4)
    memcpy(&lon, record + 4, 4)
    memcpy(&radius, record + 8, 4)
    memcpy(&samples, record + 12, 4)
    memcpy(&created, record + 16, 2)
    memcpy(&modified, record + 18, 4)
    memcpy(&last_seen, record + 22, 2)
    memcpy(&block_last, record + 24, 2)
    block_count = record[26]
    memcpy(&region_code, record + 27, 2)
    created_day = _day(created)
    block_last_day = _day(block_last)
    # NaN compares False: a station never blocked is not recently blocked.
    blocked = today_day - block_last_day < TEMPORARY_BLOCK_DAYS
    if not blocked and block_count > 0 and created_day == created_day:
        age_months = rint(fabs(created_day - today_day) / 30.0)
        blocked = block_count >= age_months
    # Relearned: NULL samples (the largest uint32) and NULL counts (255) fail.
    if blocked and not (
        samples != NULL_U32 and samples >= RELEARN_SAMPLES
        and block_count <= MAX_RELEARN_BLOCKS
    ):
        return False
    out[0 * stride + row] = lat / COORD_SCALE
    out[1 * stride + row] = lon / COORD_SCALE
    out[2 * stride + row] = _nullable32(radius)
    out[3 * stride + row] = _nullable32(samples)
    out[4 * stride + row] = created_day
    out[5 * stride + row] = _nullable32(modified)
    out[6 * stride + row] = _day(last_seen)
    out[7 * stride + row] = block_last_day
    out[8 * stride + row] = _score(
        now_s,
        out[2 * stride + row],
        out[3 * stride + row],
        created_day,
        out[5 * stride + row],
        out[6 * stride + row],
        block_last_day,
    )
    region[0] = region_code
    return True


cdef Py_ssize_t _count(
    const uint8_t[::1] keys,  # IN a key column, as bytes
    const uint8_t[::1] values,  # IN its records
    Py_ssize_t key_bytes,  # IN
    str what,  # IN for the error
) except -1:
    """The number of stations of a table; ``ValueError`` if keys and records differ in count."""
    cdef Py_ssize_t count = keys.shape[0] // key_bytes
    if values.shape[0] != count * RECORD_BYTES:
        raise ValueError(f"{what} and their keys differ in count")
    return count


def gather_stations(
    const uint8_t[::1] query,  # IN n keys of width bytes, ascending, unique
    Py_ssize_t width,  # IN 6: MACs against uint64 keys; else the byte key width
    const uint8_t[::1] base_keys,  # IN the generation's key column, as bytes
    const uint8_t[::1] base_values,  # IN its records, RECORD_BYTES each
    const uint8_t[::1] over_keys,  # IN the overlay's key column, as bytes
    const uint8_t[::1] over_values,  # IN its records
    const uint8_t[::1] over_present,  # IN 0 where the overlay says the station is gone
    double today_day,  # IN today's proleptic ordinal
    double now_s,  # IN now, seconds since 1970 (for the score)
    double[:, ::1] out,  # OUT (9, n): lat, lon, radius_m, samples, created_day,
                         #     modified_s, last_seen_day, block_last_day, score
    int64_t[::1] out_query,  # OUT (n,) the query index of each row
    int32_t[::1] out_region,  # OUT (n,) the region code of each row
    int8_t[::1] out_source,  # OUT (n,) 0: from the generation, 1: from the overlay
):
    """Find, decode and filter the stations of ``query``; the number of rows written.

    Rows come in query order. Region codes index the region table of the
    row's source (the generation's or the overlay's).
    """
    cdef Py_ssize_t key_bytes = 8 if width == 6 else width
    if width <= 0 or query.shape[0] % width:
        raise ValueError(f"query of {query.shape[0]} bytes is not a whole number of keys")
    cdef Py_ssize_t n = query.shape[0] // width
    cdef Py_ssize_t base_count = _count(base_keys, base_values, key_bytes, "base records")
    cdef Py_ssize_t over_count = _count(over_keys, over_values, key_bytes, "overlay records")
    if over_present.shape[0] != over_count:
        raise ValueError("overlay keys and flags differ in count")
    if out.shape[0] != COLUMNS or out.shape[1] < n:
        raise ValueError(f"out must have shape ({COLUMNS}, >= {n})")
    if out_query.shape[0] < n or out_region.shape[0] < n or out_source.shape[0] < n:
        raise ValueError(f"the out arrays must hold {n} rows")
    cdef const uint8_t* q = &query[0] if n else NULL
    cdef const uint8_t* bk = &base_keys[0] if base_count else NULL
    cdef const uint8_t* bv = &base_values[0] if base_count else NULL
    cdef const uint8_t* ok = &over_keys[0] if over_count else NULL
    cdef const uint8_t* ov = &over_values[0] if over_count else NULL
    cdef const uint8_t* op = &over_present[0] if over_count else NULL
    if n == 0:
        return 0
    cdef Py_ssize_t rows
    with nogil:
        rows = _gather(
            q, n, width, bk, bv, base_count, ok, ov, op, over_count, today_day, now_s,
            &out[0, 0], out.shape[1], &out_query[0], &out_region[0], &out_source[0],
        )
    return rows


cdef Py_ssize_t _gather(
    const uint8_t* q,  # IN n keys of width bytes, ascending, unique
    Py_ssize_t n,  # IN
    Py_ssize_t width,  # IN
    const uint8_t* bk,  # IN the generation's keys
    const uint8_t* bv,  # IN its records
    Py_ssize_t base_count,  # IN
    const uint8_t* ok,  # IN the overlay's keys
    const uint8_t* ov,  # IN its records
    const uint8_t* op,  # IN its present flags
    Py_ssize_t over_count,  # IN
    double today_day,  # IN
    double now_s,  # IN
    double* out,  # OUT (COLUMNS, stride)
    Py_ssize_t stride,  # IN ≥ n
    int64_t* out_query,  # OUT n
    int32_t* out_region,  # OUT n
    int8_t* out_source,  # OUT n
) noexcept nogil:
    """``gather_stations`` on pointers; the number of rows written."""
    cdef Py_ssize_t i, at, rows = 0
    cdef uint64_t mac = 0
    cdef int32_t region
    for i in range(n):
        if width == 6:
            mac = _mac(q + 6 * i)
            at = _find_mac(mac, ok, over_count)
        else:
            at = _find_bytes(q + width * i, ok, over_count, width)
        if at >= 0:
            if not op[at]:
                continue
            if _decode(ov + RECORD_BYTES * at, today_day, now_s, out, stride, rows, &region):
                out_query[rows] = i
                out_region[rows] = region
                out_source[rows] = 1
                rows += 1
            continue
        if width == 6:
            at = _find_mac(mac, bk, base_count)
        else:
            at = _find_bytes(q + width * i, bk, base_count, width)
        if at < 0:
            continue
        if _decode(bv + RECORD_BYTES * at, today_day, now_s, out, stride, rows, &region):
            out_query[rows] = i
            out_region[rows] = region
            out_source[rows] = 0
            rows += 1
    return rows


def locate_macs(
    const uint8_t[::1] query,  # IN n MACs of 6 bytes, ascending, unique
    const double[::1] signal_dbm,  # IN (n,) per query key, missing ones already the default
    const double[::1] age_ms,  # IN (n,) per query key, already max(|age or 0|, 1000)
    const uint8_t[::1] base_keys,  # IN as gather_stations
    const uint8_t[::1] base_values,  # IN
    const uint8_t[::1] over_keys,  # IN
    const uint8_t[::1] over_values,  # IN
    const uint8_t[::1] over_present,  # IN
    double today_day,  # IN today's proleptic ordinal
    double now_s,  # IN now, seconds since 1970
    double max_distance_m,  # IN largest cluster diameter
    Py_ssize_t max_networks,  # IN largest sample of a cluster, ≥ 1
    double min_accuracy_m,  # IN accuracy clamp
    double max_accuracy_m,  # IN
):
    """The Wi-Fi or Bluetooth positions of one query, in one call (spec 4.5 and 4.6).

    What ``_fast.gather_stations``, ``cluster_complete_linkage``,
    ``order_groups`` and ``aggregate_cluster`` do one after the other,
    without the arrays and Python between them: find and decode the
    unblocked stations with their scores, cluster them (complete linkage
    cut at ``max_distance_m``, clusters of two or more, ordered by their
    first station), and aggregate each cluster.

    Returns a list with one tuple per cluster: ``(lat_deg, lon_deg,
    accuracy_m, score_sum, used)``, where ``used`` lists ``(query index,
    seen today)`` for the stations in the cluster's sample, in query order.
    Empty when fewer than two stations are found or none cluster.
    """
    if query.shape[0] % 6:
        raise ValueError(f"query of {query.shape[0]} bytes is not a whole number of MACs")
    cdef Py_ssize_t n = query.shape[0] // 6
    if signal_dbm.shape[0] != n or age_ms.shape[0] != n:
        raise ValueError(f"signal_dbm and age_ms must hold {n} values")
    cdef Py_ssize_t base_count = _count(base_keys, base_values, 8, "base records")
    cdef Py_ssize_t over_count = _count(over_keys, over_values, 8, "overlay records")
    if over_present.shape[0] != over_count:
        raise ValueError("overlay keys and flags differ in count")
    if n > MAX_QUERY_MACS:
        raise ValueError(f"{n} MACs are more than the {MAX_QUERY_MACS} this kernel takes")
    if max_networks < 1:
        raise ValueError(f"max_networks must be >= 1, got {max_networks}")
    if n < 2:
        return []
    cdef const uint8_t* bk = &base_keys[0] if base_count else NULL
    cdef const uint8_t* bv = &base_values[0] if base_count else NULL
    cdef const uint8_t* ok = &over_keys[0] if over_count else NULL
    cdef const uint8_t* ov = &over_values[0] if over_count else NULL
    cdef const uint8_t* op = &over_present[0] if over_count else NULL
    # Scratch: the decoded rows (COLUMNS × n), six cluster columns (6 × n)
    # and the cluster position (4); query index, labels, members, ends
    # (4 × n); region and source of the gather; the sample mask.
    cdef double* doubles = <double*>malloc(((COLUMNS + 6) * n + 4) * sizeof(double))
    cdef int64_t* ints = <int64_t*>malloc(4 * n * sizeof(int64_t))
    cdef int32_t* region = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int8_t* source = <int8_t*>malloc(n * sizeof(int8_t))
    cdef uint8_t* mask = <uint8_t*>malloc(n * sizeof(uint8_t))
    cdef Py_ssize_t rows, n_groups, kept, g, k, r, start = 0, end, m
    cdef double* lat
    cdef double* lon
    cdef double* radius
    cdef double* last_seen
    cdef double* score
    cdef double* sub
    cdef double* position
    cdef int64_t* at
    cdef int64_t* labels
    cdef int64_t* members
    cdef int64_t* ends
    cdef list clusters = [], used
    try:
        if doubles == NULL or ints == NULL or region == NULL or source == NULL or mask == NULL:
            raise MemoryError(f"cannot allocate scratch for {n} MACs")
        lat, lon, radius = doubles, doubles + n, doubles + 2 * n
        last_seen, score = doubles + 6 * n, doubles + 8 * n
        sub, position = doubles + COLUMNS * n, doubles + (COLUMNS + 6) * n
        at, labels, members, ends = ints, ints + n, ints + 2 * n, ints + 3 * n
        with nogil:
            rows = _gather(
                &query[0], n, 6, bk, bv, base_count, ok, ov, op, over_count, today_day, now_s,
                doubles, n, at, region, source,
            )
        if rows < 2:
            return clusters
        n_groups = cluster_labels(lat, lon, rows, max_distance_m, labels)
        if n_groups == rows:
            return clusters
        kept = group_members(labels, rows, n_groups, 2, members, ends)
        for g in range(kept):
            end = ends[g]
            m = end - start
            for k in range(m):
                r = members[start + k]
                sub[k] = lat[r]
                sub[n + k] = lon[r]
                sub[2 * n + k] = age_ms[at[r]]
                sub[3 * n + k] = signal_dbm[at[r]]
                sub[4 * n + k] = score[r]
                sub[5 * n + k] = radius[r]
            cluster_position(
                sub, sub + n, sub + 2 * n, sub + 3 * n, sub + 4 * n, sub + 5 * n, m,
                max_networks, min_accuracy_m, max_accuracy_m, mask, position,
            )
            used = []
            for k in range(m):
                if mask[k]:
                    r = members[start + k]
                    # NaN (a NULL day) compares False: not seen today.
                    used.append((at[r], last_seen[r] >= today_day))
            clusters.append((position[0], position[1], position[2], position[3], used))
            start = end
        return clusters
    finally:
        free(doubles)
        free(ints)
        free(region)
        free(source)
        free(mask)


def locate_cells(
    const uint8_t[::1] query,  # IN n cell keys of width bytes, ascending, unique
    Py_ssize_t width,  # IN the cell kind's key width (keys zero-padded to it)
    const double[::1] floor_dbm,  # IN (n,) the lowest signal of each key's radio
    const double[::1] signal_dbm,  # IN (n,) per query key, missing ones already the floor
    const double[::1] age_ms,  # IN (n,) per query key, already max(|age or 0|, 1000)
    const uint8_t[::1] base_keys,  # IN as gather_stations
    const uint8_t[::1] base_values,  # IN
    const uint8_t[::1] over_keys,  # IN
    const uint8_t[::1] over_values,  # IN
    const uint8_t[::1] over_present,  # IN
    double today_day,  # IN today's proleptic ordinal
    double now_s,  # IN now, seconds since 1970
    double min_radius_m,  # IN the radius bounds of the groups
    double max_radius_m,  # IN
    double min_accuracy_m,  # IN accuracy clamp
    double max_accuracy_m,  # IN
):
    """The cell positions of one query, in one call (spec 4.7 as issue 11 changed it).

    What ``_fast.gather_stations`` and ``aggregate_cell_groups`` do one
    after the other: find and decode the unblocked cells with their scores,
    then group the found cells by their overlapping discs and aggregate
    each group (``_weighting.pyx`` says how).

    Returns one tuple per group, heaviest seed first: ``(lat_deg, lon_deg,
    accuracy_m, score_sum, used)``, where ``used`` lists ``(query index,
    seen today)`` for every cell of the group, in key order. Empty when no
    cell is found.
    """
    if width <= 0 or query.shape[0] % width:
        raise ValueError(f"query of {query.shape[0]} bytes is not a whole number of keys")
    cdef Py_ssize_t n = query.shape[0] // width
    if floor_dbm.shape[0] != n or signal_dbm.shape[0] != n or age_ms.shape[0] != n:
        raise ValueError(f"floor_dbm, signal_dbm and age_ms must hold {n} values")
    cdef Py_ssize_t base_count = _count(base_keys, base_values, width, "base records")
    cdef Py_ssize_t over_count = _count(over_keys, over_values, width, "overlay records")
    if over_present.shape[0] != over_count:
        raise ValueError("overlay keys and flags differ in count")
    if n == 0:
        return []
    cdef const uint8_t* q = &query[0]
    cdef const uint8_t* bk = &base_keys[0] if base_count else NULL
    cdef const uint8_t* bv = &base_values[0] if base_count else NULL
    cdef const uint8_t* ok = &over_keys[0] if over_count else NULL
    cdef const uint8_t* ov = &over_values[0] if over_count else NULL
    cdef const uint8_t* op = &over_present[0] if over_count else NULL
    # Scratch: the decoded rows (COLUMNS × n), the group inputs (7 × n) and
    # outputs (4 × n); the query index and each row's group; region and
    # source of the gather.
    cdef double* doubles = <double*>malloc(((COLUMNS + 11) * n) * sizeof(double))
    cdef int64_t* at = <int64_t*>malloc(2 * n * sizeof(int64_t))
    cdef int32_t* region = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int8_t* source = <int8_t*>malloc(n * sizeof(int8_t))
    cdef Py_ssize_t rows, groups, r, g
    cdef int64_t* group_of
    cdef double* sub
    cdef double* position
    cdef list found = [], used
    try:
        if doubles == NULL or at == NULL or region == NULL or source == NULL:
            raise MemoryError(f"cannot allocate scratch for {n} cells")
        sub, position = doubles + COLUMNS * n, doubles + (COLUMNS + 7) * n
        group_of = at + n
        with nogil:
            rows = _gather(
                q, n, width, bk, bv, base_count, ok, ov, op, over_count, today_day, now_s,
                doubles, n, at, region, source,
            )
            for r in range(rows):
                sub[r] = doubles[r]
                sub[n + r] = doubles[n + r]
                sub[2 * n + r] = doubles[2 * n + r]
                sub[3 * n + r] = age_ms[at[r]]
                sub[4 * n + r] = signal_dbm[at[r]]
                sub[5 * n + r] = floor_dbm[at[r]]
                sub[6 * n + r] = doubles[8 * n + r]
        if rows == 0:
            return found
        groups = cell_groups(
            sub, sub + n, sub + 2 * n, sub + 3 * n, sub + 4 * n, sub + 5 * n, sub + 6 * n,
            rows, min_radius_m, max_radius_m, min_accuracy_m, max_accuracy_m, group_of, position,
        )
        for g in range(groups):
            # NaN (a NULL day) compares False: not seen today.
            used = [(at[r], doubles[6 * n + r] >= today_day)
                    for r in range(rows) if group_of[r] == g]  # fmt: skip
            found.append((position[4 * g], position[4 * g + 1], position[4 * g + 2],
                          position[4 * g + 3], used))  # fmt: skip
        return found
    finally:
        free(doubles)
        free(at)
        free(region)
        free(source)
