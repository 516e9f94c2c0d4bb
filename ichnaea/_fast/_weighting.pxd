# The cluster aggregation on pointers, for the other kernels in ichnaea._fast
# (_index.pyx gathers, clusters and aggregates in one call). The def entry
# points aggregate_cluster and aggregate_cell_groups of _weighting.pyx validate their
# arrays and call these.

from libc.stdint cimport int64_t, uint8_t


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
) except -1

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
) except -1
