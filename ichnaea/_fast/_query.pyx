# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The locate query's Wi-Fi entries, typed, range-checked and deduplicated in one call.

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
"""

from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc

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


cdef inline int _hex(int c) noexcept:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


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
        h = _hex(c)
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
