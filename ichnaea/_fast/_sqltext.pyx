# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The VALUES text of a MySQL upsert of station rows, in one C loop.

``mysql_values(rows)`` turns rows (sequences of column values) into
``(v,v,...),(v,v,...)``, the way ``ichnaea.repositories.upsert`` formats
them value by value in Python: ``NULL`` for None and non-finite floats,
the shortest text that reads back as the same double for floats, as
orjson writes it (``1e-7``), decimal ints, ``X'hex'`` for bytes, quoted
``YYYY-MM-DD[ HH:MM:SS]`` for dates and datetimes (no time zone, no
fraction: the columns hold seconds), and quoted text for short codes of
``[A-Za-z0-9 _.-]`` (region codes). Any other value (bool, a NumPy scalar,
other text) raises TypeError and the caller takes the Python path, which is
the specification; tests/_fast/test_sqltext.py holds the two equal.

Station batches format about two dozen values per row and 500 rows per
statement; the Python path spends a function call and a dictionary lookup
on each value, a tenth of a station batch's CPU. Here every literal is
written straight into one growing C buffer, and the text becomes a ``str``
once, at the end. The floats (a third of the values, most of the cost)
are formatted first, all in one ``orjson.dumps`` of a list (Ryu's
shortest round trip, about 25 ns each against 250 for CPython's ``repr``
routine), and their text is copied in as the rows are written.
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
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport isfinite
from libc.string cimport memcpy


cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object value, int* overflow) except? -1
    bytes PyBytes_FromStringAndSize(const char* data, Py_ssize_t size)
    str PyUnicode_DecodeASCII(const char* data, Py_ssize_t size, const char* errors)
    char* PyBytes_AS_STRING(object value)
    Py_ssize_t PyBytes_GET_SIZE(object value)


import orjson

import_datetime()

# Text longer than this is never a region code.
cdef Py_ssize_t MAX_TEXT = 64
cdef const char* HEX = b"0123456789abcdef"


cdef struct Buffer:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int _reserve(Buffer* out, Py_ssize_t extra) except -1:
    cdef Py_ssize_t capacity = out.capacity
    cdef char* data
    if out.size + extra <= capacity:
        return 0
    while capacity < out.size + extra:
        capacity *= 2
    data = <char*>PyMem_Realloc(out.data, capacity)
    if data == NULL:
        raise MemoryError()
    out.data = data
    out.capacity = capacity
    return 0


cdef int _put(Buffer* out, const char* text, Py_ssize_t n) except -1:
    _reserve(out, n)
    memcpy(out.data + out.size, text, n)
    out.size += n
    return 0


cdef inline void _digits(char* at, long value, int width) noexcept nogil:
    # ``width`` decimal digits of a non-negative value, zero-padded.
    cdef int i
    for i in range(width - 1, -1, -1):
        at[i] = <char>(48 + value % 10)
        value //= 10


cdef int _put_int(Buffer* out, long long value) except -1:
    cdef char digits[24]
    cdef int n = 0
    cdef bint negative = value < 0
    cdef unsigned long long magnitude = (
        <unsigned long long>(-(value + 1)) + 1 if negative else <unsigned long long>value
    )
    while True:
        digits[23 - n] = <char>(48 + magnitude % 10)
        n += 1
        magnitude //= 10
        if magnitude == 0:
            break
    if negative:
        digits[23 - n] = 45  # -
        n += 1
    return _put(out, &digits[24 - n], n)


cdef int _put_date(Buffer* out, object value, bint with_time) except -1:
    # '%04d-%02d-%02d' or '%04d-%02d-%02d %02d:%02d:%02d', quoted.
    cdef char* at
    cdef Py_ssize_t n = 21 if with_time else 12
    _reserve(out, n)
    at = out.data + out.size
    at[0] = 39  # '
    _digits(at + 1, PyDateTime_GET_YEAR(value), 4)
    at[5] = 45
    _digits(at + 6, PyDateTime_GET_MONTH(value), 2)
    at[8] = 45
    _digits(at + 9, PyDateTime_GET_DAY(value), 2)
    if with_time:
        at[11] = 32
        _digits(at + 12, PyDateTime_DATE_GET_HOUR(value), 2)
        at[14] = 58
        _digits(at + 15, PyDateTime_DATE_GET_MINUTE(value), 2)
        at[17] = 58
        _digits(at + 18, PyDateTime_DATE_GET_SECOND(value), 2)
    at[n - 1] = 39
    out.size += n
    return 0


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


cdef struct Floats:
    # The text of the batch's finite floats, "[f,f,...]", and the next one's start.
    const char* text
    Py_ssize_t at


cdef int _put_float(Buffer* out, Floats* floats) except -1:
    cdef Py_ssize_t start = floats.at
    cdef Py_ssize_t end = start
    while floats.text[end] != 44 and floats.text[end] != 93:  # , ]
        end += 1
    floats.at = end + 1
    return _put(out, floats.text + start, end - start)


cdef int _put_literal(Buffer* out, object value, Floats* floats) except -1:
    cdef char* text
    cdef const char* raw
    cdef Py_ssize_t i, n
    cdef int overflow = 0
    cdef long long number
    cdef double x
    if value is None:
        return _put(out, b"NULL", 4)
    if PyFloat_CheckExact(value):
        x = PyFloat_AS_DOUBLE(value)
        if not isfinite(x):
            return _put(out, b"NULL", 4)
        return _put_float(out, floats)
    if PyLong_CheckExact(value):
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow == 0:
            return _put_int(out, number)
        raw_text = str(value).encode("ascii")
        return _put(out, PyBytes_AS_STRING(raw_text), PyBytes_GET_SIZE(raw_text))
    if type(value) is bytes:
        raw = PyBytes_AS_STRING(value)
        n = PyBytes_GET_SIZE(value)
        _reserve(out, 2 * n + 3)
        text = out.data + out.size
        text[0] = 88  # X
        text[1] = 39
        for i in range(n):
            text[2 + 2 * i] = HEX[(<unsigned char>raw[i]) >> 4]
            text[3 + 2 * i] = HEX[(<unsigned char>raw[i]) & 15]
        text[2 + 2 * n] = 39
        out.size += 2 * n + 3
        return 0
    if PyDateTime_CheckExact(value):
        if value.tzinfo is not None:
            raise TypeError("aware datetime")
        return _put_date(out, value, True)
    if PyDate_CheckExact(value):
        return _put_date(out, value, False)
    if type(value) is str and _safe_text(<str>value):
        raw_text = (<str>value).encode("ascii")
        _put(out, b"'", 1)
        _put(out, PyBytes_AS_STRING(raw_text), PyBytes_GET_SIZE(raw_text))
        return _put(out, b"'", 1)
    raise TypeError(f"no fast literal for {type(value).__name__} value {value!r}")


def mysql_values(rows):
    """``(v,...),(v,...)`` of ``rows``; TypeError for a value outside the plain types."""
    cdef Buffer out
    cdef Floats floats
    cdef object row, value
    cdef list finite = []
    cdef bytes float_text
    cdef bint first_row = True, first
    for row in rows:
        for value in row:
            if PyFloat_CheckExact(value) and isfinite(PyFloat_AS_DOUBLE(value)):
                finite.append(value)
    float_text = orjson.dumps(finite)
    floats.text = PyBytes_AS_STRING(float_text)
    floats.at = 1  # after "["
    out.size = 0
    out.capacity = 4096
    out.data = <char*>PyMem_Malloc(out.capacity)
    if out.data == NULL:
        raise MemoryError()
    try:
        for row in rows:
            if not first_row:
                _put(&out, b",", 1)
            first_row = False
            _put(&out, b"(", 1)
            first = True
            for value in row:
                if not first:
                    _put(&out, b",", 1)
                first = False
                _put_literal(&out, value, &floats)
            _put(&out, b")", 1)
        return PyUnicode_DecodeASCII(out.data, out.size, NULL)
    finally:
        PyMem_Free(out.data)
