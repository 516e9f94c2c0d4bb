# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Python objects to columns, for the station planner: the loops over a batch's
observations and rows that NumPy cannot take in one call.

The station stage holds its batch as decoded JSON objects (one dict per
observation) and the stored rows as sequences; the planner works on arrays.
Each function here is the loop it replaces, written once in C; each is
specified by the Python expression in its docstring, which the tests hold
it equal to (``tests/_fast/test_rows.py``). On a batch of 300 Wi-Fi
observations (line_profiler on ``benchmarks/bench_station_batch.py``'s
batches) they took the planner's conversions from about 0.9 ms to about
0.15 ms.

* ``float_fields(objects, names)``: ``np.array([[o.get(n) for o in objects]
  for n in names], dtype=float64)``: None and a missing field are NaN; a
  value other than a float or an int is converted by ``float()`` (as NumPy
  does), so what NumPy would refuse raises here too.
* ``object_table(rows, width)``: a ``(len(rows) + 1, width)`` object array
  holding the rows, and a last row of None (the row of a station without
  one); ValueError if a row has another width.
* ``positions(index, keys)``: ``[index.get(k, -1) for k in keys]`` as intp.
* ``first_seen(keys, indices)``: the group id of ``keys[i]`` for each ``i``
  of ``indices``, numbering the distinct keys in the order they are first
  seen, and those keys.
* ``day_numbers(values)``: ``[nan if v is None else v.toordinal() for v in
  values]`` as float64, for dates and datetimes (their date's day).
* ``ints_to_floats(rows, columns)``: in each row (a list), an int at one
  of ``columns`` becomes ``float(value)``, in place.
* ``dates_from_text(rows, date_columns, datetime_columns)``: in each row (a
  list), a value at one of ``date_columns`` becomes
  ``session.date_or_none(value)`` and one at ``datetime_columns``
  ``session.datetime_or_none(value)`` (``fromisoformat``, None for what it
  refuses, such as MariaDB's zero date), in place; None stays None.
* ``mac_bytes(text)``: ``bytes.fromhex(text)`` of exactly 12 hex digits
  (``ichnaea.codecs.encode_mac``), ValueError for anything else.
"""

from datetime import date, datetime

import numpy as np

cimport numpy as cnp
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.long cimport PyLong_AsDouble, PyLong_CheckExact
from cpython.object cimport PyObject
from cpython.datetime cimport (
    PyDate_Check,
    PyDateTime_GET_DAY,
    PyDateTime_GET_MONTH,
    PyDateTime_GET_YEAR,
    import_datetime,
)
from cpython.unicode cimport PyUnicode_READ_CHAR
from libc.math cimport NAN

from ichnaea._fast._typedefs cimport hex_value

cnp.import_array()
import_datetime()

MAC_HEX_LENGTH = 12


cdef inline double _as_double(object value) except? -1.0:
    if value is None:
        return NAN
    if PyFloat_CheckExact(value):
        return PyFloat_AS_DOUBLE(value)
    if PyLong_CheckExact(value):
        return PyLong_AsDouble(value)
    return float(value)


def float_fields(list objects, tuple names):
    """One float64 row per name over ``objects`` (dicts); NaN for None or missing."""
    cdef Py_ssize_t n = len(objects), m = len(names), i, j
    cdef cnp.ndarray[cnp.float64_t, ndim=2] out = np.empty((m, n), dtype=np.float64)
    cdef double[:, ::1] values = out
    cdef PyObject* found
    cdef object item, name
    for i in range(n):
        item = objects[i]
        if type(item) is not dict:
            raise TypeError(f"observation {i} is {type(item).__name__}, not a dict")
        for j in range(m):
            name = names[j]
            found = PyDict_GetItem(item, name)
            values[j, i] = NAN if found == NULL else _as_double(<object>found)
    return out


def object_table(list rows, Py_ssize_t width):
    """The rows in an object array, and a last row of None."""
    cdef Py_ssize_t n = len(rows), i, j
    table = np.empty((n + 1, width), dtype=object)
    cdef object[:, ::1] cells = table
    cdef object row
    for i in range(n):
        row = rows[i]
        if len(row) != width:
            raise ValueError(f"row {i} has {len(row)} values, not {width}")
        for j in range(width):
            cells[i, j] = row[j]
    return table


def positions(dict index, list keys):
    """``index[key]`` for each key, -1 where absent, as an intp array."""
    cdef Py_ssize_t n = len(keys), i
    cdef cnp.ndarray[cnp.intp_t, ndim=1] out = np.empty(n, dtype=np.intp)
    cdef PyObject* found
    for i in range(n):
        found = PyDict_GetItem(index, keys[i])
        out[i] = -1 if found == NULL else <object>found
    return out


def first_seen(keys, cnp.intp_t[::1] indices):
    """The group of ``keys[i]`` for each ``i`` in ``indices`` (0, 1, ... in order of
    first appearance), and the distinct keys in that order."""
    cdef Py_ssize_t n = indices.shape[0], i
    cdef cnp.ndarray[cnp.intp_t, ndim=1] out = np.empty(n, dtype=np.intp)
    cdef dict ids = {}
    cdef list distinct = []
    cdef PyObject* found
    cdef object key
    for i in range(n):
        key = keys[indices[i]]
        found = PyDict_GetItem(ids, key)
        if found == NULL:
            out[i] = len(distinct)
            PyDict_SetItem(ids, key, len(distinct))
            distinct.append(key)
        else:
            out[i] = <object>found
    return out, distinct


def mac_bytes(text):
    """The 6 bytes of a MAC given as exactly 12 hex digits (any case)."""
    cdef unsigned char raw[6]
    cdef int k, high, low
    if type(text) is not str or len(<str>text) != MAC_HEX_LENGTH:
        raise ValueError(f"MAC must be {MAC_HEX_LENGTH} hex characters, got {text!r}")
    for k in range(6):
        high = hex_value(<unsigned int>PyUnicode_READ_CHAR(text, 2 * k))
        low = hex_value(<unsigned int>PyUnicode_READ_CHAR(text, 2 * k + 1))
        if high < 0 or low < 0:
            raise ValueError(f"MAC must be {MAC_HEX_LENGTH} hex characters, got {text!r}")
        raw[k] = <unsigned char>(high * 16 + low)
    return <bytes>raw[:6]


# Days before the first of each month in a common year (index 1-12).
cdef int[13] _DAYS_BEFORE_MONTH = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]


cdef inline long _ordinal(int year, int month, int day) noexcept:
    cdef long y = year - 1
    cdef long days = y * 365 + y // 4 - y // 100 + y // 400 + _DAYS_BEFORE_MONTH[month] + day
    if month > 2 and (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        days += 1
    return days


def day_numbers(list values):
    """``date.toordinal()`` of each date or datetime as float64; NaN for None."""
    cdef Py_ssize_t n = len(values), i
    cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
    cdef object value
    for i in range(n):
        value = values[i]
        if value is None:
            out[i] = NAN
        elif PyDate_Check(value):
            out[i] = _ordinal(
                PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value), PyDateTime_GET_DAY(value)
            )
        else:
            raise TypeError(f"value {i} is {type(value).__name__}, not a date")
    return out


def ints_to_floats(list rows, tuple columns):
    """Make the ints at ``columns`` of each row (a list) floats, in place."""
    cdef Py_ssize_t i, k, j, n = len(rows), m = len(columns)
    cdef list row
    cdef object value
    for i in range(n):
        row = rows[i]
        for k in range(m):
            j = columns[k]
            value = row[j]
            if PyLong_CheckExact(value):
                row[j] = float(value)


cdef object _date_from_text = date.fromisoformat
cdef object _datetime_from_text = datetime.fromisoformat


cdef inline void _parse_column(list row, Py_ssize_t j, object parse) except *:
    cdef object value = row[j]
    if value is None:
        return
    try:
        row[j] = parse(value)
    except ValueError:
        row[j] = None


def dates_from_text(list rows, tuple date_columns, tuple datetime_columns):
    """Parse the date and date-time texts at the columns of each row (a list), in place."""
    cdef Py_ssize_t i, k, n = len(rows)
    cdef list row
    for i in range(n):
        row = rows[i]
        for k in range(len(date_columns)):
            _parse_column(row, date_columns[k], _date_from_text)
        for k in range(len(datetime_columns)):
            _parse_column(row, datetime_columns[k], _datetime_from_text)
