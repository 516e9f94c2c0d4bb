# The clustering kernels on pointers, for the other kernels in ichnaea._fast
# (_index.pyx gathers, clusters and aggregates in one call). The def entry
# points of _clustering.pyx validate their arrays and call these.

from libc.stdint cimport int64_t


cdef Py_ssize_t cluster_labels(
    const double* lat_deg,  # IN n
    const double* lon_deg,  # IN n
    Py_ssize_t n,  # IN 1 ≤ n ≤ 40,000
    double max_distance_m,  # IN
    int64_t* out_labels,  # OUT n
) except -1

cdef Py_ssize_t group_members(
    const int64_t* labels,  # IN n, each in [0, n_groups)
    Py_ssize_t n,  # IN
    Py_ssize_t n_groups,  # IN ≥ 1
    Py_ssize_t min_size,  # IN
    int64_t* out_members,  # OUT n
    int64_t* out_ends,  # OUT n_groups
) except -1
