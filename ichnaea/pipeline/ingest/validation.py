"""Validation of flattened reports and entries (spec pipeline.md section 7.2).

Pure functions over the flat dicts :func:`ichnaea.pipeline.ingest.observations.flatten_report`
makes: :func:`validate_report` checks the position and keeps the valid report
fields, :func:`validate_blue`, :func:`validate_wifi` and :func:`validate_cell`
return the observation fields of one entry or None. Ranges are inclusive and
exactly those of the spec; an invalid optional field becomes null, an invalid
required field rejects the report or the entry. Wi-Fi channel and frequency
are derived from each other. The region check of the position is done per
batch by the caller (one vectorised ``Geocoder.any_region`` call).

5G NR (our extension; the original rejected NR cells)
-----------------------------------------------------
Radio ``nr`` (radio int 4) uses its own ranges instead of the global cell
ones: ``lac`` is the TAC, 1..16777215 (24 bits); ``cid`` the NCI,
1..68719476735 (36 bits); ``psc`` the PCI, 0..1007; ``signal`` the SS-RSRP,
-156..-31 dBm; ``asu`` 0..127; ``ta`` 0..3846. ``mcc``/``mnc`` and ``age``
are checked as for other cells; out-of-range optional values become null.
There is no gsm→wcdma style rewrite, and no signal is derived from ``asu``
(there is no single accepted NR ASU→dBm rule).

Decisions (spec section 24): cells with only a ``psc`` (neighbour cells)
stay rejected, radio, mcc, mnc, lac and cid being required (7); no
MCC/region consistency check of cells, as the original pipeline (8).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from ichnaea import constants
from ichnaea.enums import Radio, ReportSource
from ichnaea.mcc import ALL_VALID_MCCS

Entry = dict[str, Any]

# Report (position) ranges. Latitude stops at the Web-Mercator limit.
MAX_LAT_DEG: Final = constants.MAX_LAT_DEG
MAX_LON_DEG: Final = constants.MAX_LON_DEG
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

# Report sources by number (ichnaea.enums.ReportSource).
SOURCE_NUMBERS: Final = frozenset(int(source) for source in ReportSource)

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
CELL_LIMITS: Final = {
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
    if source in SOURCE_NUMBERS:
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
    # Twelve characters have no separator to remove (with one, the hex test fails).
    mac = value.lower() if len(value) == 12 else value.translate(_MAC_SEPARATORS).lower()
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
    limits = CELL_LIMITS.get(radio) if radio is not None else None
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
