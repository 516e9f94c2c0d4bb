# Nonlinear least squares for the kernels in ichnaea._fast.
#
# A line-by-line port of MINPACK's lmdif (Levenberg-Marquardt with a
# forward-difference Jacobian), the routine behind SciPy's
# ``scipy.optimize.leastsq``, so that a kernel can reproduce leastsq's
# iterates and stopping decisions without SciPy and without the GIL. See
# _leastsq.pyx for the algorithm.

# Residual function: writes the m residuals at the n-vector x into fvec.
# ctx carries the caller's data (the residuals need no other state).
ctypedef void (*residual_fn)(
    void* ctx,  # IN
    const double* x,  # IN: n parameters
    double* fvec,  # OUT: m residuals
) noexcept nogil

# MINPACK's return codes (``info``; SciPy's ``ier``): 1-4 are convergence.
cdef enum:
    LMDIF_IMPROPER_INPUT = 0
    LMDIF_FTOL = 1
    LMDIF_XTOL = 2
    LMDIF_FTOL_XTOL = 3
    LMDIF_GTOL = 4
    LMDIF_MAXFEV = 5
    LMDIF_FTOL_TOO_SMALL = 6
    LMDIF_XTOL_TOO_SMALL = 7
    LMDIF_GTOL_TOO_SMALL = 8
    # Not MINPACK's: the residuals at the starting point are not finite.
    LMDIF_NOT_FINITE = -1

# Number of doubles of scratch ``lmdif`` needs for m residuals and n
# parameters: the m × n Jacobian, one m-vector and five n-vectors.
cdef Py_ssize_t lmdif_work_size(
    Py_ssize_t m,  # IN
    Py_ssize_t n,  # IN
) noexcept nogil

# Minimise the sum of squares of fcn(x) from the starting point x, as
# MINPACK lmdif does with mode = 1 (internal scaling) and nprint = 0. On
# return x holds the last accepted iterate and fvec the residuals there.
# Returns the info code; LMDIF_IMPROPER_INPUT for m < n, n < 1 or negative
# tolerances, LMDIF_NOT_FINITE (x unchanged) when the starting residuals are
# not finite instead of iterating on NaN until maxfev.
cdef int lmdif(
    residual_fn fcn,  # IN
    void* ctx,  # IN: passed through to fcn
    Py_ssize_t m,  # IN: number of residuals
    Py_ssize_t n,  # IN: number of parameters
    double* x,  # INOUT: n parameters
    double* fvec,  # OUT: m residuals at the returned x
    double ftol,  # IN
    double xtol,  # IN
    double gtol,  # IN
    int maxfev,  # IN
    double epsfcn,  # IN
    double factor,  # IN
    double* work,  # OUT: scratch of lmdif_work_size(m, n) doubles
    Py_ssize_t* ipvt,  # OUT: scratch of n entries
) noexcept nogil
