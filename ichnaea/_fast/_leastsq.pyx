"""Levenberg-Marquardt least squares: a port of MINPACK's lmdif.

The locate API refines a cluster's weighted-mean position by minimising the
sum of squared, weighted distances to its networks, and the service it
replaces did that with ``scipy.optimize.leastsq``, i.e. MINPACK's ``lmdif``.
Because lmdif stops on *relative* tolerances (the step bound against
1.49e-8 · ‖D x‖, where x is the position in degrees), it often stops after
one or two iterations, at a point that depends on every detail of the
algorithm. Any other optimiser, even an exact Levenberg-Marquardt with an
analytic Jacobian, lands elsewhere by more than the 1e-6° the old answers
are compared with. This module therefore follows lmdif operation by
operation, in the order of SciPy's C translation of MINPACK
(``scipy/optimize/src/minpack.c``), so that the same residuals give the same
iterates.

How lmdif works (Moré, "The Levenberg-Marquardt algorithm: implementation
and theory", 1978): at the current point x it approximates the Jacobian J
by forward differences, with steps h_j = √max(epsfcn, ε) · |x_j| (fdjac2),
and factorises J P = Q R by Householder reflections with column pivoting
(qrfac). The variables are scaled by D, the largest column norms of J seen
so far. Within a trust region ‖D p‖ ≤ Δ it then looks for the step p that
minimises ‖J p + f‖² + λ ‖D p‖²: lmpar searches the Levenberg-Marquardt
parameter λ by Newton's method on ‖D p(λ)‖ = Δ (to within 10 %), solving
each damped system with Givens rotations on R (qrsolv). The ratio of the
actual to the predicted reduction of ‖f‖ decides whether the step is
accepted (ratio ≥ 1e-4) and how Δ changes (shrunk for ratio ≤ 1/4,
doubled above 3/4). It stops with

1. both reductions ≤ ftol (relative change of the sum of squares),
2. Δ ≤ xtol · ‖D x‖ (relative change of x),
3. both of the above,
4. every column of J orthogonal to f to within gtol,
5. maxfev function evaluations, or 6-8 when a tolerance is below the
   machine precision ε.

The helpers are ``cdef ... noexcept nogil`` over raw pointers and
caller-supplied scratch; matrices are column-major (``a[i + lda * j]``), as
in MINPACK. Only ``lmdif`` and ``lmdif_work_size`` are exported
(``_leastsq.pxd``).

This module is a translation of MINPACK and carries its licence:

    Minpack Copyright Notice (1999) University of Chicago. All rights
    reserved

    Redistribution and use in source and binary forms, with or without
    modification, are permitted provided that the following conditions are
    met:

    1. Redistributions of source code must retain the above copyright
       notice, this list of conditions and the following disclaimer.

    2. Redistributions in binary form must reproduce the above copyright
       notice, this list of conditions and the following disclaimer in the
       documentation and/or other materials provided with the distribution.

    3. The end-user documentation included with the redistribution, if
       any, must include the following acknowledgment: "This product
       includes software developed by the University of Chicago, as
       Operator of Argonne National Laboratory." Alternately, this
       acknowledgment may appear in the software itself, if and wherever
       such third-party acknowledgments normally appear.

    4. WARRANTY DISCLAIMER. THE SOFTWARE IS SUPPLIED "AS IS" WITHOUT
       WARRANTY OF ANY KIND. THE COPYRIGHT HOLDER, THE UNITED STATES, THE
       UNITED STATES DEPARTMENT OF ENERGY, AND THEIR EMPLOYEES: (1) DISCLAIM
       ANY WARRANTIES, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO ANY
       IMPLIED WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
       PURPOSE, TITLE OR NON-INFRINGEMENT, (2) DO NOT ASSUME ANY LEGAL
       LIABILITY OR RESPONSIBILITY FOR THE ACCURACY, COMPLETENESS, OR
       USEFULNESS OF THE SOFTWARE, (3) DO NOT REPRESENT THAT USE OF THE
       SOFTWARE WOULD NOT INFRINGE PRIVATELY OWNED RIGHTS, (4) DO NOT
       WARRANT THAT THE SOFTWARE WILL FUNCTION UNINTERRUPTED, THAT IT IS
       ERROR-FREE OR THAT ANY ERRORS WILL BE CORRECTED.

    5. LIMITATION OF LIABILITY. IN NO EVENT WILL THE COPYRIGHT HOLDER, THE
       UNITED STATES, THE UNITED STATES DEPARTMENT OF ENERGY, OR THEIR
       EMPLOYEES: BE LIABLE FOR ANY INDIRECT, INCIDENTAL, CONSEQUENTIAL,
       SPECIAL OR PUNITIVE DAMAGES OF ANY KIND OR NATURE, INCLUDING BUT NOT
       LIMITED TO LOSS OF PROFITS OR LOSS OF DATA, FOR ANY REASON WHATSOEVER,
       WHETHER SUCH LIABILITY IS ASSERTED ON THE BASIS OF CONTRACT, TORT
       (INCLUDING NEGLIGENCE OR STRICT LIABILITY), OR OTHERWISE, EVEN IF ANY
       OF SAID PARTIES HAS BEEN WARNED OF THE POSSIBILITY OF SUCH LOSS OR
       DAMAGES.
"""

from libc.math cimport fabs, fmax, fmin, isfinite, pow, sqrt

# MINPACK's dpmpar: machine epsilon and smallest normal double.
cdef double EPSMCH = 2.220446049250313e-16
cdef double DWARF = 2.2250738585072014e-308
# enorm's thresholds between small, intermediate and large components.
cdef double RGIANT = pow(2.0, 63.5)
cdef double RDWARF = 0.5 / RGIANT


cdef double _enorm(
    Py_ssize_t n,  # IN
    const double* x,  # IN: n values
) noexcept nogil:
    # Euclidean norm without destructive underflow or overflow: squares of
    # small and large components are summed relative to their maximum.
    cdef Py_ssize_t i
    cdef double s1 = 0.0, s2 = 0.0, s3 = 0.0, x1max = 0.0, x3max = 0.0
    cdef double xabs, agiant = RGIANT / <double>n, r
    for i in range(n):
        xabs = fabs(x[i])
        if xabs <= RDWARF or xabs >= agiant:
            if xabs > RDWARF:
                if xabs > x1max:
                    r = x1max / xabs
                    s1 = 1.0 + s1 * (r * r)
                    x1max = xabs
                else:
                    r = xabs / x1max
                    s1 += r * r
            else:
                if xabs > x3max:
                    r = x3max / xabs
                    s3 = 1.0 + s3 * (r * r)
                    x3max = xabs
                elif xabs != 0.0:
                    r = xabs / x3max
                    s3 += r * r
        else:
            s2 += xabs * xabs
    if s1 != 0.0:
        return x1max * sqrt(s1 + (s2 / x1max) / x1max)
    if s2 != 0.0:
        # x3max = 0 here only if s2 is NaN: the first form, without 0 / 0
        # (which raises when ICHNAEA_CYTHON_DEBUG turns cdivision off).
        if s2 >= x3max or x3max == 0.0:
            return sqrt(s2 * (1.0 + (x3max / s2) * (x3max * s3)))
        return sqrt(x3max * ((s2 / x3max) + (x3max * s3)))
    return x3max * sqrt(s3)


cdef void _fdjac2(
    residual_fn fcn,  # IN
    void* ctx,  # IN
    Py_ssize_t m,  # IN
    Py_ssize_t n,  # IN
    double* x,  # INOUT: perturbed and restored
    const double* fvec,  # IN: residuals at x
    double* fjac,  # OUT: m × n forward-difference Jacobian
    double epsfcn,  # IN
    double* wa,  # OUT: scratch, m
) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef double h, temp
    cdef double eps = sqrt(fmax(epsfcn, EPSMCH))
    for j in range(n):
        temp = x[j]
        h = eps * fabs(temp)
        if h == 0.0:
            h = eps
        x[j] = temp + h
        fcn(ctx, x, wa)
        x[j] = temp
        for i in range(m):
            fjac[i + m * j] = (wa[i] - fvec[i]) / h


cdef void _qrfac(
    Py_ssize_t m,  # IN
    Py_ssize_t n,  # IN
    double* a,  # INOUT: m × n; R above, Householder vectors below
    Py_ssize_t lda,  # IN
    Py_ssize_t* ipvt,  # OUT: column permutation
    double* rdiag,  # OUT: diagonal of R
    double* acnorm,  # OUT: column norms of the input
    double* wa,  # OUT: scratch, n
) noexcept nogil:
    # Householder QR with column pivoting (always on, as lmdif uses it).
    cdef Py_ssize_t i, j, k, kmax, minmn = n if m > n else m
    cdef double ajnorm, ssum, temp, r
    for j in range(n):
        acnorm[j] = _enorm(m, a + j * lda)
        rdiag[j] = acnorm[j]
        wa[j] = rdiag[j]
        ipvt[j] = j
    for j in range(minmn):
        # Bring the column of largest remaining norm into the pivot position.
        kmax = j
        for k in range(j, n):
            if rdiag[k] > rdiag[kmax]:
                kmax = k
        if kmax != j:
            for i in range(m):
                temp = a[i + lda * j]
                a[i + lda * j] = a[i + lda * kmax]
                a[i + lda * kmax] = temp
            rdiag[kmax] = rdiag[j]
            wa[kmax] = wa[j]
            k = ipvt[j]
            ipvt[j] = ipvt[kmax]
            ipvt[kmax] = k
        # Reduce column j to a multiple of the j-th unit vector.
        ajnorm = _enorm(m - j, a + lda * j + j)
        if ajnorm == 0.0:
            rdiag[j] = -ajnorm
            continue
        if a[j + lda * j] < 0.0:
            ajnorm = -ajnorm
        for i in range(j, m):
            a[i + lda * j] /= ajnorm
        a[j + lda * j] += 1.0
        # Apply the reflection to the remaining columns, update their norms.
        for k in range(j + 1, n):
            ssum = 0.0
            for i in range(j, m):
                ssum += a[i + lda * j] * a[i + lda * k]
            temp = ssum / a[j + lda * j]
            for i in range(j, m):
                a[i + lda * k] -= temp * a[i + lda * j]
            if rdiag[k] != 0.0:
                temp = a[j + lda * k] / rdiag[k]
                rdiag[k] *= sqrt(fmax(0.0, 1.0 - temp * temp))
                r = rdiag[k] / wa[k]
                if 0.05 * (r * r) <= EPSMCH:
                    rdiag[k] = _enorm(m - j - 1, a + (j + 1) + lda * k)
                    wa[k] = rdiag[k]
        rdiag[j] = -ajnorm


cdef void _qrsolv(
    Py_ssize_t n,  # IN
    double* r,  # INOUT: upper triangle kept, S^T stored below it
    Py_ssize_t ldr,  # IN
    const Py_ssize_t* ipvt,  # IN
    const double* diag,  # IN: the diagonal matrix D
    const double* qtb,  # IN: first n components of Q^T b
    double* x,  # OUT: least-squares solution of A x = b, D x = 0
    double* sdiag,  # OUT: diagonal of S
    double* wa,  # OUT: scratch, n
) noexcept nogil:
    cdef Py_ssize_t i, j, k, col, nsing
    cdef double ccos, ccotan, qtbpj, ssin, ssum, ttan, temp
    # Copy R and Q^T b; keep the diagonal of R in x.
    for j in range(n):
        for i in range(j, n):
            r[i + j * ldr] = r[j + i * ldr]
        x[j] = r[j + j * ldr]
        wa[j] = qtb[j]
    # Eliminate the diagonal matrix D with Givens rotations.
    for j in range(n):
        col = ipvt[j]
        if diag[col] != 0.0:
            for k in range(j, n):
                sdiag[k] = 0.0
            sdiag[j] = diag[col]
            qtbpj = 0.0
            for k in range(j, n):
                if sdiag[k] != 0.0:
                    if fabs(r[ldr * k + k]) < fabs(sdiag[k]):
                        ccotan = r[ldr * k + k] / sdiag[k]
                        ssin = 0.5 / sqrt(0.25 + 0.25 * (ccotan * ccotan))
                        ccos = ssin * ccotan
                    else:
                        ttan = sdiag[k] / r[ldr * k + k]
                        ccos = 0.5 / sqrt(0.25 + 0.25 * (ttan * ttan))
                        ssin = ccos * ttan
                    r[ldr * k + k] *= ccos
                    r[ldr * k + k] += ssin * sdiag[k]
                    temp = ccos * wa[k] + ssin * qtbpj
                    qtbpj = -ssin * wa[k] + ccos * qtbpj
                    wa[k] = temp
                    for i in range(k + 1, n):
                        temp = ccos * r[i + ldr * k] + ssin * sdiag[i]
                        sdiag[i] = -ssin * r[i + ldr * k] + ccos * sdiag[i]
                        r[i + ldr * k] = temp
        sdiag[j] = r[ldr * j + j]
        r[ldr * j + j] = x[j]
    # Solve the triangular system (least squares if singular).
    nsing = n
    for j in range(n):
        if sdiag[j] == 0.0 and nsing == n:
            nsing = j
        if nsing < n:
            wa[j] = 0.0
    for k in range(1, nsing + 1):
        j = nsing - k
        ssum = 0.0
        for i in range(j + 1, nsing):
            ssum += r[i + j * ldr] * wa[i]
        wa[j] = (wa[j] - ssum) / sdiag[j]
    for j in range(n):
        x[ipvt[j]] = wa[j]


cdef double _lmpar(
    Py_ssize_t n,  # IN
    double* r,  # INOUT: see _qrsolv
    Py_ssize_t ldr,  # IN
    const Py_ssize_t* ipvt,  # IN
    const double* diag,  # IN
    const double* qtb,  # IN
    double delta,  # IN: trust-region radius
    double par,  # IN: initial Levenberg-Marquardt parameter
    double* x,  # OUT: the step
    double* sdiag,  # OUT
    double* wa1,  # OUT: scratch, n
    double* wa2,  # OUT: scratch, n
) noexcept nogil:
    # Returns the new parameter λ such that ‖D x‖ is within 10 % of delta
    # (or λ = 0 when the Gauss-Newton step is already inside).
    cdef Py_ssize_t i, j, k, col, nsing, iteration
    cdef double dxnorm, fp, gnorm, parc, parl, paru, ssum, temp

    # Gauss-Newton direction (least squares if the Jacobian is singular).
    nsing = n
    for j in range(n):
        wa1[j] = qtb[j]
        if r[j + j * ldr] == 0.0 and nsing == n:
            nsing = j
        if nsing < n:
            wa1[j] = 0.0
    for k in range(1, nsing + 1):
        j = nsing - k
        wa1[j] /= r[j + j * ldr]
        temp = wa1[j]
        for i in range(j):
            wa1[i] -= r[i + j * ldr] * temp
    for j in range(n):
        x[ipvt[j]] = wa1[j]

    iteration = 0
    for j in range(n):
        wa2[j] = diag[j] * x[j]
    dxnorm = _enorm(n, wa2)
    fp = dxnorm - delta
    if fp <= 0.1 * delta:
        return 0.0

    # Lower bound parl from the Newton step (zero if rank deficient).
    parl = 0.0
    if nsing == n:
        for j in range(n):
            col = ipvt[j]
            wa1[j] = diag[col] * (wa2[col] / dxnorm)
        for j in range(n):
            ssum = 0.0
            for i in range(j):
                ssum += r[i + j * ldr] * wa1[i]
            wa1[j] = (wa1[j] - ssum) / r[j + j * ldr]
        temp = _enorm(n, wa1)
        parl = ((fp / delta) / temp) / temp

    # Upper bound paru.
    for j in range(n):
        ssum = 0.0
        for i in range(j + 1):
            ssum += r[i + j * ldr] * qtb[i]
        col = ipvt[j]
        wa1[j] = ssum / diag[col]
    gnorm = _enorm(n, wa1)
    paru = gnorm / delta
    if paru == 0.0:
        paru = DWARF / fmin(delta, 0.1)

    par = fmin(fmax(par, parl), paru)
    if par == 0.0:
        par = gnorm / dxnorm

    while True:
        iteration += 1
        if par == 0.0:
            par = fmax(DWARF, 0.001 * paru)
        temp = sqrt(par)
        for j in range(n):
            wa1[j] = temp * diag[j]
        _qrsolv(n, r, ldr, ipvt, wa1, qtb, x, sdiag, wa2)
        for j in range(n):
            wa2[j] = diag[j] * x[j]
        dxnorm = _enorm(n, wa2)
        temp = fp
        fp = dxnorm - delta
        if (
            fabs(fp) <= 0.1 * delta
            or (parl == 0.0 and fp <= temp and temp < 0.0)
            or iteration == 10
        ):
            return par
        # Newton correction.
        for j in range(n):
            col = ipvt[j]
            wa1[j] = diag[col] * (wa2[col] / dxnorm)
        for j in range(n):
            wa1[j] /= sdiag[j]
            temp = wa1[j]
            for i in range(j + 1, n):
                wa1[i] -= r[i + j * ldr] * temp
        temp = _enorm(n, wa1)
        parc = ((fp / delta) / temp) / temp
        if fp > 0.0:
            parl = fmax(parl, par)
        if fp < 0.0:
            paru = fmin(paru, par)
        par = fmax(parl, par + parc)


cdef Py_ssize_t lmdif_work_size(
    Py_ssize_t m,  # IN
    Py_ssize_t n,  # IN
) noexcept nogil:
    return m * n + m + 5 * n


cdef int lmdif(
    residual_fn fcn,  # IN
    void* ctx,  # IN
    Py_ssize_t m,  # IN
    Py_ssize_t n,  # IN
    double* x,  # INOUT
    double* fvec,  # OUT
    double ftol,  # IN
    double xtol,  # IN
    double gtol,  # IN
    int maxfev,  # IN
    double epsfcn,  # IN
    double factor,  # IN
    double* work,  # OUT: scratch
    Py_ssize_t* ipvt,  # OUT: scratch
) noexcept nogil:
    cdef double* fjac = work
    cdef double* wa4 = work + m * n
    cdef double* diag = wa4 + m
    cdef double* qtf = diag + n
    cdef double* wa1 = qtf + n
    cdef double* wa2 = wa1 + n
    cdef double* wa3 = wa2 + n
    cdef Py_ssize_t i, j, col
    cdef int info = 0, nfev, iteration
    cdef double actred, delta = 0.0, dirder, fnorm, fnorm1, gnorm, par, pnorm
    cdef double prered, ratio, ssum, temp, temp1, temp2, xnorm = 0.0, q

    if (
        n <= 0 or m < n or ftol < 0.0 or xtol < 0.0 or gtol < 0.0
        or maxfev <= 0 or factor <= 0.0
    ):
        return LMDIF_IMPROPER_INPUT

    fcn(ctx, x, fvec)
    nfev = 1
    fnorm = _enorm(m, fvec)
    if not isfinite(fnorm):
        # MINPACK would iterate on NaN until maxfev and report info 5; say
        # so at once (the caller treats both as "not converged").
        return LMDIF_NOT_FINITE

    par = 0.0
    iteration = 1
    while True:  # outer loop: one Jacobian per pass
        _fdjac2(fcn, ctx, m, n, x, fvec, fjac, epsfcn, wa4)
        nfev += <int>n
        _qrfac(m, n, fjac, m, ipvt, wa1, wa2, wa3)

        if iteration == 1:
            # Scale by the column norms of the first Jacobian, and start
            # with a step bound of factor · ‖D x‖.
            for j in range(n):
                diag[j] = wa2[j]
                if wa2[j] == 0.0:
                    diag[j] = 1.0
            for j in range(n):
                wa3[j] = diag[j] * x[j]
            xnorm = _enorm(n, wa3)
            delta = factor * xnorm
            if delta == 0.0:
                delta = factor

        # Q^T f, first n components into qtf.
        for i in range(m):
            wa4[i] = fvec[i]
        for j in range(n):
            if fjac[j + m * j] != 0.0:
                ssum = 0.0
                for i in range(j, m):
                    ssum += fjac[i + m * j] * wa4[i]
                temp = -ssum / fjac[j + m * j]
                for i in range(j, m):
                    wa4[i] += fjac[i + m * j] * temp
            fjac[j + m * j] = wa1[j]
            qtf[j] = wa4[j]

        # Norm of the scaled gradient.
        gnorm = 0.0
        if fnorm != 0.0:
            for j in range(n):
                col = ipvt[j]
                if wa2[col] != 0.0:
                    ssum = 0.0
                    for i in range(j + 1):
                        ssum += fjac[i + m * j] * (qtf[i] / fnorm)
                    gnorm = fmax(gnorm, fabs(ssum / wa2[col]))
        if gnorm <= gtol:
            return LMDIF_GTOL

        for j in range(n):
            diag[j] = fmax(diag[j], wa2[j])

        while True:  # inner loop: until a step is accepted
            par = _lmpar(n, fjac, m, ipvt, diag, qtf, delta, par, wa1, wa2, wa3, wa4)
            for j in range(n):
                wa1[j] = -wa1[j]
                wa2[j] = x[j] + wa1[j]
                wa3[j] = diag[j] * wa1[j]
            pnorm = _enorm(n, wa3)
            if iteration == 1:
                delta = fmin(delta, pnorm)

            fcn(ctx, wa2, wa4)
            nfev += 1
            fnorm1 = _enorm(m, wa4)

            # Scaled actual and predicted reductions, directional derivative.
            actred = -1.0
            if 0.1 * fnorm1 < fnorm:
                q = fnorm1 / fnorm
                actred = 1.0 - q * q
            for j in range(n):
                wa3[j] = 0.0
                col = ipvt[j]
                temp = wa1[col]
                for i in range(j + 1):
                    wa3[i] += fjac[i + m * j] * temp
            temp1 = _enorm(n, wa3) / fnorm
            temp2 = (sqrt(par) * pnorm) / fnorm
            prered = temp1 * temp1 + temp2 * temp2 / 0.5
            dirder = -(temp1 * temp1 + temp2 * temp2)
            ratio = 0.0
            if prered != 0.0:
                ratio = actred / prered

            # Update the step bound.
            if ratio <= 0.25:
                if actred >= 0.0:
                    temp = 0.5
                else:
                    temp = 0.5 * dirder / (dirder + 0.5 * actred)
                if 0.1 * fnorm1 >= fnorm or temp < 0.1:
                    temp = 0.1
                delta = temp * fmin(delta, pnorm / 0.1)
                par = par / temp
            elif par == 0.0 or ratio >= 0.75:
                delta = pnorm / 0.5
                par = 0.5 * par

            if ratio >= 1e-4:  # successful: move to x + p
                for j in range(n):
                    x[j] = wa2[j]
                    wa2[j] = diag[j] * x[j]
                for i in range(m):
                    fvec[i] = wa4[i]
                xnorm = _enorm(n, wa2)
                fnorm = fnorm1
                iteration += 1

            # Convergence tests.
            if fabs(actred) <= ftol and prered <= ftol and 0.5 * ratio <= 1.0:
                info = LMDIF_FTOL
            if delta <= xtol * xnorm:
                info = LMDIF_XTOL
            if (
                fabs(actred) <= ftol and prered <= ftol and 0.5 * ratio <= 1.0
                and info == LMDIF_XTOL
            ):
                info = LMDIF_FTOL_XTOL
            if info != 0:
                return info

            # Termination and stringent tolerances.
            if nfev >= maxfev:
                info = LMDIF_MAXFEV
            if fabs(actred) <= EPSMCH and prered <= EPSMCH and 0.5 * ratio <= 1.0:
                info = LMDIF_FTOL_TOO_SMALL
            if delta <= EPSMCH * xnorm:
                info = LMDIF_XTOL_TOO_SMALL
            if gnorm <= EPSMCH:
                info = LMDIF_GTOL_TOO_SMALL
            if info != 0:
                return info

            if ratio >= 1e-4:
                break
