# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The locate query's Wi-Fi and cell entries, typed, range-checked and deduplicated in one call.

``wifi_lookups(entries)`` does for a ``wifiAccessPoints`` list what
``ichnaea.api.locate.schemas`` (stage A, types) and
``ichnaea.api.locate.query`` (stage B: ranges, MAC normalisation, the
channel/frequency pair, duplicates) do entry by entry in Python, for the
entries real clients send: every entry a JSON object whose fields are
absent, ``null``, integers that fit 64 bits or strings, and whose
``macAddress`` is ASCII. For anything else (a float, a boolean, a numeric
string, an empty string where an integer belongs, a non-ASCII MAC, an entry
that is not an object) it returns None and the caller takes the Python
path, which owns every coercion and error message. The Python path is the
specification; tests/_fast/test_query_kernel.py holds the two equal.

It returns the surviving lookups as tuples ``(mac, ssid, age, channel,
frequency, signal, snr)`` (``query.WifiLookup``'s fields), in the order of their first
appearance; a later duplicate replaces the kept one unless the kept one is
better in a field both have (higher signal, higher SNR, lower age). The
cap on the number of lookups and the two-network minimum stay with the
caller.

``cell_lookups(entries, default_radio, valid_mccs)`` does the same for a
``cellTowers`` list: each entry gives a cell and a cell-area lookup (see
``query._cells``), deduplicated apart.

``mac_search_input`` and ``cell_search_input`` take the query's lookups on
to the station index: the keys in the index's order with the signals and
weight ages its search takes, in one pass instead of a dict, a sort and
a list per column (``ichnaea.api.locate.sources.internal``, whose Python
expressions they equal; the same hand-back rule).
"""

from cpython cimport array
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.ref cimport PyObject
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint64_t
from libc.math cimport fabs, fmax
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy, memset

import array as _array

from ichnaea._fast._typedefs cimport hex_value

# The search inputs' float64 columns are array.array("d"), made by cloning
# this empty one, not numpy arrays: mac_search_input took 1.55 µs a query
# instead of 2.2 (benchmarks/RESULTS.md, session 18). The kernels take any
# float64 buffer.
cdef array.array _DOUBLES = _array.array("d")

# The ranges of ichnaea.api.locate.constants (tests compare them: wifi_limits()).
cdef int64_t MIN_AGE_MS = -3600000
cdef int64_t MAX_AGE_MS = 3600000
cdef int64_t MIN_CHANNEL = 1
cdef int64_t MAX_CHANNEL = 199
cdef int64_t MIN_FREQUENCY = 2400
cdef int64_t MAX_FREQUENCY = 5999
cdef int64_t MIN_SIGNAL = -100
cdef int64_t MAX_SIGNAL = -10
cdef int64_t MIN_SNR = 1
cdef int64_t MAX_SNR = 100
# 00:00:00:00:00:00, ff:ff:ff:ff:ff:ff and the test MAC 01:00:5e:90:10:00.
cdef uint64_t INVALID_MAC_1 = 0
cdef uint64_t INVALID_MAC_2 = 0xFFFFFFFFFFFF
cdef uint64_t INVALID_MAC_3 = 0x01005E901000

cdef enum:
    MISSING = 0
    PRESENT = 1
    NOT_PLAIN = 2


cdef struct _Field:
    bint present
    int64_t value


cdef struct _Wifi:
    uint64_t mac
    Py_ssize_t entry  # where its mac and ssid strings come from
    _Field age, channel, frequency, signal, snr


def wifi_limits():
    """The ranges compiled in, for the test that holds them to the Python constants."""
    return {
        "age": (MIN_AGE_MS, MAX_AGE_MS),
        "channel": (MIN_CHANNEL, MAX_CHANNEL),
        "frequency": (MIN_FREQUENCY, MAX_FREQUENCY),
        "signal": (MIN_SIGNAL, MAX_SIGNAL),
        "snr": (MIN_SNR, MAX_SNR),
        "invalid_macs": (INVALID_MAC_1, INVALID_MAC_2, INVALID_MAC_3),
    }


cdef int _integer(dict item, str name, int64_t lo, int64_t hi, _Field* out) except -1:
    """MISSING/PRESENT into ``out`` (out of range is missing), or NOT_PLAIN."""
    cdef PyObject* found = PyDict_GetItem(item, name)
    cdef int overflow = 0
    cdef long long value
    out.present = False
    if found is NULL or <object>found is None:
        return MISSING
    if type(<object>found) is not int:  # bool, float, str, list...: the Python path
        return NOT_PLAIN
    value = PyLong_AsLongLongAndOverflow(<object>found, &overflow)
    if overflow:
        return NOT_PLAIN
    if lo <= value <= hi:
        out.present = True
        out.value = value
    return PRESENT


cdef int _mac(dict item, uint64_t* out) except -1:
    """PRESENT and the 48-bit MAC if it is valid, MISSING if not, NOT_PLAIN for the Python path."""
    cdef PyObject* found = PyDict_GetItem(item, "macAddress")
    cdef bytes text
    cdef const unsigned char* chars
    cdef Py_ssize_t i, n, digits = 0
    cdef int c, h
    cdef uint64_t mac = 0
    if found is NULL or <object>found is None:
        return MISSING
    if type(<object>found) is not str:
        return NOT_PLAIN
    if not (<str>found).isascii():
        return NOT_PLAIN
    text = (<str>found).encode("ascii")
    chars = text
    n = len(text)
    for i in range(n):
        c = chars[i]
        if c == 58 or c == 45 or c == 46:  # ':', '-', '.'
            continue
        h = hex_value(c)
        if h < 0 or digits == 12:
            return MISSING
        mac = (mac << 4) | <uint64_t>h
        digits += 1
    if digits != 12 or mac == INVALID_MAC_1 or mac == INVALID_MAC_2 or mac == INVALID_MAC_3:
        return MISSING
    out[0] = mac
    return PRESENT


cdef int _string_plain(dict item, str name) except -1:
    cdef PyObject* found = PyDict_GetItem(item, name)
    if found is NULL or <object>found is None or type(<object>found) is str:
        return PRESENT
    return NOT_PLAIN


cdef void _channel_frequency(_Field* channel, _Field* frequency) noexcept:
    """Derive the missing one of the pair, as query.channel_frequency does."""
    cdef int64_t c, f
    if channel.present and not frequency.present:
        c = channel.value
        if 0 < c < 14:
            frequency.present, frequency.value = True, 5 * c + 2407
        elif c == 14:
            frequency.present, frequency.value = True, 2484
        elif 14 < c < 186:
            frequency.present, frequency.value = True, 5 * c + 5000
        elif 185 < c < 200:
            frequency.present, frequency.value = True, 5 * c + 4000
    elif frequency.present and not channel.present:
        f = frequency.value
        if 2411 < f < 2473:
            channel.present, channel.value = True, (f - 2407) // 5
        elif f == 2484:
            channel.present, channel.value = True, 14
        elif 4914 < f < 4996:
            channel.present, channel.value = True, (f - 4000) // 5
        elif 5074 < f < 5926:
            channel.present, channel.value = True, (f - 5000) // 5


cdef inline bint _wins(_Field* mine, _Field* theirs, bint higher_wins) noexcept:
    if not mine.present or not theirs.present:
        return False
    return mine.value > theirs.value if higher_wins else mine.value < theirs.value


cdef inline bint _better(_Wifi* kept, _Wifi* other) noexcept:
    """True if the kept entry wins a field both have (query.WifiLookup.better)."""
    return (
        _wins(&kept.signal, &other.signal, True)
        or _wins(&kept.snr, &other.snr, True)
        or _wins(&kept.age, &other.age, False)
    )


cdef inline object _value(_Field* field):
    return field.value if field.present else None


cdef object _text(dict item, str name):
    value = item.get(name)
    return None if value == "" else value


def wifi_lookups(list entries):
    """The deduplicated Wi-Fi lookups of ``entries``, or None: see the module docstring."""
    cdef Py_ssize_t n = len(entries), i, j, kept = 0
    cdef _Wifi* rows
    cdef _Wifi row
    cdef dict item
    cdef dict slot_of = {}
    cdef int status
    if n == 0:
        return []
    rows = <_Wifi*>malloc(n * sizeof(_Wifi))
    if rows is NULL:
        raise MemoryError()
    try:
        for i in range(n):
            if type(entries[i]) is not dict:
                return None
            item = <dict>entries[i]
            row.entry = i
            if (
                _integer(item, "age", MIN_AGE_MS, MAX_AGE_MS, &row.age) == NOT_PLAIN
                or _integer(item, "channel", MIN_CHANNEL, MAX_CHANNEL, &row.channel) == NOT_PLAIN
                or _integer(
                    item, "frequency", MIN_FREQUENCY, MAX_FREQUENCY, &row.frequency
                ) == NOT_PLAIN
                or _integer(
                    item, "signalStrength", MIN_SIGNAL, MAX_SIGNAL, &row.signal
                ) == NOT_PLAIN
                or _integer(
                    item, "signalToNoiseRatio", MIN_SNR, MAX_SNR, &row.snr
                ) == NOT_PLAIN
                or _string_plain(item, "ssid") == NOT_PLAIN
            ):
                return None
            status = _mac(item, &row.mac)
            if status == NOT_PLAIN:
                return None
            if status == MISSING:
                continue
            _channel_frequency(&row.channel, &row.frequency)
            slot = slot_of.get(row.mac)
            if slot is None:
                slot_of[row.mac] = kept
                rows[kept] = row
                kept += 1
            else:
                j = <Py_ssize_t>slot
                if not _better(&rows[j], &row):
                    rows[j] = row
        result = []
        for j in range(kept):
            row = rows[j]
            item = <dict>entries[row.entry]
            result.append(
                (
                    f"{row.mac:012x}",
                    _text(item, "ssid"),
                    _value(&row.age),
                    _value(&row.channel),
                    _value(&row.frequency),
                    _value(&row.signal),
                    _value(&row.snr),
                )
            )
        return result
    finally:
        free(rows)


cdef int _plain_int(object value, double* out) except -1:
    """1 and the value of an int (or None: 0), 0 for anything else."""
    if value is None:
        out[0] = 0.0
        return 1
    if type(value) is not int:
        return 0
    out[0] = <double>(<object>value)
    return 1


cdef int _signal_and_age(
    object lookup, double missing_signal_dbm, double min_age_ms, double* signal, double* age
) except -1:
    """1 and a lookup's search signal (a missing or 0 reading is ``missing_signal_dbm``,
    quirk Q9) and weight age (``max(|age or 0|, min_age_ms)``); 0 (hand back) unless
    both are ints or None."""
    cdef double value
    if not _plain_int(lookup.signal, &value):
        return 0
    signal[0] = value if value != 0.0 else missing_signal_dbm
    if not _plain_int(lookup.age, &value):
        return 0
    age[0] = fmax(fabs(value), min_age_ms)
    return 1


def mac_search_input(list lookups, double missing_signal_dbm, double min_age_ms):
    """What the index search of Wi-Fi or Bluetooth lookups takes, or None.

    ``lookups`` are ``query.WifiLookup`` or ``BlueLookup`` objects. Returns
    ``(keys, joined, signal_dbm, age_ms)``: the 6-byte keys of their MACs,
    ascending and unique (a repeated MAC keeps its last lookup, as a dict
    of them does), the keys joined, and per key the signal (a missing or
    0 reading is ``missing_signal_dbm``, quirk Q9) and the weight age
    (``max(|age or 0|, min_age_ms)``) as ``array.array("d")``. None, for the
    Python expression in ``sources/internal.py`` to answer, when a MAC is
    not 12 hex digits or a signal or age is neither an int nor None.
    """
    cdef Py_ssize_t n = len(lookups), i, j, kept = 0
    cdef uint64_t* keys = <uint64_t*>malloc((n + 1) * sizeof(uint64_t))
    cdef Py_ssize_t* order = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
    cdef uint64_t key
    cdef bytes text
    cdef const unsigned char* chars
    cdef int h
    cdef array.array signal, age
    cdef unsigned char[6] packed
    if keys is NULL or order is NULL:
        free(keys)
        free(order)
        raise MemoryError()
    try:
        for i in range(n):
            mac = lookups[i].mac
            if type(mac) is not str or len(<str>mac) != 12 or not (<str>mac).isascii():
                return None
            text = (<str>mac).encode("ascii")
            chars = text
            key = 0
            for j in range(12):
                h = hex_value(chars[j])
                if h < 0:
                    return None
                key = (key << 4) | <uint64_t>h
            # Insertion sort by (key, position): a query has a few dozen at most.
            j = i
            while j > 0 and keys[j - 1] > key:
                keys[j] = keys[j - 1]
                order[j] = order[j - 1]
                j -= 1
            keys[j] = key
            order[j] = i
        # The last lookup of each MAC, in key order.
        for i in range(n):
            if i + 1 < n and keys[i + 1] == keys[i]:
                continue
            keys[kept] = keys[i]
            order[kept] = order[i]
            kept += 1
        signal = array.clone(_DOUBLES, kept, False)
        age = array.clone(_DOUBLES, kept, False)
        found = []
        for i in range(kept):
            if not _signal_and_age(
                lookups[order[i]],
                missing_signal_dbm,
                min_age_ms,
                &signal.data.as_doubles[i],
                &age.data.as_doubles[i],
            ):
                return None
            for j in range(6):
                packed[j] = <unsigned char>((keys[i] >> (8 * (5 - j))) & 0xFF)
            found.append(PyBytes_FromStringAndSize(<char*>packed, 6))
        return found, b"".join(found), signal, age
    finally:
        free(keys)
        free(order)


def cell_search_input(list cells, Py_ssize_t width, tuple floor_by_radio, double min_age_ms):
    """What the index search of full-cell lookups takes, or None.

    ``cells`` are ``query.CellLookup`` objects with a ``cid``. Returns
    ``(keys, joined, floor_dbm, signal_dbm, age_ms)``: their cell ids
    (packed here as ``codecs.encode_cellid`` packs them: 0.05 µs a cell
    instead of 0.13 through the ``cellid`` property),
    unique (a repeated id keeps its last lookup, as a dict of them does) and
    in the order of the ids zero-padded to ``width`` bytes (the index's key
    order), the padded ids joined, and per id the lowest signal of its
    radio (``floor_by_radio[radio]``), the signal (a missing or 0 reading is
    that floor) and the weight age (``max(|age or 0|, min_age_ms)``) as
    ``array.array("d")``. None, for the Python expression in
    ``sources/internal.py`` to answer, when an id is longer than ``width``,
    a cell's fields do not fit its key (``encode_cellid`` then says which)
    or a radio, signal or age is not a plain int or None.
    """
    cdef Py_ssize_t n = len(cells), i, j, kept = 0
    cdef unsigned char[NR_CELLID_SIZE] packed
    cdef unsigned char* padded = <unsigned char*>malloc((n + 1) * width + 1)
    cdef Py_ssize_t* order = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t size
    cdef unsigned char* slot
    cdef double floor_dbm
    cdef array.array floor, signal, age
    if padded is NULL or order is NULL:
        free(padded)
        free(order)
        raise MemoryError()
    try:
        ids = []
        for i in range(n):
            size = _packed_cellid(cells[i], packed)
            if size == 0 or size > width:
                return None
            ids.append(PyBytes_FromStringAndSize(<char*>packed, size))
            # Insertion sort by (padded id, position): a query has a few cells.
            j = i
            while j > 0 and _padded_after(padded + (j - 1) * width, packed, size, width):
                memcpy(padded + j * width, padded + (j - 1) * width, width)
                order[j] = order[j - 1]
                j -= 1
            slot = padded + j * width
            memset(slot, 0, width)
            memcpy(slot, packed, size)
            order[j] = i
        # The last lookup of each id, in key order.
        for i in range(n):
            if i + 1 < n and memcmp(padded + i * width, padded + (i + 1) * width, width) == 0:
                continue
            if kept != i:
                memcpy(padded + kept * width, padded + i * width, width)
            order[kept] = order[i]
            kept += 1
        floor = array.clone(_DOUBLES, kept, False)
        signal = array.clone(_DOUBLES, kept, False)
        age = array.clone(_DOUBLES, kept, False)
        keys = []
        for i in range(kept):
            item = cells[order[i]]
            radio = item.radio
            if not isinstance(radio, int) or not 0 <= radio < len(floor_by_radio):
                return None
            if floor_by_radio[radio] is None:
                return None
            floor_dbm = floor_by_radio[radio]
            floor.data.as_doubles[i] = floor_dbm
            if not _signal_and_age(
                item, floor_dbm, min_age_ms, &signal.data.as_doubles[i], &age.data.as_doubles[i]
            ):
                return None
            keys.append(ids[order[i]])
        joined = PyBytes_FromStringAndSize(<char*>padded, kept * width)
        return keys, joined, floor, signal, age
    finally:
        free(padded)
        free(order)


cdef inline bint _padded_after(
    const unsigned char* kept, const unsigned char* other, Py_ssize_t size, Py_ssize_t width
) noexcept:
    """Whether the padded id ``kept`` sorts after ``other`` (``size`` bytes) zero-padded
    to ``width``."""
    cdef Py_ssize_t k
    cdef unsigned char theirs
    for k in range(width):
        theirs = other[k] if k < size else 0
        if kept[k] != theirs:
            return kept[k] > theirs
    return False


# ---------------------------------------------------------------------------
# Cell entries
# ---------------------------------------------------------------------------

# ichnaea.enums.Radio; the ranges of ichnaea.api.locate.constants (tests
# compare them: cell_limits()).
cdef enum:
    GSM = 0
    WCDMA = 2
    LTE = 3
    NR = 4

# codecs.CELLID_BYTES and NR_CELLID_BYTES (tests/_fast/test_query_kernel.py
# compares the keys with codecs.encode_cellid's).
cdef enum:
    CELLID_SIZE = 11
    NR_CELLID_SIZE = 17


cdef inline int _key_field(object value, int64_t highest, int64_t* out) except -1:
    """1 and an int field's value if it lies in [0, ``highest``], else 0."""
    cdef int overflow = 0
    cdef long long v
    if not isinstance(value, int):
        return 0
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow or v < 0 or v > highest:
        return 0
    out[0] = v
    return 1


cdef inline void _big_endian(unsigned char* out, uint64_t value, Py_ssize_t size) noexcept:
    cdef Py_ssize_t k
    for k in range(size):
        out[k] = <unsigned char>((value >> (8 * (size - 1 - k))) & 0xFF)


cdef Py_ssize_t _packed_cellid(object cell, unsigned char* out) except -1:
    """A cell's key written to ``out`` as ``codecs.encode_cellid`` packs it (``!bHHHI``,
    ``!bHHIQ`` for NR) and its length; 0 when a field does not fit."""
    cdef int64_t radio, mcc, mnc, lac, cid
    if not (
        _key_field(cell.radio, NR, &radio)
        and _key_field(cell.mcc, 0xFFFF, &mcc)
        and _key_field(cell.mnc, 0xFFFF, &mnc)
    ):
        return 0
    out[0] = <unsigned char>radio
    _big_endian(out + 1, <uint64_t>mcc, 2)
    _big_endian(out + 3, <uint64_t>mnc, 2)
    if radio == NR:
        if not (
            _key_field(cell.lac, 0xFFFFFFFF, &lac) and _key_field(cell.cid, INT64_MAX, &cid)
        ):
            return 0
        _big_endian(out + 5, <uint64_t>lac, 4)
        _big_endian(out + 9, <uint64_t>cid, 8)
        return NR_CELLID_SIZE
    if not (_key_field(cell.lac, 0xFFFF, &lac) and _key_field(cell.cid, 0xFFFFFFFF, &cid)):
        return 0
    _big_endian(out + 5, <uint64_t>lac, 2)
    _big_endian(out + 7, <uint64_t>cid, 4)
    return CELLID_SIZE

cdef int64_t MIN_MNC = 0
cdef int64_t MAX_MNC = 999
cdef int64_t MIN_LAC = 1
cdef int64_t MAX_LAC = 65533
cdef int64_t MAX_NR_TAC = (1 << 24) - 1
cdef int64_t MIN_CID = 1
cdef int64_t MAX_CID = (1 << 28) - 1
cdef int64_t MAX_CID_GSM = 65535
cdef int64_t MAX_NR_CID = (1 << 36) - 1
cdef int64_t MIN_PSC = 0
cdef int64_t MAX_PSC = 511
cdef int64_t MAX_PSC_LTE = 503
cdef int64_t MAX_PCI_NR = 1007
cdef int64_t MIN_CELL_TA = 0
cdef int64_t MAX_CELL_TA = 63
cdef int64_t MIN_CELL_SIGNAL = -140
cdef int64_t MAX_CELL_SIGNAL = -25
# Per radio (GSM, -, WCDMA, LTE, NR): the signal range.
cdef int64_t[5] SIGNAL_LO = [-113, 0, -121, -140, -156]
cdef int64_t[5] SIGNAL_HI = [-51, 0, -25, -43, -31]
RADIO_CODES = {"gsm": GSM, "wcdma": WCDMA, "lte": LTE, "nr": NR}
# What stage A accepts as radioType (cdma too: it is dropped in stage B).
RADIO_TYPES = frozenset(("gsm", "cdma", "wcdma", "lte", "nr"))


cdef struct _Cell:
    int radio
    int64_t mcc, mnc, lac
    _Field cid, psc, age, signal, ta


def cell_limits():
    """The ranges compiled in, for the test that holds them to the Python constants."""
    return {
        "mnc": (MIN_MNC, MAX_MNC),
        "lac": (MIN_LAC, MAX_LAC, MAX_NR_TAC),
        "cid": (MIN_CID, MAX_CID, MAX_CID_GSM, MAX_NR_CID),
        "psc": (MIN_PSC, MAX_PSC, MAX_PSC_LTE, MAX_PCI_NR),
        "ta": (MIN_CELL_TA, MAX_CELL_TA),
        "signal": (MIN_CELL_SIGNAL, MAX_CELL_SIGNAL),
        "signal_by_radio": {r: (SIGNAL_LO[r], SIGNAL_HI[r]) for r in (GSM, WCDMA, LTE, NR)},
        "radios": dict(RADIO_CODES),
    }


cdef inline void _clip(_Field* field, int64_t lo, int64_t hi) noexcept:
    if field.present and not lo <= field.value <= hi:
        field.present = False


cdef int _cell_radio(dict item, object default_radio, int* out) except -1:
    """The entry's radio code into ``out`` (-1: none or CDMA), or NOT_PLAIN."""
    cdef PyObject* found = PyDict_GetItem(item, "radioType")
    text = None
    if found is not NULL and <object>found is not None:
        if type(<object>found) is not str:
            return NOT_PLAIN
        text = <str>found
        if text == "":
            text = None
        elif text not in RADIO_TYPES:
            return NOT_PLAIN  # stage A's error, with its message
    if text is None:
        text = default_radio
    code = RADIO_CODES.get(text) if text is not None else None
    out[0] = -1 if code is None else <int>code
    return PRESENT


cdef inline bint _cell_better(_Cell* kept, _Cell* other) noexcept:
    """True if the kept entry wins a field both have (query.CellLookup.better)."""
    return (
        _wins(&kept.ta, &other.ta, False)
        or _wins(&kept.signal, &other.signal, True)
        or _wins(&kept.age, &other.age, False)
    )


cdef tuple _cell_tuple(_Cell* c):
    return (
        c.radio, c.mcc, c.mnc, c.lac, _value(&c.cid), _value(&c.psc),
        _value(&c.age), _value(&c.signal), _value(&c.ta),
    )


cdef void _keep(_Cell* kept, Py_ssize_t* count, dict slot_of, tuple key, _Cell* row):
    """Add ``row`` under ``key``, or let it replace the kept one unless that one is better."""
    slot = slot_of.get(key)
    if slot is None:
        slot_of[key] = count[0]
        kept[count[0]] = row[0]
        count[0] += 1
    elif not _cell_better(&kept[<Py_ssize_t>slot], row):
        kept[<Py_ssize_t>slot] = row[0]


def cell_lookups(list entries, object default_radio, object valid_mccs):
    """The deduplicated cell and cell-area lookups of ``cellTowers`` entries, or None.

    Stages A and B of ``ichnaea.api.locate.schemas`` and ``query`` for the
    plain entries (see the module docstring; a radioType that stage A would
    refuse also goes back to the Python path). ``default_radio`` is the
    body's top-level radioType (already checked), ``valid_mccs`` the set of
    valid country codes. Returns ``(cells, areas)``: tuples of
    ``query.CellLookup``'s fields with the radio as its code, each list in
    first-appearance order.
    """
    cdef Py_ssize_t n = len(entries), i, kept_cells = 0, kept_areas = 0
    cdef _Cell* cells
    cdef _Cell* areas
    cdef _Cell row, area
    cdef _Field mcc, mnc, lac, cid, nci, psc, psc_alias, age, signal, ta
    cdef dict item
    cdef dict cell_slot = {}, area_slot = {}
    cdef int radio
    if n == 0:
        return [], []
    cells = <_Cell*>malloc(n * sizeof(_Cell))
    areas = <_Cell*>malloc(n * sizeof(_Cell))
    if cells is NULL or areas is NULL:
        free(cells)
        free(areas)
        raise MemoryError()
    try:
        for i in range(n):
            if type(entries[i]) is not dict:
                return None
            item = <dict>entries[i]
            # Stage A: types only (out-of-range values are dropped below).
            if (
                _integer(item, "mobileCountryCode", INT64_MIN, INT64_MAX, &mcc) == NOT_PLAIN
                or _integer(item, "mobileNetworkCode", INT64_MIN, INT64_MAX, &mnc) == NOT_PLAIN
                or _integer(item, "locationAreaCode", INT64_MIN, INT64_MAX, &lac) == NOT_PLAIN
                or _integer(item, "cellId", INT64_MIN, INT64_MAX, &cid) == NOT_PLAIN
                or _integer(item, "newRadioCellId", INT64_MIN, INT64_MAX, &nci) == NOT_PLAIN
                or _integer(item, "age", INT64_MIN, INT64_MAX, &age) == NOT_PLAIN
                or _integer(
                    item, "primaryScramblingCode", INT64_MIN, INT64_MAX, &psc
                ) == NOT_PLAIN
                or _integer(item, "psc", INT64_MIN, INT64_MAX, &psc_alias) == NOT_PLAIN
                or _integer(item, "signalStrength", INT64_MIN, INT64_MAX, &signal) == NOT_PLAIN
                or _integer(item, "timingAdvance", INT64_MIN, INT64_MAX, &ta) == NOT_PLAIN
                or _cell_radio(item, default_radio, &radio) == NOT_PLAIN
            ):
                return None
            if not psc.present:
                psc = psc_alias
            # Stage B (query._cells).
            if radio < 0 or not mcc.present or mcc.value not in valid_mccs:
                continue
            _clip(&mnc, MIN_MNC, MAX_MNC)
            _clip(&lac, MIN_LAC, MAX_NR_TAC if radio == NR else MAX_LAC)
            if not mnc.present or not lac.present:
                continue
            _clip(&age, MIN_AGE_MS, MAX_AGE_MS)
            _clip(&signal, MIN_CELL_SIGNAL, MAX_CELL_SIGNAL)
            _clip(&signal, SIGNAL_LO[radio], SIGNAL_HI[radio])
            if radio == WCDMA:
                ta.present = False
            else:
                _clip(&ta, MIN_CELL_TA, MAX_CELL_TA)
            area.radio = radio
            area.mcc, area.mnc, area.lac = mcc.value, mnc.value, lac.value
            area.cid.present = False
            area.psc.present = False
            area.age, area.signal, area.ta = age, signal, ta
            _keep(areas, &kept_areas, area_slot, (radio, mcc.value, mnc.value, lac.value), &area)
            if radio == NR:
                # query._cells: newRadioCellId, or cellId when it is missing or 0.
                if not (nci.present and nci.value != 0):
                    nci = cid
                cid = nci
                _clip(&cid, MIN_CID, MAX_NR_CID)
                _clip(&psc, MIN_PSC, MAX_PCI_NR)
            else:
                _clip(&cid, MIN_CID, MAX_CID)
                if radio == LTE and psc.present and psc.value > MAX_PSC_LTE:
                    psc.present = False
                _clip(&psc, MIN_PSC, MAX_PSC)
            if not cid.present:
                continue
            row = area
            row.cid, row.psc = cid, psc
            if radio == GSM and cid.value > MAX_CID_GSM:
                # Quirk Q10, kept: such a "gsm" cell is a UMTS cell; only the
                # cell lookup is corrected, the area keeps the radio sent.
                row.radio = WCDMA
            _keep(
                cells, &kept_cells, cell_slot,
                (row.radio, row.mcc, row.mnc, row.lac, cid.value), &row,
            )
        return (
            [_cell_tuple(&cells[i]) for i in range(kept_cells)],
            [_cell_tuple(&areas[i]) for i in range(kept_areas)],
        )
    finally:
        free(cells)
        free(areas)
