# Shared C types and small inline helpers for the kernels in ichnaea._fast.
#
# Kernels compute in float64: the Python boundary (ichnaea/geo.py) converts
# every input to a contiguous float64 array, so entry points take
# ``const float64_t[::1]``. The fused ``floating`` type is for kernels that
# must keep a caller's float32 storage (none do yet). Integer outputs, such
# as rounded radii in metres, are ``int64_t`` (NumPy's int64).

from libc.stdint cimport int64_t

ctypedef double float64_t

ctypedef fused floating:
    float
    double


cdef inline int check_lengths(Py_ssize_t n, Py_ssize_t m, str name) except -1:
    # Not a substitute for the Python boundary's validation: with bounds
    # checks compiled out, a short array would be read or written past.
    if m != n:
        raise ValueError(f"{name} has length {m}, expected {n}")
    return 0


cdef inline int hex_value(unsigned int c) noexcept:
    """The value (0-15) of a hex digit of either case, or -1 (MAC parsing in
    _query.pyx, _rows.pyx and _reports.pyx)."""
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1
