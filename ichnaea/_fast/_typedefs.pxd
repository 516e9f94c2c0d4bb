# Shared C types for the kernels in ichnaea._fast.
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
