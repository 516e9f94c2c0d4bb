# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The VALUES text of a MySQL upsert of station rows, in one C loop.

``mysql_values(rows)`` turns rows (sequences of column values) into
``(v,v,...),(v,v,...)``, the way ``ichnaea.repositories.upsert`` formats
them value by value in Python: ``NULL`` for None and non-finite floats,
``repr`` for floats, decimal ints, ``X'hex'`` for bytes, quoted
``YYYY-MM-DD[ HH:MM:SS]`` for dates and datetimes (no time zone, no
fraction: the columns hold seconds), and quoted text for short codes of
``[A-Za-z0-9 _.-]`` (region codes). Any other value (bool, a NumPy scalar,
other text) raises TypeError and the caller takes the Python path, which is
the specification; tests/_fast/test_sqltext.py holds the two equal.

Station batches format about two dozen values per row and 500 rows per
statement; the Python path spends a function call and a dictionary lookup
on each value, a tenth of a station batch's CPU.
"""

from cpython.datetime cimport (
    PyDateTime_CheckExact,
    PyDateTime_DATE_GET_HOUR,
    PyDateTime_DATE_GET_MINUTE,
    PyDateTime_DATE_GET_SECOND,
    PyDateTime_GET_DAY,
    PyDateTime_GET_MONTH,
    PyDateTime_GET_YEAR,
    PyDate_CheckExact,
    import_datetime,
)
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.long cimport PyLong_CheckExact
from libc.math cimport isfinite
from libc.stdio cimport snprintf

import_datetime()

# Text longer than this is never a region code.
cdef Py_ssize_t MAX_TEXT = 64


cdef bint _safe_text(str text):
    cdef Py_UCS4 c
    if len(text) > MAX_TEXT:
        return False
    for c in text:
        if not (
            (c >= 48 and c <= 57)  # 0-9
            or (c >= 65 and c <= 90)  # A-Z
            or (c >= 97 and c <= 122)  # a-z
            or c == 32 or c == 95 or c == 46 or c == 45  # space _ . -
        ):
            return False
    return True


cdef str _literal(object value):
    cdef char buf[32]
    cdef int n
    if value is None:
        return "NULL"
    if PyFloat_CheckExact(value):
        return repr(value) if isfinite(PyFloat_AS_DOUBLE(value)) else "NULL"
    if PyLong_CheckExact(value):
        return str(value)
    if type(value) is bytes:
        return "X'" + (<bytes>value).hex() + "'"
    if PyDateTime_CheckExact(value):
        if value.tzinfo is not None:
            raise TypeError("aware datetime")
        n = snprintf(
            buf, sizeof(buf), "'%04d-%02d-%02d %02d:%02d:%02d'",
            PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value), PyDateTime_GET_DAY(value),
            PyDateTime_DATE_GET_HOUR(value), PyDateTime_DATE_GET_MINUTE(value),
            PyDateTime_DATE_GET_SECOND(value),
        )
        return buf[:n].decode("ascii")
    if PyDate_CheckExact(value):
        n = snprintf(
            buf, sizeof(buf), "'%04d-%02d-%02d'",
            PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value), PyDateTime_GET_DAY(value),
        )
        return buf[:n].decode("ascii")
    if type(value) is str and _safe_text(<str>value):
        return "'" + <str>value + "'"
    raise TypeError(f"no fast literal for {type(value).__name__} value {value!r}")


def mysql_values(rows):
    """``(v,...),(v,...)`` of ``rows``; TypeError for a value outside the plain types."""
    cdef list out = []
    cdef list parts
    cdef object row, value
    for row in rows:
        parts = [_literal(value) for value in row]
        out.append("(" + ",".join(parts) + ")")
    return ",".join(out)
