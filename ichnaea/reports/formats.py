"""Submit bodies (``/v2/geosubmit``, ``/v1/geosubmit``, ``/v1/submit``) → v2-shaped reports.

Stumbler apps in the wild send explicit ``null`` for optional fields and
whole lists, numbers as strings, sentinel values (2147483647, Java's
``Integer.MAX_VALUE``) for unknown cell fields, and fields we have never
heard of. The original answered 400 to a single mistyped field and so lost
the whole upload. Here every field is coerced on its own: what can be
understood is kept, what cannot is dropped, and one bad field never rejects
a batch. Only a body that has no report list at all is a parse error, and
a list of more than ``MAX_REPORTS_PER_SUBMISSION`` reports is refused
whole (413 ``payloadTooLarge``, nothing queued) so the client splits it.

Coercions: integers from JSON numbers (floats truncated toward zero),
numeric strings and booleans; floats from numbers and numeric strings, NaN
and infinities dropped; strings must be non-empty strings; vocabulary
fields are compared lower-case. Range checks happen later, in the pipeline,
except for one bound here: a number no field can hold (an integer outside
the signed 64-bit range, a float past the largest double: JSON allows 400
digits) is dropped like any other unreadable field, so nothing downstream
has to guard against it.

Decisions on the original's quirks (pipeline.md section 24), each named in
a test: ``"position": null`` and ``null`` lists count as absent (4, 5);
position source ``gps`` means ``gnss`` and ``manual`` means ``fixed`` (4);
a numeric ``/v1/submit`` ``time`` is read as epoch milliseconds (6); the
``time`` string's UTC offset is honoured (6); ``psc`` is accepted in every
schema; 5G NR cells are kept, with ``newRadioCellId`` as their cell id.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ichnaea._fast import submitted_cells, submitted_macs
from ichnaea.errors import ParseError, PayloadTooLargeError
from ichnaea.privacy import OPT_OUT_MARKERS, is_opted_out
from ichnaea.reports.fields import Field, Kind, names, renamed

Report = dict[str, Any]

# Java/Android "unavailable" markers for int and long fields.
SENTINELS = frozenset({2147483647, -2147483648, 9223372036854775807})
RADIOS = {"gsm": "gsm", "cdma": "cdma", "umts": "wcdma", "wcdma": "wcdma", "lte": "lte", "nr": "nr"}
SOURCES = {"fixed": "fixed", "gnss": "gnss", "fused": "fused", "query": "query",
           "gps": "gnss", "manual": "fixed"}  # fmt: skip
MIN_TIMESTAMP_MS = 10**12
MAX_TIMESTAMP_MS = 10**13
# The most reports one submission may hold (NeoStumbler sends at most 999).
MAX_REPORTS_PER_SUBMISSION = 1000
# Every integer field fits a signed 64-bit column; wider values are dropped.
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1

# The fields read (ichnaea.reports.fields): the parser's name tuples come from
# these tables, and so does the API document. The v1 and v0 schemas are
# built from the v2 tables (v0 through its rename maps, further down).
_AGE = Field("age", Kind.integer, "Milliseconds between the observation and the report's time.")
POSITION_FIELDS = (
    Field("latitude", Kind.number, "Latitude in degrees (WGS 84)."),
    Field("longitude", Kind.number, "Longitude in degrees (WGS 84)."),
    Field("accuracy", Kind.number, "Accuracy of the position in metres."),
    Field("altitude", Kind.number, "Altitude above sea level in metres."),
    Field("altitudeAccuracy", Kind.number, "Accuracy of the altitude in metres."),
    Field("heading", Kind.number, "Direction of travel in degrees clockwise from north."),
    Field("pressure", Kind.number, "Air pressure in hPa."),
    Field("speed", Kind.number, "Speed in metres per second."),
    Field("age", Kind.integer, "Milliseconds between the position fix and the report's time."),
    Field(
        "source",
        Kind.choice,
        "Where the position comes from (gps means gnss, manual means fixed); default gnss.",
        choices=tuple(SOURCES),
    ),
)
BLUE_FIELDS = (
    Field("macAddress", Kind.mac, "The beacon's MAC address.", required=True),
    _AGE,
    Field("name", Kind.string, "The beacon's name."),
    Field("signalStrength", Kind.integer, "Received signal strength in dBm."),
)
WIFI_FIELDS = (
    Field("macAddress", Kind.mac, "The access point's BSSID.", required=True),
    _AGE,
    Field("channel", Kind.integer, "The channel."),
    Field("frequency", Kind.integer, "The frequency in MHz."),
    Field("radioType", Kind.string, "The Wi-Fi standard (802.11a, 802.11n, ...)."),
    Field("signalStrength", Kind.integer, "Received signal strength in dBm."),
    Field("signalToNoiseRatio", Kind.integer, "Signal to noise ratio in dB."),
    Field(
        "ssid",
        Kind.string,
        "The network name; a network whose name contains "
        + " or ".join(OPT_OUT_MARKERS)
        + " asks not to be mapped and is dropped.",
    ),
)
CELL_FIELDS = (
    Field(
        "radioType",
        Kind.choice,
        "The cell's radio (umts means wcdma); when missing, the report's radioType.",
        choices=tuple(RADIOS),
    ),
    Field("mobileCountryCode", Kind.integer, "The mobile country code (MCC)."),
    Field("mobileNetworkCode", Kind.integer, "The mobile network code (MNC)."),
    Field("locationAreaCode", Kind.integer, "The location or tracking area code (LAC/TAC)."),
    Field("cellId", Kind.integer, "The cell id (CID, UTRAN CID or ECI)."),
    Field(
        "newRadioCellId",
        Kind.integer,
        "The 36-bit NR cell identity (NCI) of a 5G cell: its cellId when radioType is nr.",
        alias_of="cellId",
    ),
    _AGE,
    Field("asu", Kind.integer, "The arbitrary strength unit of the signal."),
    Field("serving", Kind.integer, "1 for the serving cell, 0 for a neighbour."),
    Field("signalStrength", Kind.integer, "Received signal strength in dBm."),
    Field("timingAdvance", Kind.integer, "The timing advance."),
    Field(
        "primaryScramblingCode",
        Kind.integer,
        "The primary scrambling code (WCDMA) or physical cell id (LTE, NR).",
    ),
    Field(
        "psc",
        Kind.integer,
        "Alias of primaryScramblingCode, used when that is absent.",
        alias_of="primaryScramblingCode",
    ),
)
_NETWORKS = (
    Field("bluetoothBeacons", Kind.array, "The Bluetooth beacons observed.", fields=BLUE_FIELDS),
    Field("cellTowers", Kind.array, "The cells observed.", fields=CELL_FIELDS),
    Field("wifiAccessPoints", Kind.array, "The Wi-Fi access points observed.", fields=WIFI_FIELDS),
)
_TIMESTAMP = Field(
    "timestamp",
    Kind.timestamp,
    "When the observation was made, in milliseconds since the epoch; the time of "
    "arrival when missing or not between 2001 and 2286.",
)
_REPORT_FIELDS = (
    Field("carrier", Kind.string, "The network operator's name."),
    Field("homeMobileCountryCode", Kind.integer, "The MCC of the device's home network."),
    Field("homeMobileNetworkCode", Kind.integer, "The MNC of the device's home network."),
    Field(
        "radioType",
        Kind.choice,
        "The radio of the cells that do not name their own.",
        choices=tuple(RADIOS),
    ),
    *_NETWORKS,
)
# /v2/geosubmit: the position in its own object.
REPORT_FIELDS = (
    _TIMESTAMP,
    Field(
        "position",
        Kind.object,
        "Where the device was (GNSS or another trusted source).",
        fields=POSITION_FIELDS,
    ),
    *_REPORT_FIELDS,
)
# /v1/geosubmit: the position fields at the report's top level.
V1_REPORT_FIELDS = (_TIMESTAMP, *POSITION_FIELDS, *_REPORT_FIELDS)

POSITION_FLOATS = names(POSITION_FIELDS, Kind.number)
BLUE_INTS = names(BLUE_FIELDS, Kind.integer)
WIFI_INTS = names(WIFI_FIELDS, Kind.integer)
_WIFI_STRINGS = names(WIFI_FIELDS, Kind.string)
_BLUE_STRINGS = ("name",)
CELL_INTS = names(CELL_FIELDS, Kind.integer)
_REPORT_STRINGS = names(REPORT_FIELDS, Kind.string)
_REPORT_INTS = names(REPORT_FIELDS, Kind.integer)


def to_int(value: Any) -> int | None:
    if type(value) is int:  # the usual case first (bool is a subclass, not this type)
        return None if value in SENTINELS or not MIN_INT <= value <= MAX_INT else value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and math.isfinite(value):
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                return None
            if not math.isfinite(number):
                return None
            result = int(number)
    else:
        return None
    if result in SENTINELS or not MIN_INT <= result <= MAX_INT:
        return None
    return result


def to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not -sys.float_info.max <= value <= sys.float_info.max:
        return None  # float() would raise OverflowError; int-float comparison is exact
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def to_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _vocab(value: Any, vocabulary: dict[str, str]) -> str | None:
    return vocabulary.get(value.strip().lower()) if isinstance(value, str) else None


def _fields(
    item: dict[str, Any], names: tuple[str, ...], convert: Callable[[Any], Any]
) -> dict[str, Any]:
    out = {}
    for name in names:
        value = item.get(name)
        # Absent and null fields are the usual case: no conversion to try.
        if value is not None and (value := convert(value)) is not None:
            out[name] = value
    return out


def _entries(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _blue(item: dict[str, Any]) -> dict[str, Any] | None:
    mac = to_str(item.get("macAddress"))
    if mac is None:
        return None
    entry: dict[str, Any] = {"macAddress": mac, **_fields(item, BLUE_INTS, to_int)}
    for name in _BLUE_STRINGS:
        if (text := to_str(item.get(name))) is not None:
            entry[name] = text
    return entry


def _wifi(item: dict[str, Any]) -> dict[str, Any] | None:
    mac = to_str(item.get("macAddress"))
    if mac is None or is_opted_out(item.get("ssid")):
        return None
    entry: dict[str, Any] = {"macAddress": mac, **_fields(item, WIFI_INTS, to_int)}
    for name in _WIFI_STRINGS:
        if (text := to_str(item.get(name))) is not None:
            entry[name] = text
    return entry


def _macs(
    value: Any,
    entry: Callable[[dict[str, Any]], dict[str, Any] | None],
    int_names: tuple[str, ...],
    str_names: tuple[str, ...],
    *,
    wifi: bool,
) -> list[dict[str, Any]]:
    """The Wi-Fi or Bluetooth entries of a submitted list: plain ones in one
    compiled pass (``_fast.submitted_macs``), anything else entry by entry
    here, which is the specification (tests/_fast/test_reports.py)."""
    fast: list[dict[str, Any]] | None = submitted_macs(value, int_names, str_names, SENTINELS, wifi)
    if fast is not None:
        return fast
    return [e for e in map(entry, _entries(value)) if e is not None]


def _cell(item: dict[str, Any], default_radio: str | None) -> dict[str, Any]:
    entry = _fields(item, CELL_INTS, to_int)
    if "primaryScramblingCode" not in entry and (psc := to_int(item.get("psc"))) is not None:
        entry["primaryScramblingCode"] = psc
    radio = _vocab(item.get("radioType"), RADIOS) or default_radio
    if radio is not None:
        entry["radioType"] = radio
    if radio == "nr" and (nci := to_int(item.get("newRadioCellId"))) is not None:
        entry["cellId"] = nci
    return entry


def _cells(value: Any, default_radio: str | None) -> list[dict[str, Any]]:
    """The cell entries of a submitted list: plain ones in one compiled pass
    (``_fast.submitted_cells``: 2.7 µs -> 1.0 µs for a report's one or two
    cells), anything else entry by entry here, which is the specification
    (tests/_fast/test_reports.py)."""
    fast: list[dict[str, Any]] | None = submitted_cells(
        value, CELL_INTS, SENTINELS, RADIOS, default_radio
    )
    if fast is not None:
        return fast
    return [_cell(e, default_radio) for e in _entries(value)]


def _position(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    position = _fields(value, POSITION_FLOATS, to_float)
    if (age := to_int(value.get("age"))) is not None:
        position["age"] = age
    if (source := _vocab(value.get("source"), SOURCES)) is not None:
        position["source"] = source
    return position


def _timestamp(value: Any, now_ms: int) -> int:
    stamp = to_int(value)
    if stamp is None or not MIN_TIMESTAMP_MS < stamp < MAX_TIMESTAMP_MS:
        return now_ms
    return stamp


def _report(item: dict[str, Any], position: dict[str, Any] | None, now_ms: int) -> Report | None:
    """The v2-shaped report, or None when it carries no network at all."""
    radio = _vocab(item.get("radioType"), RADIOS)
    blue = _macs(item.get("bluetoothBeacons"), _blue, BLUE_INTS, _BLUE_STRINGS, wifi=False)
    wifi = _macs(item.get("wifiAccessPoints"), _wifi, WIFI_INTS, _WIFI_STRINGS, wifi=True)
    cell = _cells(item.get("cellTowers"), radio)
    if not (blue or cell or wifi):
        return None
    report: Report = {"timestamp": _timestamp(item.get("timestamp"), now_ms)}
    for name in _REPORT_STRINGS:
        if (text := to_str(item.get(name))) is not None:
            report[name] = text
    for name in _REPORT_INTS:
        if (number := to_int(item.get(name))) is not None:
            report[name] = number
    report["position"] = position
    report["bluetoothBeacons"] = blue
    report["cellTowers"] = cell
    report["wifiAccessPoints"] = wifi
    return report


def _items(data: Any, name: str) -> list[Any]:
    if not isinstance(data, dict):
        message = f'"{data}" is not a mapping type: Does not implement dict-like functionality.'
        raise ParseError({"validation": {"": message}})
    items = data.get(name)
    if not isinstance(items, list):
        raise ParseError({"validation": {name: "Required" if items is None else "Not a list"}})
    if len(items) > MAX_REPORTS_PER_SUBMISSION:
        # 413, not 400: nothing is wrong with the data, the client splits it.
        message = f"{len(items)} reports; send at most {MAX_REPORTS_PER_SUBMISSION} per request"
        raise PayloadTooLargeError({name: message})
    return items


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_v2(data: Any, now: int | None = None) -> list[Report]:
    """``/v2/geosubmit``: ``{"items": [report, ...]}``."""
    now = now_ms() if now is None else now
    reports = []
    for item in _items(data, "items"):
        if isinstance(item, dict):
            report = _report(item, _position(item.get("position")), now)
            if report is not None:
                reports.append(report)
    return reports


def parse_v1(data: Any, now: int | None = None) -> list[Report]:
    """``/v1/geosubmit``: position fields at the report's top level."""
    now = now_ms() if now is None else now
    reports = []
    for item in _items(data, "items"):
        if not isinstance(item, dict):
            continue
        position = _position(item)
        report = _report(item, position or None, now)
        if report is not None:
            if not position:
                del report["position"]  # v1 has no position key when there is none
            reports.append(report)
    return reports


V0_BLUE = {"key": "macAddress", "age": "age", "name": "name", "signal": "signalStrength"}
V0_CELL = {"radio": "radioType", "mcc": "mobileCountryCode", "mnc": "mobileNetworkCode",
            "lac": "locationAreaCode", "cid": "cellId", "age": "age", "asu": "asu",
            "psc": "primaryScramblingCode", "serving": "serving", "signal": "signalStrength",
            "ta": "timingAdvance"}  # fmt: skip
V0_WIFI = {"key": "macAddress", "age": "age", "channel": "channel", "frequency": "frequency",
            "radio": "radioType", "signal": "signalStrength",
            "signalToNoiseRatio": "signalToNoiseRatio", "ssid": "ssid"}  # fmt: skip
V0_POSITION = {"lat": "latitude", "lon": "longitude", "accuracy": "accuracy", "age": "age",
                "altitude": "altitude", "altitude_accuracy": "altitudeAccuracy",
                "heading": "heading", "pressure": "pressure", "speed": "speed",
                "source": "source"}  # fmt: skip


# /v1/submit: the fields each v0 name becomes, and so the v0 tables.
V0_REPORT_FIELDS = (
    Field(
        "time",
        Kind.datetime,
        "When the observation was made: ISO 8601 text (UTC when it has no offset) or "
        "milliseconds since the epoch; the time of arrival when missing or unreadable.",
    ),
    Field(
        "radio",
        Kind.choice,
        "The radio of the cells that do not name their own.",
        choices=tuple(RADIOS),
    ),
    *renamed(V0_POSITION, POSITION_FIELDS),
    Field(
        "blue", Kind.array, "The Bluetooth beacons observed.", fields=renamed(V0_BLUE, BLUE_FIELDS)
    ),
    Field("cell", Kind.array, "The cells observed.", fields=renamed(V0_CELL, CELL_FIELDS)),
    Field(
        "wifi",
        Kind.array,
        "The Wi-Fi access points observed.",
        fields=renamed(V0_WIFI, WIFI_FIELDS),
    ),
)


def _rename(item: Any, names: dict[str, str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        return {}
    return {new: item[old] for old, new in names.items() if old in item}


def _v0_time(value: Any, now: int) -> int:
    """``time`` as ISO-8601 text (its UTC offset honoured) or epoch milliseconds."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return now
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return _timestamp(int(moment.timestamp() * 1000), now)
    return _timestamp(value, now)


def parse_v0(data: Any, now: int | None = None) -> list[Report]:
    """``/v1/submit``: the oldest schema, with short field names."""
    now = now_ms() if now is None else now
    reports = []
    for item in _items(data, "items"):
        if not isinstance(item, dict):
            continue
        v2 = {
            "timestamp": _v0_time(item.get("time"), now),
            "radioType": item.get("radio"),
            "bluetoothBeacons": [_rename(e, V0_BLUE) for e in _entries(item.get("blue"))],
            "cellTowers": [_rename(e, V0_CELL) for e in _entries(item.get("cell"))],
            "wifiAccessPoints": [_rename(e, V0_WIFI) for e in _entries(item.get("wifi"))],
        }
        report = _report(v2, _position(_rename(item, V0_POSITION)) or None, now)
        if report is not None:
            reports.append(report)
    return reports
