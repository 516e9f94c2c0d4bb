"""The internal exporter's transform: export items → observations, datamap grids, counts.

A pure function of a batch (no Redis, no database) that runs at tens of
thousands of observations per second per core, so it works on plain dicts and
local variables. Spec: pipeline.md section 7.

Steps
-----
1. **Flatten** (7.1, :func:`flatten_report`). The v2 position is flattened
   into the report (``lat, lon, accuracy, altitude, altitude_accuracy,
   heading, pressure, speed, source``); beacons, cells and Wi-Fi networks are
   renamed to the short internal names. Only usable values are copied: every
   value is coerced on its own (integers from numbers, truncated toward zero,
   and numeric strings; floats from finite numbers and numeric strings;
   strings must be non-empty), and anything else counts as null, so replayed
   archives with odd JSON never raise. Booleans are not numbers here. Entries
   left empty and empty lists are dropped; a report with no entry left is
   skipped without being counted. With a position ``age`` (the age of the GPS
   fix), the timestamp moves back by it and every entry's age becomes
   relative to the fix: ``age := (age or 0) - gps_age``. A report-level
   ``radioType`` is the radio of cells that name none.
2. **Validate** (7.2, :func:`validate_report`, :func:`validate_blue`,
   :func:`validate_wifi`, :func:`validate_cell`). Ranges are inclusive and
   exactly those of the spec; an invalid optional field becomes null, an
   invalid required field rejects the report or the entry. Wi-Fi channel and
   frequency are derived from each other. The report position must lie
   inside some region: one vectorised ``Geocoder.any_region`` call per batch.
3. **De-duplicate** (7.3): within a report, a later entry with the same key
   (MAC, or radio/mcc/mnc/lac/cid for cells) replaces the kept one unless the
   kept one is strictly better in any comparator that both sides have.
4. **Observations** (7.4): report fields plus entry fields, null fields left
   out, ``source`` and ``radio`` as ints, on the queue ``update_wifi_<c>`` or
   ``update_blue_<c>`` (``c`` = 5th hex character of the MAC) or
   ``update_cell_<radio>``.
5. **Datamap** (7.6): the grid cell of every report that produced an
   observation, de-duplicated per ``update_datamap_<shard>`` queue.

Counts per API key: ``report_upload`` for every counted report,
``report_drop`` for an invalid report or one without any valid entry,
``<type>_upload`` per observation and ``<type>_drop`` per invalid entry of a
valid report (an invalid report's entries are not counted). Zero counts are
never set.

5G NR (our extension; the original rejected NR cells)
-----------------------------------------------------
Radio ``nr`` (radio int 4, queue ``update_cell_nr``) uses its own ranges
instead of the global cell ones: ``lac`` is the TAC, 1..16777215 (24 bits);
``cid`` the NCI, 1..68719476735 (36 bits); ``psc`` the PCI, 0..1007;
``signal`` the SS-RSRP, -156..-31 dBm; ``asu`` 0..127; ``ta`` 0..3846.
``mcc``/``mnc`` and ``age`` are checked as for other cells; out-of-range
optional values become null. There is no gsm→wcdma style rewrite, and no
signal is derived from ``asu`` (there is no single accepted NR ASU→dBm rule).

Decisions on the spec's quirks (pipeline.md section 24) and open points
-----------------------------------------------------------------------
* 1: grids are always computed; whether to push them (MAPBOX_TOKEN) is the
  exporter's decision, not this transform's.
* 3: the Wi-Fi/Bluetooth shard is the 5th hex character of the MAC.
* 4: position ``source`` is accepted by name (any case; ``gps`` means gnss and
  ``manual`` means fixed, as the submit API maps them) or by number 0/3/6/9;
  anything else is null, which the station updater treats as gnss.
* 7: cells with only a ``psc`` (neighbour cells) stay rejected: radio, mcc,
  mnc, lac and cid are all required.
* 8: no MCC/region consistency check of cells, as the original pipeline.
* 9: one Wi-Fi network is enough for a report.
* A non-string or empty ``api_key`` counts as "no key" (``None``).
* Radio names are read case-insensitively, ``umts`` meaning wcdma; an unknown
  cell radio name falls back to the report's ``radioType``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np

from ichnaea.codecs import datamap_grid, datamap_shard_id, encode_datamap_grid
from ichnaea.enums import Radio, ReportSource
from ichnaea.geocode import Geocoder
from ichnaea.mcc import ALL_VALID_MCCS

Entry = dict[str, Any]
# "Better" comparators: (field, whether higher is better).
_Comparators = tuple[tuple[str, bool], ...]

# Report (position) ranges. Latitude stops at the Web-Mercator limit.
MAX_LAT_DEG: Final = 85.051
MAX_LON_DEG: Final = 180.0
MIN_TIMESTAMP_MS: Final = 10**12
MAX_TIMESTAMP_MS: Final = 10**13
# name, min, max: accuracy_m, altitude_m, altitude_accuracy_m, heading_deg,
# pressure_hpa, speed_m_per_s.
_REPORT_RANGES: Final = (
    ("accuracy", 0.0, 1_000_000.0),
    ("altitude", -10_911.0, 100_000.0),
    ("altitude_accuracy", 0.0, 110_911.0),
    ("heading", 0.0, 360.0),
    ("pressure", 100.0, 1200.0),
    ("speed", 0.0, 300.0),
)

# Entry ranges shared by all types: age relative to the GPS fix, in ms.
MAX_AGE_MS: Final = 3_600_000
MIN_BLUE_SIGNAL_DBM: Final = -127
MAX_BLUE_SIGNAL_DBM: Final = 0
MIN_WIFI_SIGNAL_DBM: Final = -100
MAX_WIFI_SIGNAL_DBM: Final = -10
MIN_WIFI_SNR_DB: Final = 1
MAX_WIFI_SNR_DB: Final = 100
MIN_WIFI_CHANNEL: Final = 1
MAX_WIFI_CHANNEL: Final = 199
MIN_WIFI_FREQUENCY_MHZ: Final = 2400
MAX_WIFI_FREQUENCY_MHZ: Final = 5999
MAX_MNC: Final = 999

_SOURCES: Final = {"fixed": ReportSource.fixed.value, "gnss": ReportSource.gnss.value,
                   "fused": ReportSource.fused.value, "query": ReportSource.query.value,
                   "gps": ReportSource.gnss.value, "manual": ReportSource.fixed.value}  # fmt: skip
_SOURCE_NUMBERS: Final = frozenset(int(source) for source in ReportSource)
_RADIO_NAMES: Final = {"gsm": "gsm", "wcdma": "wcdma", "umts": "wcdma", "lte": "lte", "nr": "nr",
                       "cdma": "cdma"}  # fmt: skip

_MAC_SEPARATORS: Final = str.maketrans("", "", ":-.")
_HEX_DIGITS: Final = frozenset("0123456789abcdef")
# All-zero, broadcast, and the multicast MAC some test devices report.
_INVALID_MACS: Final = frozenset(("000000000000", "ffffffffffff", "01005e901000"))


class _CellLimits(NamedTuple):
    """Valid ranges of one radio, all inclusive; None means "always null".

    For gsm, wcdma and lte these are the spec's global ranges (asu -5..97,
    signal -140..-25 dBm, ta 0..63) intersected with the radio's own ones,
    and the lte psc limit folds in its "psc > 503 → null" rule.
    """

    radio: int
    max_lac: int
    max_cid: int
    max_psc: int
    min_asu: int
    max_asu: int
    min_signal_dbm: int
    max_signal_dbm: int
    max_ta: int | None
    # signal_dbm = asu_scale * asu + asu_offset_dbm, when signal is missing.
    asu_scale: int | None
    asu_offset_dbm: int


_MAX_LAC: Final = 65_533
_MAX_CID: Final = 2**28 - 1
_MAX_NR_TAC: Final = 2**24 - 1
_MAX_NR_NCI: Final = 2**36 - 1
# Columns: radio, max lac, max cid, max psc, asu min/max, signal min/max (dBm),
# max ta, and asu -> dBm as scale, offset.
_CELL_LIMITS: Final = {
    "gsm": _CellLimits(Radio.gsm.value, _MAX_LAC, _MAX_CID, 511, 0, 31, -113, -51, 63, 2, -113),
    "wcdma": _CellLimits(
        Radio.wcdma.value, _MAX_LAC, _MAX_CID, 511, -5, 91, -121, -25, None, 1, -116
    ),
    "lte": _CellLimits(Radio.lte.value, _MAX_LAC, _MAX_CID, 503, 0, 97, -140, -43, 63, 1, -140),
    "nr": _CellLimits(
        Radio.nr.value, _MAX_NR_TAC, _MAX_NR_NCI, 1007, 0, 127, -156, -31, 3846, None, 0
    ),
}
# A gsm cell id above 16 bits can only be a wcdma one (28 bits).
_MAX_GSM_CID: Final = 65_535
_CELL_QUEUES: Final = {limits.radio: f"update_cell_{name}" for name, limits in _CELL_LIMITS.items()}


@dataclass(slots=True)
class InternalBatch:
    """What one batch of export items turns into.

    Only queues that receive something are present in ``observations`` and
    ``datamap``; only API keys with a counted report are in ``counts``.
    """

    # Queue name -> sparse observation dicts in input order: "update_wifi_<c>",
    # "update_blue_<c>" (c = 5th hex character of the MAC) or "update_cell_<radio>".
    observations: dict[str, list[dict[str, Any]]]
    # "update_datamap_<ne|nw|se|sw>" -> 8-byte encoded grid cells.
    datamap: dict[str, set[bytes]]
    # API key (None for none) -> report_upload/report_drop and <type>_upload/<type>_drop.
    counts: dict[str | None, Counter[str]]


# -- coercion: unusable values are None --------------------------------------


def _int(value: Any) -> int | None:
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is float:
        return int(value) if math.isfinite(value) else None
    if kind is str:
        try:
            return int(value)
        except ValueError:
            number = _float(value)
            return None if number is None else int(number)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _radio(value: Any) -> str | None:
    return _RADIO_NAMES.get(value.strip().lower()) if isinstance(value, str) else None


def _source(value: Any) -> int | None:
    if isinstance(value, str):
        source = _SOURCES.get(value.strip().lower())
        if source is not None:
            return source
    number = _int(value)
    return number if number in _SOURCE_NUMBERS else None


# -- 7.1 flatten --------------------------------------------------------------

_POSITION_FIELDS: Final = (
    ("latitude", "lat"), ("longitude", "lon"), ("accuracy", "accuracy"),
    ("altitude", "altitude"), ("altitudeAccuracy", "altitude_accuracy"),
    ("heading", "heading"), ("pressure", "pressure"), ("speed", "speed"),
)  # fmt: skip
# (v2 name, internal name, coercion); "radio" and "serving" only count for emptiness
# of Wi-Fi and cell entries respectively, and are not part of the observations.
_BLUE_FIELDS: Final = (
    ("macAddress", "mac", _str), ("age", "age", _int), ("signalStrength", "signal", _int),
)  # fmt: skip
_WIFI_FIELDS: Final = (
    ("macAddress", "mac", _str), ("age", "age", _int), ("channel", "channel", _int),
    ("frequency", "frequency", _int), ("radioType", "radio", _str),
    ("signalToNoiseRatio", "snr", _int), ("signalStrength", "signal", _int),
)  # fmt: skip
_CELL_FIELDS: Final = (
    ("radioType", "radio", _radio), ("mobileCountryCode", "mcc", _int),
    ("mobileNetworkCode", "mnc", _int), ("locationAreaCode", "lac", _int),
    ("cellId", "cid", _int), ("age", "age", _int), ("asu", "asu", _int),
    ("primaryScramblingCode", "psc", _int), ("serving", "serving", _int),
    ("signalStrength", "signal", _int), ("timingAdvance", "ta", _int),
)  # fmt: skip


def _entries(value: Any, fields: tuple[tuple[str, str, Any], ...], gps_age: int) -> list[Entry]:
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if not isinstance(item, dict):
            continue
        entry = {}
        for source_name, name, convert in fields:
            converted = convert(item.get(source_name))
            if converted is not None:
                entry[name] = converted
        if entry:
            if gps_age:
                entry["age"] = entry.get("age", 0) - gps_age
            out.append(entry)
    return out


def flatten_report(report: Any) -> dict[str, Any] | None:
    """Return the flat internal report of a v2 report, or None if it has no entries.

    Keys: the position fields, ``source`` (as int), ``timestamp`` (ms) and the
    lists ``blue``, ``cell``, ``wifi``, each present only when usable/non-empty.
    Ages and the timestamp are made relative to the position's GPS fix.
    """
    if not isinstance(report, dict):
        return None
    position = report.get("position")
    gps_age = 0
    flat: dict[str, Any] = {}
    if isinstance(position, dict):
        for source_name, name in _POSITION_FIELDS:
            number = _float(position.get(source_name))
            if number is not None:
                flat[name] = number
        source = _source(position.get("source"))
        if source is not None:
            flat["source"] = source
        gps_age = _int(position.get("age")) or 0

    blue = _entries(report.get("bluetoothBeacons"), _BLUE_FIELDS, gps_age)
    cell = _entries(report.get("cellTowers"), _CELL_FIELDS, gps_age)
    wifi = _entries(report.get("wifiAccessPoints"), _WIFI_FIELDS, gps_age)
    if not (blue or cell or wifi):
        return None
    if cell:
        default_radio = _radio(report.get("radioType"))
        if default_radio is not None:
            for entry in cell:
                entry.setdefault("radio", default_radio)
    if blue:
        flat["blue"] = blue
    if cell:
        flat["cell"] = cell
    if wifi:
        flat["wifi"] = wifi

    timestamp = _int(report.get("timestamp"))
    if timestamp is not None:
        # A zero timestamp is left alone (it fails validation anyway).
        flat["timestamp"] = timestamp - gps_age if timestamp else timestamp
    return flat


# -- 7.2 validation -----------------------------------------------------------


def validate_report(flat: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the valid report fields of a flat report, or None if lat/lon are invalid.

    The region check is not done here (see :func:`transform_batch`).
    """
    lat = flat.get("lat")
    lon = flat.get("lon")
    if (
        lat is None
        or lon is None
        or not -MAX_LAT_DEG <= lat <= MAX_LAT_DEG
        or not -MAX_LON_DEG <= lon <= MAX_LON_DEG
    ):
        return None
    fields: dict[str, Any] = {"lat": lat, "lon": lon}
    for name, low, high in _REPORT_RANGES:
        value = flat.get(name)
        if value is not None and low <= value <= high:
            fields[name] = value
    source = flat.get("source")
    if source in _SOURCE_NUMBERS:
        fields["source"] = source
    timestamp = flat.get("timestamp")
    if timestamp is not None and MIN_TIMESTAMP_MS <= timestamp <= MAX_TIMESTAMP_MS:
        fields["timestamp"] = timestamp
    return fields


def normalize_mac(value: Any) -> str | None:
    """The 12 lower-case hex characters of a valid MAC, else None.

    Separators ``:``, ``-`` and ``.`` are removed; all-zero, broadcast and
    the test MAC are invalid; locally administered MACs are fine.
    """
    if not isinstance(value, str):
        return None
    mac = value.translate(_MAC_SEPARATORS).lower()
    if len(mac) != 12 or not _HEX_DIGITS.issuperset(mac) or mac in _INVALID_MACS:
        return None
    return mac


def _mac_entry(entry: Mapping[str, Any]) -> Entry | None:
    """The ``mac`` and valid ``age`` of a beacon or Wi-Fi entry, or None without a valid MAC."""
    mac = normalize_mac(entry.get("mac"))
    if mac is None:
        return None
    out: Entry = {"mac": mac}
    age = entry.get("age")
    if age is not None and -MAX_AGE_MS <= age <= MAX_AGE_MS:
        out["age"] = age
    return out


def validate_blue(entry: Mapping[str, Any]) -> Entry | None:
    """The observation fields of a flat beacon entry, or None if it is invalid."""
    out = _mac_entry(entry)
    if out is None:
        return None
    signal = entry.get("signal")
    if signal is not None and MIN_BLUE_SIGNAL_DBM <= signal <= MAX_BLUE_SIGNAL_DBM:
        out["signal"] = signal
    return out


def wifi_frequency(channel: int) -> int | None:
    """The centre frequency in MHz of a valid Wi-Fi channel (1..199)."""
    if 1 <= channel <= 13:
        return 2407 + 5 * channel
    if channel == 14:
        return 2484
    if 15 <= channel <= 185:
        return 5000 + 5 * channel
    if 186 <= channel <= 199:
        return 4000 + 5 * channel
    return None


def wifi_channel(frequency_mhz: int) -> int | None:
    """The Wi-Fi channel of a centre frequency in MHz, or None if it is not one."""
    if 2412 <= frequency_mhz <= 2472:
        return (frequency_mhz - 2407) // 5
    if frequency_mhz == 2484:
        return 14
    if 4915 <= frequency_mhz <= 4995:
        return (frequency_mhz - 4000) // 5
    if 5075 <= frequency_mhz <= 5925:
        return (frequency_mhz - 5000) // 5
    return None


def validate_wifi(entry: Mapping[str, Any]) -> Entry | None:
    """The observation fields of a flat Wi-Fi entry, or None if it is invalid."""
    out = _mac_entry(entry)
    if out is None:
        return None
    channel = entry.get("channel")
    if channel is not None and not MIN_WIFI_CHANNEL <= channel <= MAX_WIFI_CHANNEL:
        channel = None
    frequency = entry.get("frequency")
    if frequency is not None and not MIN_WIFI_FREQUENCY_MHZ <= frequency <= MAX_WIFI_FREQUENCY_MHZ:
        frequency = None
    if channel is None:
        if frequency is not None:
            channel = wifi_channel(frequency)
    elif frequency is None:
        frequency = wifi_frequency(channel)
    if channel is not None:
        out["channel"] = channel
    if frequency is not None:
        out["frequency"] = frequency
    signal = entry.get("signal")
    if signal is not None and MIN_WIFI_SIGNAL_DBM <= signal <= MAX_WIFI_SIGNAL_DBM:
        out["signal"] = signal
    snr = entry.get("snr")
    if snr is not None and MIN_WIFI_SNR_DB <= snr <= MAX_WIFI_SNR_DB:
        out["snr"] = snr
    return out


def validate_cell(entry: Mapping[str, Any]) -> Entry | None:
    """The observation fields of a flat cell entry, or None if it is invalid.

    Follows the spec's steps 1-9 for gsm/wcdma/lte and the NR ranges of the
    module docs; ``radio`` is returned as its int.
    """
    asu = entry.get("asu")
    signal = entry.get("signal")
    # 1. Some clients put the dBm value into asu.
    if asu is not None and asu < -5 and (signal is None or signal >= 0):
        signal, asu = asu, None
    # 2. Radio.
    radio = entry.get("radio")
    cid = entry.get("cid")
    # 3. A gsm cell id above 16 bits is a wcdma one.
    if radio == "gsm" and cid is not None and cid > _MAX_GSM_CID:
        radio = "wcdma"
    limits = _CELL_LIMITS.get(radio) if radio is not None else None
    if limits is None:
        return None
    # 4. Network.
    mcc = entry.get("mcc")
    mnc = entry.get("mnc")
    # ALL_VALID_MCCS lies within 1..999 and leaves out 553 (Tuvalu).
    if mcc not in ALL_VALID_MCCS or mnc is None or not 0 <= mnc <= MAX_MNC:
        return None
    # 5 and 9. Area and cell ids are required.
    lac = entry.get("lac")
    if lac is None or not 1 <= lac <= limits.max_lac:
        return None
    if cid is None or not 1 <= cid <= limits.max_cid:
        return None
    out: Entry = {"radio": limits.radio, "mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid}
    psc = entry.get("psc")
    if psc is not None and 0 <= psc <= limits.max_psc:
        out["psc"] = psc
    # 6 and 7. Optional measurements.
    age = entry.get("age")
    if age is not None and -MAX_AGE_MS <= age <= MAX_AGE_MS:
        out["age"] = age
    if asu is not None and not limits.min_asu <= asu <= limits.max_asu:
        asu = None
    if signal is not None and not limits.min_signal_dbm <= signal <= limits.max_signal_dbm:
        signal = None
    # 8. Signal from asu.
    if signal is None and asu is not None and limits.asu_scale is not None:
        signal = limits.asu_scale * asu + limits.asu_offset_dbm
    if asu is not None:
        out["asu"] = asu
    if signal is not None:
        out["signal"] = signal
    ta = entry.get("ta")
    if ta is not None and limits.max_ta is not None and 0 <= ta <= limits.max_ta:
        out["ta"] = ta
    return out


# -- 7.3 de-duplication -------------------------------------------------------


def _better(kept: Entry, new: Entry, comparators: _Comparators) -> bool:
    """Whether ``kept`` is strictly better than ``new`` in any comparator both have."""
    for name, higher in comparators:
        old_value = kept.get(name)
        new_value = new.get(name)
        if old_value is not None and new_value is not None:
            if higher:
                if old_value > new_value:
                    return True
            elif old_value < new_value:
                return True
    return False


def _add_observations(
    kind: str,
    validate: Callable[[Mapping[str, Any]], Entry | None],
    comparators: _Comparators,
    entries: list[Entry],
    fields: dict[str, Any],
    observations: dict[str, list[dict[str, Any]]],  # INOUT
    counter: Counter[str],  # INOUT
) -> int:
    """Queue the valid, de-duplicated entries of one kind of one report; return their number."""
    kept: dict[Any, Entry] = {}
    dropped = 0
    for entry in entries:
        obs = validate(entry)
        if obs is None:
            dropped += 1
            continue
        if kind == "cell":
            key: Any = (obs["radio"], obs["mcc"], obs["mnc"], obs["lac"], obs["cid"])
        else:
            key = obs["mac"]
        old = kept.get(key)
        if old is None or not _better(old, obs, comparators):
            kept[key] = obs
    for key, obs in kept.items():
        # A cell key starts with the radio; the Wi-Fi/Bluetooth shard is the MAC's 5th digit.
        queue = _CELL_QUEUES[key[0]] if kind == "cell" else f"update_{kind}_{key[4]}"
        observations.setdefault(queue, []).append({**fields, **obs})
    if kept:
        counter[f"{kind}_upload"] += len(kept)
    if dropped:
        counter[f"{kind}_drop"] += dropped
    return len(kept)


# -- the batch ----------------------------------------------------------------


def _api_key(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def transform_batch(items: Sequence[Mapping[str, Any]], geocoder: Geocoder) -> InternalBatch:
    """Turn export items ``{"api_key": ..., "report": ...}`` into observations.

    Never raises on JSON-decoded input: anything unusable is skipped or
    counted as dropped (see the module docs).
    """
    reports: list[tuple[str | None, dict[str, Any], dict[str, Any] | None]] = []
    located: list[int] = []
    lats: list[float] = []
    lons: list[float] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        flat = flatten_report(item.get("report"))
        if flat is None:
            continue
        fields = validate_report(flat)
        if fields is not None:
            located.append(len(reports))
            lats.append(fields["lat"])
            lons.append(fields["lon"])
        reports.append((_api_key(item.get("api_key")), flat, fields))

    if located:
        inside = geocoder.any_region(
            np.array(lats, dtype=np.float64), np.array(lons, dtype=np.float64)
        ).tolist()
        for index, ok in zip(located, inside, strict=True):
            if not ok:
                api_key, flat, _ = reports[index]
                reports[index] = (api_key, flat, None)

    observations: dict[str, list[dict[str, Any]]] = {}
    grids: set[tuple[int, int]] = set()
    counts: dict[str | None, Counter[str]] = {}
    for api_key, flat, fields in reports:
        counter = counts.get(api_key)
        if counter is None:
            counter = counts[api_key] = Counter()
        counter["report_upload"] += 1
        if fields is None:
            counter["report_drop"] += 1
            continue

        produced = 0
        for kind, validate, comparators in _KINDS:
            entries = flat.get(kind)
            if entries:
                produced += _add_observations(
                    kind, validate, comparators, entries, fields, observations, counter
                )

        if produced:
            grids.add(datamap_grid(fields["lat"], fields["lon"]))
        else:
            counter["report_drop"] += 1

    datamap: dict[str, set[bytes]] = {}
    for lat, lon in grids:
        queue = f"update_datamap_{datamap_shard_id(lat, lon)}"
        datamap.setdefault(queue, set()).add(encode_datamap_grid(lat, lon))
    return InternalBatch(observations=observations, datamap=datamap, counts=counts)


# Entry kind, validator, and its "better" comparators in the spec's order
# (field, whether higher is better).
_KINDS: Final[tuple[tuple[str, Callable[[Mapping[str, Any]], Entry | None], _Comparators], ...]] = (
    ("blue", validate_blue, (("signal", True), ("age", False))),
    ("cell", validate_cell, (("ta", False), ("signal", True), ("asu", True), ("age", False))),
    ("wifi", validate_wifi, (("signal", True), ("snr", True), ("age", False))),
)
