# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Choosing a locate answer among the sources' results, and rounding its numbers.

``best_position_index(results)`` is ``ichnaea.api.locate.result.best_position``
(spec locate.md 3.7) for results with numbers in them: the results sorted
by accuracy, a cluster seeded by each (itself and the later results within
1.5 times the larger accuracy), the cluster with the highest summed score
(ties: the higher single score, then the earlier seed), and in it the most
accurate result (ties: the higher score). It reads each result's ``lat``,
``lon``, ``accuracy`` and ``score`` and returns the index of the best one
in ``results`` (-1 when there are none). A NaN accuracy or score, or a
number that is not a float, goes back to the Python path (None), which is
the specification; tests/_fast/test_answer.py holds the two equal.

``round7(x)`` is ``round(x, 7)``, the same value, at an eighth of its cost
(36 against 279 ns): a locate answer's coordinates and radius are rounded
to 7 decimals every time a result is made.
"""

from libc.math cimport fabs, isfinite, nearbyint
from libc.stdlib cimport free, malloc

from ichnaea._fast._geodesy cimport distance_m

# x * 1e7 is exact to half an ulp (|y| * 2**-53); within a margin of that of
# a tie (frac 0.5), the exact decimal decides: Python's round does it.
cdef double _TIE_MARGIN = 8.881784197001252e-16  # 2**-50
cdef double _EXACT_INTEGERS = 4503599627370496.0  # 2**52


def round7(object value):
    """``round(value, 7)``: for a float, the nearest double to it rounded half-even to
    7 decimals; anything else (an int stays an int) goes to ``round``."""
    if type(value) is not float:
        return round(value, 7)
    cdef double x = <double>value
    cdef double y = x * 1e7
    cdef double r
    if not isfinite(y) or fabs(y) >= _EXACT_INTEGERS:
        return round(x, 7)
    r = nearbyint(y)  # half-even, the default rounding mode
    if fabs(fabs(y - r) - 0.5) <= fabs(y) * _TIE_MARGIN:
        return round(x, 7)
    # r and 1e7 are exact, so the quotient is the double nearest to r / 10**7,
    # as round's decimal-to-double conversion gives it.
    return r / 1e7


cdef struct _Result:
    double lat
    double lon
    double accuracy
    double score


cdef bint _read(object result, _Result* out) except -1:
    """The result's numbers; False when one is not a float or is NaN where it is compared."""
    cdef object lat = result.lat, lon = result.lon
    cdef object accuracy = result.accuracy, score = result.score
    if not (
        type(lat) is float and type(lon) is float
        and type(accuracy) is float and type(score) is float
    ):
        return False
    out.lat, out.lon = <double>lat, <double>lon
    out.accuracy, out.score = <double>accuracy, <double>score
    return out.accuracy == out.accuracy and out.score == out.score


def best_position_index(list results):
    """The index of ``best_position(results)`` in ``results``; -1 for none; None: the
    Python path (see the module docstring)."""
    cdef Py_ssize_t n = len(results), i, j, k, seed, other
    cdef _Result* rows
    cdef Py_ssize_t* order
    cdef Py_ssize_t* members
    cdef Py_ssize_t* best
    cdef Py_ssize_t size, best_size = 0, pick
    cdef double total, top, best_total = 0.0, best_top = 0.0, reach, a, b
    cdef _Result one
    if n == 0:
        return -1
    if n == 1:
        return 0 if _read(results[0], &one) else None
    rows = <_Result*>malloc(n * sizeof(_Result))
    order = <Py_ssize_t*>malloc(3 * n * sizeof(Py_ssize_t))
    if rows is NULL or order is NULL:
        free(rows)
        free(order)
        raise MemoryError()
    members, best = order + n, order + 2 * n
    try:
        for i in range(n):
            if not _read(results[i], &rows[i]):
                return None
        # Stable insertion sort by accuracy (no NaN: a total order), as sorted().
        for i in range(n):
            j = i
            while j > 0 and rows[i].accuracy < rows[order[j - 1]].accuracy:
                order[j] = order[j - 1]
                j -= 1
            order[j] = i
        for i in range(n):
            seed = order[i]
            members[0] = seed
            size = 1
            for k in range(i + 1, n):
                other = order[k]
                a, b = rows[seed].accuracy, rows[other].accuracy
                reach = 1.5 * (b if b > a else a)
                if distance_m(
                    rows[seed].lat, rows[seed].lon, rows[other].lat, rows[other].lon
                ) <= reach:
                    members[size] = other
                    size += 1
            # The summed score left to right, as the Python path adds it.
            total, top = 0.0, rows[members[0]].score
            for k in range(size):
                total += rows[members[k]].score
                if rows[members[k]].score > top:
                    top = rows[members[k]].score
            # Strictly greater: on a full tie the earlier (more accurate) seed stays.
            if best_size == 0 or total > best_total or (total == best_total and top > best_top):
                best_total, best_top, best_size = total, top, size
                for k in range(size):
                    best[k] = members[k]
        pick = best[0]
        for k in range(1, best_size):
            other = best[k]
            a, b = rows[other].accuracy, rows[pick].accuracy
            if a < b or (a == b and -rows[other].score < -rows[pick].score):
                pick = other
        return pick
    finally:
        free(rows)
        free(order)
