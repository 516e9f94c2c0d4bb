# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The internal exporter's transform of one report, for the entries real clients send.

``ichnaea.pipeline.ingest.observations`` turns every queued report into
observations in three steps per entry: flatten (coerce each field), validate
(ranges, MAC normalisation, the channel/frequency pair, the cell rules) and
de-duplicate within the report. Written as Python, the whole transform
took 3.4-4.7 µs per observation of the internal stage's 5-7 outside Redis;
with these kernels it takes 1.8-2.8 (``benchmarks/bench_internal_batch.py
--python-path``). They run for plain input and hand everything else back
to the Python path, which is the specification
(``tests/_fast/test_reports.py`` holds the two equal):

* ``position_fields(position, table)``: the report's position floats, as
  ``flatten_report`` copies them; None unless every field the table names is
  null, a float or an int that a float can hold.
* ``flat_entries(value, table, radios, gps_age, check_ssid)``:
  ``observations._entries`` of one entry list; None unless every entry is a
  dict whose fields in ``table`` are null, ints, strings (``_str``) or radio
  names as ``radios`` spells them, and (``check_ssid``, for Wi-Fi) none has
  an SSID that could opt out (a string with ``_``: ``ichnaea.privacy``).
* ``add_observations(kind, entries, fields, observations, counts, names,
  queues, valid_mccs)``: ``observations._add_observations`` of one report's
  flat entries of one kind: validate, de-duplicate (a later entry replaces
  the kept one unless the kept one is strictly better in a field both
  have), append ``{**fields, **observation}`` to its shard queue's list and
  count. None, before any change, if an entry holds a value that is not
  what the flatten step makes (an int field that is not an int).

The ranges are compiled in; ``transform_limits()`` gives them back for the
test that holds them to ``ichnaea.pipeline.ingest.validation``.

Two more kernels serve the submit API: ``submitted_macs`` and
``submitted_cells`` are what ``ichnaea.reports.formats`` makes of a
submitted report's Wi-Fi or Bluetooth entry list and of its cell list, for
plain entries (the same hand-back rule).
"""

from cpython.dict cimport PyDict_Copy, PyDict_GetItem, PyDict_Next, PyDict_SetItem
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.list cimport PyList_Append
from cpython.long cimport PyLong_AsDouble, PyLong_AsLongLongAndOverflow
from cpython.ref cimport PyObject
from cpython.set cimport PySet_Contains
from libc.math cimport isfinite
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t
from libc.stdlib cimport free, malloc

from ichnaea._fast._typedefs cimport hex_value

# Field coercions of the flatten step (observations._FIELD_CODES).
cdef enum:
    CODE_STR = 0
    CODE_INT = 1
    CODE_RADIO = 2

# Entry kinds of add_observations: _station.pyx's KIND_BLUE, KIND_WIFI, KIND_CELL.
cdef enum:
    KIND_BLUE = 0
    KIND_WIFI = 1
    KIND_CELL = 2

# Slots of a validated entry.
cdef enum:
    S_AGE = 0
    S_CHANNEL = 1
    S_FREQUENCY = 2
    S_SIGNAL = 3
    S_SNR = 4
    S_RADIO = 5
    S_MCC = 6
    S_MNC = 7
    S_LAC = 8
    S_CID = 9
    S_PSC = 10
    S_ASU = 11
    S_TA = 12
    N_SLOTS = 13

# The ranges of ichnaea.pipeline.ingest.validation.
cdef int64_t MAX_AGE_MS = 3600000
cdef int64_t MIN_BLUE_SIGNAL = -127
cdef int64_t MAX_BLUE_SIGNAL = 0
cdef int64_t MIN_WIFI_SIGNAL = -100
cdef int64_t MAX_WIFI_SIGNAL = -10
cdef int64_t MIN_WIFI_SNR = 1
cdef int64_t MAX_WIFI_SNR = 100
cdef int64_t MIN_WIFI_CHANNEL = 1
cdef int64_t MAX_WIFI_CHANNEL = 199
cdef int64_t MIN_WIFI_FREQUENCY = 2400
cdef int64_t MAX_WIFI_FREQUENCY = 5999
cdef int64_t MAX_MNC = 999
cdef int64_t MAX_GSM_CID = 65535
cdef int64_t NO_LIMIT = -1

cdef struct _CellLimits:
    int64_t radio, max_lac, max_cid, max_psc, min_asu, max_asu, min_signal, max_signal
    int64_t max_ta  # NO_LIMIT: always null
    int64_t asu_scale  # 0: no signal from asu
    int64_t asu_offset

# gsm, wcdma, lte, nr (validation.CELL_LIMITS).
cdef _CellLimits CELL_LIMITS[4]
CELL_LIMITS[0] = _CellLimits(0, 65533, 268435455, 511, 0, 31, -113, -51, 63, 2, -113)
CELL_LIMITS[1] = _CellLimits(2, 65533, 268435455, 511, -5, 91, -121, -25, NO_LIMIT, 1, -116)
CELL_LIMITS[2] = _CellLimits(3, 65533, 268435455, 503, 0, 97, -140, -43, 63, 1, -140)
CELL_LIMITS[3] = _CellLimits(4, 16777215, 68719476735, 1007, 0, 127, -156, -31, 3846, 0, 0)
cdef tuple CELL_RADIO_NAMES = ("gsm", "wcdma", "lte", "nr")

cdef str _INVALID_MAC_1 = "000000000000"
cdef str _INVALID_MAC_2 = "ffffffffffff"
cdef str _INVALID_MAC_3 = "01005e901000"


def transform_limits():
    """The ranges compiled in, for the test that holds them to the Python constants."""
    cdef int i
    cdef _CellLimits lim
    cells = {}
    for i in range(4):
        lim = CELL_LIMITS[i]
        cells[CELL_RADIO_NAMES[i]] = (
            lim.radio, lim.max_lac, lim.max_cid, lim.max_psc, lim.min_asu, lim.max_asu,
            lim.min_signal, lim.max_signal, None if lim.max_ta == NO_LIMIT else lim.max_ta,
            None if lim.asu_scale == 0 else lim.asu_scale, lim.asu_offset,
        )
    return {
        "age": MAX_AGE_MS,
        "blue_signal": (MIN_BLUE_SIGNAL, MAX_BLUE_SIGNAL),
        "wifi_signal": (MIN_WIFI_SIGNAL, MAX_WIFI_SIGNAL),
        "wifi_snr": (MIN_WIFI_SNR, MAX_WIFI_SNR),
        "wifi_channel": (MIN_WIFI_CHANNEL, MAX_WIFI_CHANNEL),
        "wifi_frequency": (MIN_WIFI_FREQUENCY, MAX_WIFI_FREQUENCY),
        "mnc": MAX_MNC,
        "gsm_cid": MAX_GSM_CID,
        "cells": cells,
        "invalid_macs": frozenset((_INVALID_MAC_1, _INVALID_MAC_2, _INVALID_MAC_3)),
    }


# -- flatten ------------------------------------------------------------------


def position_fields(object position, dict table):
    """The usable position floats of a report, or None for the Python path."""
    cdef dict out = {}
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* raw
    cdef PyObject* name
    cdef double number
    if type(position) is not dict:
        return None
    while PyDict_Next(position, &pos, &key, &raw):
        name = PyDict_GetItem(table, <object>key)
        if name is NULL or <object>raw is None:
            continue
        if type(<object>raw) is float:
            number = PyFloat_AS_DOUBLE(<object>raw)
        elif type(<object>raw) is int:
            try:
                number = PyLong_AsDouble(<object>raw)
            except OverflowError:
                return None
        else:
            return None
        if isfinite(number):
            PyDict_SetItem(out, <object>name, number)
    return out


cdef list _entry_dicts(object value):
    """A report's list field as the kernels read it: its dict entries in order, the
    entries that are no mapping skipped (as the Python path skips them). None (hand
    back) for a list or dict subclass, which the Python path reads; [] for a field
    that is not a list."""
    cdef list out = []
    cdef object obj
    if type(value) is not list:
        return None if isinstance(value, list) else []
    for obj in <list>value:
        if type(obj) is dict:
            out.append(obj)
        elif isinstance(obj, dict):
            return None
    return out


cdef inline bint _may_opt_out(dict item):
    cdef PyObject* ssid = PyDict_GetItem(item, "ssid")
    return ssid is not NULL and isinstance(<object>ssid, str) and "_" in <str>ssid


def flat_entries(object value, dict table, dict radios, object gps_age, bint check_ssid):
    """The flat entries of one list (``_entries``), or None for the Python path."""
    cdef list out = []
    cdef dict item, entry
    cdef Py_ssize_t pos
    cdef PyObject* key
    cdef PyObject* raw
    cdef PyObject* field
    cdef PyObject* radio
    cdef int code
    cdef object obj
    cdef list entries = _entry_dicts(value)
    if entries is None:
        return None
    for obj in entries:
        item = <dict>obj
        if check_ssid and _may_opt_out(item):
            return None
        entry = {}
        pos = 0
        while PyDict_Next(item, &pos, &key, &raw):
            if <object>raw is None:
                continue
            field = PyDict_GetItem(table, <object>key)
            if field is NULL:
                continue
            code = (<tuple>field)[1]
            if code == CODE_INT:
                if type(<object>raw) is not int:
                    return None
                PyDict_SetItem(entry, (<tuple>field)[0], <object>raw)
            elif code == CODE_STR:
                if type(<object>raw) is not str:
                    return None
                if len(<str>raw):
                    PyDict_SetItem(entry, (<tuple>field)[0], <object>raw)
            else:
                if type(<object>raw) is not str:
                    return None
                radio = PyDict_GetItem(radios, <object>raw)
                if radio is NULL:
                    return None
                PyDict_SetItem(entry, (<tuple>field)[0], <object>radio)
        if entry:
            if gps_age:
                entry["age"] = entry.get("age", 0) - gps_age
            out.append(entry)
    return out


# -- validate, de-duplicate, queue ----------------------------------------------


cdef struct _Entry:
    bint has[N_SLOTS]
    int64_t value[N_SLOTS]


cdef enum:
    MISSING = 0
    PRESENT = 1
    NOT_PLAIN = 2


cdef int _read(dict entry, str name, int64_t* out) except -1:
    """PRESENT and the value (clamped to 64 bits: every range lies well inside them),
    MISSING for null or absent, NOT_PLAIN for anything but an int."""
    cdef PyObject* found = PyDict_GetItem(entry, name)
    cdef int overflow = 0
    cdef long long value
    if found is NULL or <object>found is None:
        return MISSING
    if type(<object>found) is not int:
        return NOT_PLAIN
    value = PyLong_AsLongLongAndOverflow(<object>found, &overflow)
    if overflow > 0:
        out[0] = INT64_MAX
    elif overflow < 0:
        out[0] = INT64_MIN
    else:
        out[0] = value
    return PRESENT


cdef int _ranged(dict entry, str name, int64_t lo, int64_t hi, _Entry* e, int slot) except -1:
    """Read ``name`` into ``slot`` if it lies in [lo, hi]; NOT_PLAIN as ``_read``."""
    cdef int64_t value = 0
    cdef int state = _read(entry, name, &value)
    if state == PRESENT and lo <= value <= hi:
        e.has[slot] = True
        e.value[slot] = value
    return state


cdef const char* HEX_LOWER = "0123456789abcdef"


cdef object _mac(object value):
    """``validation.normalize_mac`` of a str, or None; False for anything but a str."""
    cdef str text
    cdef bytes ascii
    cdef const unsigned char* chars
    cdef char digits[12]
    cdef Py_ssize_t n, i, count = 0
    cdef int digit
    cdef bint same = True
    if type(value) is not str:
        return False  # not what the flatten step makes
    text = <str>value
    if not text.isascii():
        return None  # no non-ASCII character lowers to a hex digit or a separator
    ascii = text.encode("ascii")
    chars = ascii
    n = len(ascii)
    if n == 12:
        # Twelve characters keep their separators (which then fail the hex test).
        for i in range(12):
            digit = hex_value(chars[i])
            if digit < 0:
                return None
            digits[i] = HEX_LOWER[digit]
            same = same and digits[i] == chars[i]
    else:
        same = False
        for i in range(n):
            if chars[i] == 58 or chars[i] == 45 or chars[i] == 46:  # ':', '-', '.'
                continue
            digit = hex_value(chars[i])
            if digit < 0 or count == 12:
                return None
            digits[count] = HEX_LOWER[digit]
            count += 1
        if count != 12:
            return None
    mac = text if same else digits[:12].decode("ascii")
    if mac == _INVALID_MAC_1 or mac == _INVALID_MAC_2 or mac == _INVALID_MAC_3:
        return None
    return mac


cdef inline int64_t _wifi_frequency(int64_t channel) noexcept:
    if 1 <= channel <= 13:
        return 2407 + 5 * channel
    if channel == 14:
        return 2484
    if 15 <= channel <= 185:
        return 5000 + 5 * channel
    if 186 <= channel <= 199:
        return 4000 + 5 * channel
    return -1


cdef inline int64_t _wifi_channel(int64_t frequency) noexcept:
    if 2412 <= frequency <= 2472:
        return (frequency - 2407) // 5
    if frequency == 2484:
        return 14
    if 4915 <= frequency <= 4995:
        return (frequency - 4000) // 5
    if 5075 <= frequency <= 5925:
        return (frequency - 5000) // 5
    return -1


cdef object _validate_mac(int kind, dict entry, _Entry* e):
    """``validate_blue``/``validate_wifi``: the MAC if valid, None if not, False for the
    Python path; the other fields into ``e``."""
    cdef PyObject* found = PyDict_GetItem(entry, "mac")
    cdef int64_t channel = 0, frequency = 0
    cdef int state
    cdef object normal
    if found is NULL:
        return None
    normal = _mac(<object>found)
    if normal is False or normal is None:
        return normal
    if _ranged(entry, "age", -MAX_AGE_MS, MAX_AGE_MS, e, S_AGE) == NOT_PLAIN:
        return False
    if kind == KIND_BLUE:
        if _ranged(entry, "signal", MIN_BLUE_SIGNAL, MAX_BLUE_SIGNAL, e, S_SIGNAL) == NOT_PLAIN:
            return False
        return normal
    if _ranged(entry, "channel", MIN_WIFI_CHANNEL, MAX_WIFI_CHANNEL, e, S_CHANNEL) == NOT_PLAIN:
        return False
    state = _ranged(entry, "frequency", MIN_WIFI_FREQUENCY, MAX_WIFI_FREQUENCY, e, S_FREQUENCY)
    if state == NOT_PLAIN:
        return False
    if not e.has[S_CHANNEL]:
        if e.has[S_FREQUENCY]:
            channel = _wifi_channel(e.value[S_FREQUENCY])
            if channel >= 0:
                e.has[S_CHANNEL] = True
                e.value[S_CHANNEL] = channel
    elif not e.has[S_FREQUENCY]:
        frequency = _wifi_frequency(e.value[S_CHANNEL])
        if frequency >= 0:
            e.has[S_FREQUENCY] = True
            e.value[S_FREQUENCY] = frequency
    if _ranged(entry, "signal", MIN_WIFI_SIGNAL, MAX_WIFI_SIGNAL, e, S_SIGNAL) == NOT_PLAIN:
        return False
    if _ranged(entry, "snr", MIN_WIFI_SNR, MAX_WIFI_SNR, e, S_SNR) == NOT_PLAIN:
        return False
    return normal


cdef int _validate_cell(dict entry, object valid_mccs, _Entry* e) except -1:
    """``validate_cell``: PRESENT if valid, MISSING if not, or NOT_PLAIN."""
    cdef int64_t asu = 0, signal = 0, cid = 0, mnc = 0, lac = 0
    cdef int has_asu = _read(entry, "asu", &asu)
    cdef int has_signal = _read(entry, "signal", &signal)
    cdef int has_cid = _read(entry, "cid", &cid)
    cdef int has_mnc = _read(entry, "mnc", &mnc)
    cdef int has_lac = _read(entry, "lac", &lac)
    cdef int i, j
    cdef str name
    cdef PyObject* found
    cdef PyObject* mcc = PyDict_GetItem(entry, "mcc")
    cdef _CellLimits lim
    cdef object radio
    if (has_asu == NOT_PLAIN or has_signal == NOT_PLAIN or has_cid == NOT_PLAIN
            or has_mnc == NOT_PLAIN or has_lac == NOT_PLAIN):
        return NOT_PLAIN
    if mcc is not NULL and <object>mcc is not None and type(<object>mcc) is not int:
        return NOT_PLAIN
    for name in ("psc", "age", "ta"):
        found = PyDict_GetItem(entry, name)
        if found is not NULL and <object>found is not None and type(<object>found) is not int:
            return NOT_PLAIN
    found = PyDict_GetItem(entry, "radio")
    radio = None if found is NULL else <object>found
    if radio is not None and type(radio) is not str:
        return NOT_PLAIN
    # 1. Some clients put the dBm value into asu.
    if has_asu and asu < -5 and (not has_signal or signal >= 0):
        signal = asu
        has_signal = PRESENT
        has_asu = MISSING
    # 2 and 3. Radio; a gsm cell id above 16 bits is a wcdma one.
    if radio == "gsm" and has_cid and cid > MAX_GSM_CID:
        radio = "wcdma"
    i = -1
    for j in range(4):
        if radio == CELL_RADIO_NAMES[j]:
            i = j
            break
    if i < 0:
        return MISSING
    lim = CELL_LIMITS[i]
    # 4. Network.
    if mcc is NULL or not PySet_Contains(valid_mccs, <object>mcc):
        return MISSING
    if not has_mnc or not 0 <= mnc <= MAX_MNC:
        return MISSING
    # 5 and 9. Area and cell ids are required.
    if not has_lac or not 1 <= lac <= lim.max_lac:
        return MISSING
    if not has_cid or not 1 <= cid <= lim.max_cid:
        return MISSING
    e.has[S_RADIO] = e.has[S_MCC] = e.has[S_MNC] = e.has[S_LAC] = e.has[S_CID] = True
    e.value[S_RADIO] = lim.radio
    e.value[S_MCC] = <int64_t>(<object>mcc)
    e.value[S_MNC] = mnc
    e.value[S_LAC] = lac
    e.value[S_CID] = cid
    _ranged(entry, "psc", 0, lim.max_psc, e, S_PSC)
    # 6 and 7. Optional measurements.
    _ranged(entry, "age", -MAX_AGE_MS, MAX_AGE_MS, e, S_AGE)
    if has_asu and not lim.min_asu <= asu <= lim.max_asu:
        has_asu = MISSING
    if has_signal and not lim.min_signal <= signal <= lim.max_signal:
        has_signal = MISSING
    # 8. Signal from asu.
    if not has_signal and has_asu and lim.asu_scale != 0:
        signal = lim.asu_scale * asu + lim.asu_offset
        has_signal = PRESENT
    if has_asu:
        e.has[S_ASU] = True
        e.value[S_ASU] = asu
    if has_signal:
        e.has[S_SIGNAL] = True
        e.value[S_SIGNAL] = signal
    if lim.max_ta != NO_LIMIT:
        _ranged(entry, "ta", 0, lim.max_ta, e, S_TA)
    return PRESENT


# The "better" comparators of each kind, in the spec's order: slot, higher is better.
cdef int BETTER_SLOT[3][4]
cdef bint BETTER_HIGHER[3][4]
cdef int BETTER_COUNT[3]


cdef void _comparators(int kind, int count, int* slots, bint* higher) noexcept:
    cdef int k
    BETTER_COUNT[kind] = count
    for k in range(count):
        BETTER_SLOT[kind][k] = slots[k]
        BETTER_HIGHER[kind][k] = higher[k]


cdef int[2] _BLUE_SLOTS = [S_SIGNAL, S_AGE]
cdef bint[2] _BLUE_HIGHER = [True, False]
cdef int[4] _CELL_SLOTS = [S_TA, S_SIGNAL, S_ASU, S_AGE]
cdef bint[4] _CELL_HIGHER = [False, True, True, False]
cdef int[3] _WIFI_SLOTS = [S_SIGNAL, S_SNR, S_AGE]
cdef bint[3] _WIFI_HIGHER = [True, True, False]
_comparators(KIND_BLUE, 2, _BLUE_SLOTS, _BLUE_HIGHER)
_comparators(KIND_CELL, 4, _CELL_SLOTS, _CELL_HIGHER)
_comparators(KIND_WIFI, 3, _WIFI_SLOTS, _WIFI_HIGHER)


cdef bint _better(int kind, _Entry* kept, _Entry* new) noexcept:
    """Whether ``kept`` is strictly better than ``new`` in any comparator both have."""
    cdef int k, slot
    for k in range(BETTER_COUNT[kind]):
        slot = BETTER_SLOT[kind][k]
        if kept.has[slot] and new.has[slot]:
            if BETTER_HIGHER[kind][k]:
                if kept.value[slot] > new.value[slot]:
                    return True
            elif kept.value[slot] < new.value[slot]:
                return True
    return False


# Output fields of each kind, in the order of the Python validators.
cdef tuple MAC_NAMES = ("age", "channel", "frequency", "signal", "snr")
cdef tuple CELL_NAMES = ("radio", "mcc", "mnc", "lac", "cid", "psc", "age", "asu", "signal", "ta")
cdef int[5] MAC_SLOTS = [S_AGE, S_CHANNEL, S_FREQUENCY, S_SIGNAL, S_SNR]
cdef int[10] CELL_SLOTS = [S_RADIO, S_MCC, S_MNC, S_LAC, S_CID, S_PSC, S_AGE, S_ASU, S_SIGNAL, S_TA]


def add_observations(
    int kind,
    list entries,
    dict fields,
    dict observations,
    object counts,
    tuple names,
    dict queues,
    object valid_mccs,
):
    """Queue one report's valid, de-duplicated entries of one kind; their number, or None.

    ``kind``: ``KIND_BLUE``, ``KIND_WIFI`` or ``KIND_CELL`` (``_station.pyx``).
    ``names``: the counter names (``<kind>_upload``, ``<kind>_drop``).
    ``queues``: the queue of a MAC's 5th hex digit, or of a cell's radio number.
    """
    cdef Py_ssize_t n = len(entries), i, slot, kept_n = 0, dropped = 0, k
    cdef _Entry* parsed = <_Entry*>malloc((n if n else 1) * sizeof(_Entry))
    cdef _Entry* e
    cdef list keys = []  # per kept slot: its key (the MAC, or the cell tuple)
    cdef dict where = {}  # key -> kept slot
    cdef dict obs
    cdef object entry, mac = None, key, queue, name
    cdef PyObject* found
    cdef int state, s
    if parsed is NULL:
        raise MemoryError()
    try:
        # Validate all first: NOT_PLAIN hands the list back before any change.
        for i in range(n):
            e = &parsed[kept_n]
            for s in range(N_SLOTS):
                e.has[s] = False
            entry = entries[i]
            if type(entry) is not dict:
                return None
            if kind == KIND_CELL:
                state = _validate_cell(<dict>entry, valid_mccs, e)
            else:
                mac = _validate_mac(kind, <dict>entry, e)
                state = NOT_PLAIN if mac is False else MISSING if mac is None else PRESENT
            if state == NOT_PLAIN:
                return None
            if state == MISSING:
                dropped += 1
                continue
            if kind == KIND_CELL:
                key = (e.value[S_RADIO], e.value[S_MCC], e.value[S_MNC], e.value[S_LAC],
                       e.value[S_CID])
            else:
                key = mac
            found = PyDict_GetItem(where, key)
            if found is NULL:
                where[key] = kept_n
                keys.append(key)
                kept_n += 1
            else:
                slot = <Py_ssize_t><object>found
                if not _better(kind, &parsed[slot], e):
                    parsed[slot] = e[0]
        for slot in range(kept_n):
            e = &parsed[slot]
            key = keys[slot]
            obs = PyDict_Copy(fields)
            if kind == KIND_CELL:
                for k in range(10):
                    s = CELL_SLOTS[k]
                    if e.has[s]:
                        PyDict_SetItem(obs, CELL_NAMES[k], e.value[s])
                queue = (<tuple>key)[0]
            else:
                PyDict_SetItem(obs, "mac", key)
                for k in range(5):
                    s = MAC_SLOTS[k]
                    if e.has[s]:
                        PyDict_SetItem(obs, MAC_NAMES[k], e.value[s])
                queue = (<str>key)[4]
            name = queues[queue]
            found = PyDict_GetItem(observations, name)
            if found is NULL:
                observations[name] = [obs]
            else:
                PyList_Append(<object>found, obs)
        if kept_n:
            counts[names[0]] += kept_n
        if dropped:
            counts[names[1]] += dropped
        return kept_n
    finally:
        free(parsed)


# ---------------------------------------------------------------------------
# The submit API's Wi-Fi and Bluetooth entries (ichnaea.reports.formats)
# ---------------------------------------------------------------------------

cdef object _HAND_BACK = object()


cdef object _plain_int(dict item, object name, object sentinels):
    """``formats.to_int`` of a field that is absent, null or an int (None: no value);
    ``_HAND_BACK`` for anything else, which the Python function coerces."""
    cdef PyObject* found = PyDict_GetItem(item, name)
    cdef int overflow
    if found is NULL or <object>found is None:
        return None
    if type(<object>found) is not int:
        return _HAND_BACK
    PyLong_AsLongLongAndOverflow(<object>found, &overflow)
    if overflow != 0 or <object>found in sentinels:
        return None
    return <object>found


cdef int _copy_ints(dict item, tuple names, object sentinels, dict entry) except -1:
    """The int fields ``names`` of ``item`` into ``entry``, as ``formats._fields``
    with ``to_int`` keeps them: 1, or 0 (hand back) at a value to coerce."""
    cdef object name, number
    for name in names:
        number = _plain_int(item, name, sentinels)
        if number is _HAND_BACK:
            return 0
        if number is not None:
            entry[name] = number
    return 1


def submitted_macs(
    object value, tuple int_names, tuple str_names, object sentinels, bint check_ssid
):
    """``formats._wifi`` (``check_ssid``) or ``formats._blue`` of one submitted entry
    list, or None.

    The entries that are dicts, each with a non-empty string ``macAddress``
    (the rest are dropped), as ``{"macAddress": mac, <int_names present>,
    <str_names present>}``: an int field outside 64 bits or in ``sentinels``
    is left out, a string field that is not a non-empty string too. None, for
    the Python functions to answer, unless every field is absent, null, an
    int or a string (no float, boolean or numeric text to coerce), every
    entry a dict or not a mapping at all, and (``check_ssid``) no ``ssid``
    holds a ``_`` (it could opt out: ``ichnaea.privacy``). Not a list: [].
    """
    cdef list out = []
    cdef dict item, entry
    cdef PyObject* found
    cdef object field, name
    cdef list entries = _entry_dicts(value)
    if entries is None:
        return None
    for raw in entries:
        item = <dict>raw
        found = PyDict_GetItem(item, "macAddress")
        if found is NULL or <object>found is None:
            continue
        field = <object>found
        if type(field) is not str:
            if isinstance(field, str):
                return None
            continue
        if not field:
            continue
        if check_ssid:
            found = PyDict_GetItem(item, "ssid")
            if found is not NULL and isinstance(<object>found, str) and "_" in <str>found:
                return None
        entry = {"macAddress": field}
        if not _copy_ints(item, int_names, sentinels, entry):
            return None
        for name in str_names:
            found = PyDict_GetItem(item, name)
            if found is NULL or <object>found is None:
                continue
            if type(<object>found) is not str:
                if isinstance(<object>found, str):
                    return None
                continue
            if <str>found:
                entry[name] = <object>found
        out.append(entry)
    return out


def submitted_cells(
    object value, tuple int_names, object sentinels, dict radios, object default_radio
):
    """``formats._cell`` of every entry of one submitted cell list, or None.

    The dict entries, each as ``{<int_names present>, "primaryScramblingCode"
    (from ``psc`` when only that is given), "radioType", "cellId" (from
    ``newRadioCellId`` for NR)}``: an int outside 64 bits or in
    ``sentinels`` is left out; the radio is ``radioType`` stripped and
    lower-cased and looked up in ``radios``, else ``default_radio``. None,
    for the Python function to answer, unless every int field it reads is
    absent, null or an int (no float, boolean or numeric text to coerce)
    (the ``_entry_dicts`` hand-back rule besides). Not a list: [].
    """
    cdef list out = []
    cdef dict item, entry
    cdef PyObject* found
    cdef object number, radio
    cdef list entries = _entry_dicts(value)
    if entries is None:
        return None
    for raw in entries:
        item = <dict>raw
        entry = {}
        if not _copy_ints(item, int_names, sentinels, entry):
            return None
        if "primaryScramblingCode" not in entry:
            number = _plain_int(item, "psc", sentinels)
            if number is _HAND_BACK:
                return None
            if number is not None:
                entry["primaryScramblingCode"] = number
        found = PyDict_GetItem(item, "radioType")
        radio = None
        if found is not NULL and isinstance(<object>found, str):
            radio = radios.get((<object>found).strip().lower())
        if radio is None:
            radio = default_radio
        if radio is not None:
            entry["radioType"] = radio
        if radio == "nr":
            number = _plain_int(item, "newRadioCellId", sentinels)
            if number is _HAND_BACK:
                return None
            if number is not None:
                entry["cellId"] = number
        out.append(entry)
    return out
