"""Clustering kernel: complete-linkage groups of networks within a distance.

The locate API groups the Wi-Fi or Bluetooth networks of one query whose
positions agree, so that a few moved or misplaced access points cannot drag
the answer across town. The grouping is SciPy's
``fcluster(linkage(d, method="complete"), t, criterion="distance")`` over the
condensed matrix d of pairwise ``distance_m`` (Vincenty on WGS-84, haversine
where Vincenty does not converge), computed here without SciPy and without
the GIL.

*Complete linkage* starts with every point as its own cluster and repeatedly
merges the two closest clusters, where the distance between two clusters is
the largest distance between a member of one and a member of the other
(Lance-Williams update ``d(k, i ∪ j) = max(d(k, i), d(k, j))``). The merge
heights never decrease along a path to the root, so *cutting* the tree at a
distance t leaves exactly the clusters formed by the merges of height ≤ t:
groups whose diameter is at most t. This kernel records those merges in a
union-find forest and labels its trees.

The merges are found with the *nearest-neighbour chain* algorithm, in the same
form as SciPy's ``nn_chain`` (which ``linkage`` uses for complete linkage):
the chain starts at the lowest-numbered live cluster and repeatedly appends
the nearest neighbour of its last element, preferring the previous element of
the chain on a tie and otherwise the lowest-numbered of equally near
clusters; when the last two elements are each other's nearest neighbours
they are merged and popped, and the survivor takes the higher number. Each
step scans one row of an n × n matrix: O(n²) time and memory. Following
SciPy step by step also reproduces its choices between exactly equal
distances (three equally spaced points on a line, say, where either end pair
could merge first).

*Lazy distances.* The algorithm only ever compares distances with each other
or with t, and a Vincenty evaluation costs as much as a hundred comparisons.
So the matrix starts out holding the straight-line chord c between the two
points in Earth-centred coordinates on the WGS-84 ellipsoid (one square root
per pair), which brackets the geodesic distance s: c ≤ s, and since no
normal section of the ellipsoid is curved more than 1/K with K = a(1 − e²)
(the meridian at the equator), Schur's comparison theorem gives
s ≤ (2K) asin(c / 2K) ≈ c (1 + c² / 24K²). Widened by Vincenty's own error
(it reports the distance of its second-to-last pass, up to 1e-11 rad · a ≈
0.06 mm off; 1 mm and 1e-9 relative are allowed), this bracket decides
almost every comparison. Only when two brackets overlap, i.e. the distances
agree to about a millimetre, are both pairs evaluated with ``distance_m``,
once each, and compared exactly. The comparisons therefore all come out as
with exact Vincenty distances, ties included, while a typical scan of a few
dozen networks evaluates none. Pairs over 1000 km apart, where the series
bound is not used, and pairs with a latitude outside [-90, 90] (which
Vincenty reads differently from the ellipsoid) are evaluated at once.
tests/_fast/test_clustering.py checks the bracket against ``distance_m`` on
random pairs at every latitude, from a millimetre to 1000 km.

Points with a non-finite coordinate take no part in the linkage (SciPy
refuses non-finite distances): each becomes a group of its own.
"""

from libc.math cimport INFINITY, M_PI, cos, fabs, isfinite, isnan, sin, sqrt
from libc.stdlib cimport free, malloc

from ichnaea._fast._geodesy cimport WGS84_A_M, WGS84_F, distance_m
from ichnaea._fast._typedefs cimport float64_t, int64_t

cdef double DEG_TO_RAD = M_PI / 180.0
cdef double E2 = WGS84_F * (2.0 - WGS84_F)  # first eccentricity squared
# Smallest radius of curvature of any normal section (the meridian at the
# equator), metres: K in the module docstring.
cdef double MIN_CURVATURE_RADIUS_M = WGS84_A_M * (1.0 - E2)
# s ≤ c (1 + c² / 24K² + 3c⁴ / 640K⁴ + ...); 1 % covers the higher terms
# for c ≤ MAX_BRACKETED_CHORD_M.
cdef double ARC_PER_CHORD_SQ = 1.01 / (24.0 * MIN_CURVATURE_RADIUS_M * MIN_CURVATURE_RADIUS_M)
cdef double MAX_BRACKETED_CHORD_M = 1.0e6
# Allowance for Vincenty's error and rounding (see the module docstring).
cdef double REL_SLACK = 1.0e-9
cdef double ABS_SLACK_M = 1.0e-3
# Pair references are int: i * n + j must fit.
cdef Py_ssize_t MAX_POINTS = 40000


cdef struct _Points:
    Py_ssize_t n
    const double* lat_deg
    const double* lon_deg
    double* exact  # condensed pairwise distance_m, < 0 = not evaluated yet


# A matrix entry is a *key* and a pair reference i * n + j (i < j) naming
# the two points whose distance it is. A key ≥ 0 is the chord of the pair,
# standing for the bracket above; a key < 0 is minus the exact distance.

cdef inline double _lower_m(
    double key,  # IN
) noexcept nogil:
    if key < 0.0:
        return -key
    return key * (1.0 - REL_SLACK) - ABS_SLACK_M


cdef inline double _upper_m(
    double key,  # IN
) noexcept nogil:
    if key < 0.0:
        return -key
    return key * (1.0 + key * key * ARC_PER_CHORD_SQ + REL_SLACK) + ABS_SLACK_M


cdef double _exact_m(
    _Points* p,  # INOUT: caches the evaluation
    int ref,  # IN
) noexcept nogil:
    cdef Py_ssize_t i = ref // p.n, j = ref % p.n
    cdef Py_ssize_t k = p.n * i - i * (i + 1) // 2 + (j - i - 1)
    if p.exact[k] < 0.0:
        # Argument order as in SciPy's condensed matrix: d(i, j), i < j.
        p.exact[k] = distance_m(p.lat_deg[i], p.lon_deg[i], p.lat_deg[j], p.lon_deg[j])
    return p.exact[k]


cdef inline bint _less(
    _Points* p,  # INOUT
    double key_a,  # IN
    int ref_a,  # IN
    double key_b,  # IN
    int ref_b,  # IN
) noexcept nogil:
    # distance a < distance b, deciding by the brackets where they are apart.
    if _upper_m(key_a) < _lower_m(key_b):
        return True
    if _lower_m(key_a) >= _upper_m(key_b) or ref_a == ref_b:
        return False
    return _exact_m(p, ref_a) < _exact_m(p, ref_b)


cdef inline bint _within(
    _Points* p,  # INOUT
    double key,  # IN
    int ref,  # IN
    double max_distance_m,  # IN
) noexcept nogil:
    # distance ≤ max_distance_m
    if _upper_m(key) <= max_distance_m:
        return True
    if _lower_m(key) > max_distance_m:
        return False
    return _exact_m(p, ref) <= max_distance_m


cdef void _fill_matrix(
    _Points* p,  # INOUT
    double* ecef,  # OUT: scratch, 3n
    double* key,  # OUT: n × n keys
    int* ref,  # OUT: n × n pair references
) noexcept nogil:
    cdef Py_ssize_t i, j, lo, pair, n = p.n
    cdef double phi, lam, s, big_n, dx, dy, dz, chord
    cdef bint exact_i
    for i in range(n * (n - 1) // 2):
        p.exact[i] = -1.0
    for i in range(n):
        phi = p.lat_deg[i] * DEG_TO_RAD
        lam = p.lon_deg[i] * DEG_TO_RAD
        s = sin(phi)
        big_n = WGS84_A_M / sqrt(1.0 - E2 * s * s)
        ecef[3 * i] = big_n * cos(phi) * cos(lam)
        ecef[3 * i + 1] = big_n * cos(phi) * sin(lam)
        ecef[3 * i + 2] = big_n * (1.0 - E2) * s
    # Row by row, each pair twice: (a - b)² = (b - a)², so both halves get
    # the same chord, and sequential writes beat writing the transpose.
    for i in range(n):
        exact_i = fabs(p.lat_deg[i]) > 90.0
        for j in range(n):
            lo = i if i < j else j
            pair = lo * n + (i + j - lo)
            ref[i * n + j] = <int>pair
            dx = ecef[3 * i] - ecef[3 * j]
            dy = ecef[3 * i + 1] - ecef[3 * j + 1]
            dz = ecef[3 * i + 2] - ecef[3 * j + 2]
            chord = sqrt(dx * dx + dy * dy + dz * dz)
            if i != j and (
                chord > MAX_BRACKETED_CHORD_M or exact_i or fabs(p.lat_deg[j]) > 90.0
            ):
                # -0.0 for coincident points reads as a zero chord: still right.
                key[i * n + j] = -_exact_m(p, <int>pair)
            else:
                key[i * n + j] = chord


cdef Py_ssize_t _find(
    Py_ssize_t* parent,  # INOUT: union-find forest
    Py_ssize_t i,  # IN
) noexcept nogil:
    # Path halving: every visited node skips to its grandparent.
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


cdef void _nn_chain_cut(
    _Points* p,  # INOUT
    double* key,  # INOUT: n × n cluster distances, updated in place
    int* ref,  # INOUT
    double max_distance_m,  # IN
    Py_ssize_t* alive,  # OUT: scratch, the live clusters in ascending order
    Py_ssize_t* chain,  # OUT: scratch, the nearest-neighbour chain
    Py_ssize_t* parent,  # OUT: union-find forest of the merges ≤ t
) noexcept nogil:
    # SciPy's nn_chain scans all n slots and skips merged ones; scanning the
    # live ones in the same ascending order makes the same choices.
    cdef Py_ssize_t n = p.n, n_alive = n, a, i, _merge, x = 0, y = 0, chain_length = 0
    cdef double min_key, min_upper, min_lower, candidate
    cdef int min_ref
    cdef double* row_key
    cdef int* row_ref

    for i in range(n):
        alive[i] = i
        parent[i] = i

    for _merge in range(n - 1):
        if chain_length == 0:
            chain[0] = alive[0]
            chain_length = 1

        # Follow nearest neighbours until two are mutually nearest.
        while True:
            x = chain[chain_length - 1]
            row_key = key + x * n
            row_ref = ref + x * n
            if chain_length > 1:
                # Prefer the previous element on a tie so the chain cannot cycle.
                y = chain[chain_length - 2]
                min_key = row_key[y]
                min_ref = row_ref[y]
            else:
                min_key = INFINITY
                min_ref = -1
            min_upper = _upper_m(min_key)
            min_lower = _lower_m(min_key)
            for a in range(n_alive):
                i = alive[a]
                candidate = row_key[i]
                # Most candidates are clearly farther: one bound decides.
                if i == x or _lower_m(candidate) >= min_upper:
                    continue
                if _upper_m(candidate) < min_lower or (
                    row_ref[i] != min_ref
                    and _exact_m(p, row_ref[i]) < _exact_m(p, min_ref)
                ):
                    min_key = candidate
                    min_ref = row_ref[i]
                    min_upper = _upper_m(min_key)
                    min_lower = _lower_m(min_key)
                    y = i
            if chain_length > 1 and y == chain[chain_length - 2]:
                break
            chain[chain_length] = y
            chain_length += 1

        chain_length -= 2
        if x > y:
            x, y = y, x
        # Only merges up to the cut-off shape the groups.
        if _within(p, min_key, min_ref, max_distance_m):
            parent[_find(parent, x)] = _find(parent, y)
        # Cluster x is merged into y: drop it from the live list.
        a = 0
        while alive[a] != x:
            a += 1
        n_alive -= 1
        while a < n_alive:
            alive[a] = alive[a + 1]
            a += 1
        # Complete linkage: the merged cluster is as far as its farther half.
        for a in range(n_alive):
            i = alive[a]
            if i == y:
                continue
            if _less(p, key[i * n + y], ref[i * n + y], key[i * n + x], ref[i * n + x]):
                key[i * n + y] = key[i * n + x]
                ref[i * n + y] = ref[i * n + x]
                key[y * n + i] = key[i * n + x]
                ref[y * n + i] = ref[i * n + x]


def cluster_complete_linkage(
    const float64_t[::1] lat_deg,  # IN
    const float64_t[::1] lon_deg,  # IN
    double max_distance_m,  # IN
    int64_t[::1] out_labels,  # OUT: group label per point
):
    """Complete-linkage groups whose diameter is at most ``max_distance_m``.

    Equivalent to SciPy's ``fcluster(linkage(d, method="complete"),
    t=max_distance_m, criterion="distance")`` over the pairwise ``distance_m``
    matrix ``d``, with the labels renumbered in order of first appearance.

    Parameters
    ----------
    lat_deg, lon_deg : float64 array, shape (n,)
        The points, degrees; n ≤ 40,000 (the matrix takes 12 n² bytes).
    max_distance_m : float
        The cut-off t, metres: two points share a group only if every pair
        of members of that group is at most t apart (a NaN t groups nothing).
    out_labels : int64 array, shape (n,)
        Receives the group of every point, 0, 1, 2, ... numbered in the order
        in which the groups' first members appear in the input. A point with
        a non-finite coordinate is a group of its own.

    Returns
    -------
    int
        The number of groups (0 for no points).
    """
    cdef Py_ssize_t n = lat_deg.shape[0]
    if lon_deg.shape[0] != n:
        raise ValueError(f"lon_deg has length {lon_deg.shape[0]}, expected {n}")
    if out_labels.shape[0] != n:
        raise ValueError(f"out_labels has length {out_labels.shape[0]}, expected {n}")
    if n > MAX_POINTS:
        raise ValueError(f"{n} points are more than the {MAX_POINTS} this kernel takes")
    if n == 0:
        return 0
    return cluster_labels(&lat_deg[0], &lon_deg[0], n, max_distance_m, &out_labels[0])


cdef Py_ssize_t cluster_labels(
    const double* lat_deg,  # IN n
    const double* lon_deg,  # IN n
    Py_ssize_t n,  # IN 1 ≤ n ≤ MAX_POINTS
    double max_distance_m,  # IN
    int64_t* out_labels,  # OUT n
) except -1:
    """``cluster_complete_linkage`` on pointers, for the other kernels; the number of groups."""
    cdef Py_ssize_t i, nv = 0, root, n_groups = 0
    cdef _Points p
    cdef Py_ssize_t* ints = NULL
    cdef double* doubles = NULL
    cdef int* refs = NULL
    cdef Py_ssize_t* compact
    cdef Py_ssize_t* alive
    cdef Py_ssize_t* chain
    cdef Py_ssize_t* parent
    cdef Py_ssize_t* group_of_root
    cdef double* lat
    cdef double* lon
    cdef double* ecef
    cdef double* keys

    # All scratch memory up front: compact index, live, chain, parent and
    # group-of-root arrays; compact coordinates, ECEF coordinates, exact
    # distance cache and key matrix; reference matrix.
    ints = <Py_ssize_t*>malloc(5 * n * sizeof(Py_ssize_t))
    doubles = <double*>malloc((5 * n + n * (n - 1) // 2 + n * n) * sizeof(double))
    refs = <int*>malloc(n * n * sizeof(int))
    if ints == NULL or doubles == NULL or refs == NULL:
        free(ints)
        free(doubles)
        free(refs)
        raise MemoryError(f"cannot allocate the distance matrix of {n} points")
    compact = ints
    alive = ints + n
    chain = ints + 2 * n
    parent = ints + 3 * n
    group_of_root = ints + 4 * n
    lat = doubles
    lon = doubles + n
    ecef = doubles + 2 * n
    p.exact = doubles + 5 * n
    keys = p.exact + n * (n - 1) // 2
    try:
        with nogil:
            for i in range(n):
                if isfinite(lat_deg[i]) and isfinite(lon_deg[i]):
                    compact[i] = nv
                    lat[nv] = lat_deg[i]
                    lon[nv] = lon_deg[i]
                    nv += 1
                else:
                    compact[i] = -1
            for i in range(nv):
                parent[i] = i
            if nv >= 2 and not isnan(max_distance_m):
                p.n = nv
                p.lat_deg = lat
                p.lon_deg = lon
                _fill_matrix(&p, ecef, keys, refs)
                _nn_chain_cut(&p, keys, refs, max_distance_m, alive, chain, parent)
            for i in range(nv):
                group_of_root[i] = -1
            for i in range(n):
                if compact[i] < 0:
                    out_labels[i] = n_groups
                    n_groups += 1
                    continue
                root = _find(parent, compact[i])
                if group_of_root[root] < 0:
                    group_of_root[root] = n_groups
                    n_groups += 1
                out_labels[i] = group_of_root[root]
    finally:
        free(ints)
        free(doubles)
        free(refs)
    return n_groups


def order_groups(
    const int64_t[::1] labels,  # IN: 0 ≤ label < n_groups
    Py_ssize_t n_groups,  # IN
    Py_ssize_t min_size,  # IN
    int64_t[::1] out_members,  # OUT: member indices, group by group
    int64_t[::1] out_ends,  # OUT: end of each kept group in out_members
):
    """List the members of every group of at least ``min_size`` points.

    A counting sort of ``labels`` (as written by ``cluster_complete_linkage``)
    that keeps only the groups with ``min_size`` or more members.

    Parameters
    ----------
    labels : int64 array, shape (n,)
        Group of every point, in [0, n_groups).
    n_groups : int
        Number of groups.
    min_size : int
        Smallest group to keep.
    out_members : int64 array, shape (n,)
        Receives the indices of the kept groups' members: the groups in label
        order, each group's members ascending.
    out_ends : int64 array, shape (n_groups,)
        Receives, for the k-th kept group, the end of its members in
        ``out_members`` (the start is the previous end, or 0).

    Returns
    -------
    int
        The number of kept groups.
    """
    cdef Py_ssize_t n = labels.shape[0], i
    if out_members.shape[0] != n:
        raise ValueError(f"out_members has length {out_members.shape[0]}, expected {n}")
    if out_ends.shape[0] != n_groups:
        raise ValueError(f"out_ends has length {out_ends.shape[0]}, expected {n_groups}")
    for i in range(n):
        if not 0 <= labels[i] < n_groups:
            raise ValueError(f"label {labels[i]} at {i} is not in [0, {n_groups})")
    if n_groups == 0:
        return 0
    return group_members(&labels[0], n, n_groups, min_size, &out_members[0], &out_ends[0])


cdef Py_ssize_t group_members(
    const int64_t* labels,  # IN n, each in [0, n_groups)
    Py_ssize_t n,  # IN
    Py_ssize_t n_groups,  # IN ≥ 1
    Py_ssize_t min_size,  # IN
    int64_t* out_members,  # OUT n
    int64_t* out_ends,  # OUT n_groups
) except -1:
    """``order_groups`` on pointers, for the other kernels; the number of kept groups."""
    cdef Py_ssize_t i, label, position = 0, kept = 0
    cdef Py_ssize_t* start
    start = <Py_ssize_t*>malloc(n_groups * sizeof(Py_ssize_t))
    if start == NULL:
        raise MemoryError(f"cannot allocate scratch for {n_groups} groups")
    with nogil:
        # Count the members, then turn the counts into start positions,
        # leaving the dropped groups out (start -1).
        for label in range(n_groups):
            start[label] = 0
        for i in range(n):
            start[labels[i]] += 1
        for label in range(n_groups):
            if start[label] >= min_size:
                position += start[label]
                out_ends[kept] = position
                start[label] = position - start[label]
                kept += 1
            else:
                start[label] = -1
        for i in range(n):
            label = labels[i]
            if start[label] >= 0:
                out_members[start[label]] = i
                start[label] += 1
    free(start)
    return kept
