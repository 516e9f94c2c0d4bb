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

from ichnaea.errors import ParseError, PayloadTooLargeError
from ichnaea.privacy import is_opted_out

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

POSITION_FLOATS = ("latitude", "longitude", "accuracy", "altitude", "altitudeAccuracy",
                   "heading", "pressure", "speed")  # fmt: skip
BLUE_INTS = ("age", "signalStrength")
WIFI_INTS = ("age", "channel", "frequency", "signalStrength", "signalToNoiseRatio")
CELL_INTS = ("mobileCountryCode", "mobileNetworkCode", "locationAreaCode", "cellId",
             "age", "asu", "serving", "signalStrength", "timingAdvance",
             "primaryScramblingCode")  # fmt: skip


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
    if (name := to_str(item.get("name"))) is not None:
        entry["name"] = name
    return entry


def _wifi(item: dict[str, Any]) -> dict[str, Any] | None:
    mac = to_str(item.get("macAddress"))
    if mac is None or is_opted_out(item.get("ssid")):
        return None
    entry: dict[str, Any] = {"macAddress": mac, **_fields(item, WIFI_INTS, to_int)}
    for name in ("radioType", "ssid"):
        if (text := to_str(item.get(name))) is not None:
            entry[name] = text
    return entry


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
    blue = [e for e in map(_blue, _entries(item.get("bluetoothBeacons"))) if e is not None]
    wifi = [e for e in map(_wifi, _entries(item.get("wifiAccessPoints"))) if e is not None]
    cell = [_cell(e, radio) for e in _entries(item.get("cellTowers"))]
    if not (blue or cell or wifi):
        return None
    report: Report = {"timestamp": _timestamp(item.get("timestamp"), now_ms)}
    for name in ("carrier",):
        if (text := to_str(item.get(name))) is not None:
            report[name] = text
    for name in ("homeMobileCountryCode", "homeMobileNetworkCode"):
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


_V0_BLUE = {"key": "macAddress", "age": "age", "name": "name", "signal": "signalStrength"}
_V0_CELL = {"radio": "radioType", "mcc": "mobileCountryCode", "mnc": "mobileNetworkCode",
            "lac": "locationAreaCode", "cid": "cellId", "age": "age", "asu": "asu",
            "psc": "primaryScramblingCode", "serving": "serving", "signal": "signalStrength",
            "ta": "timingAdvance"}  # fmt: skip
_V0_WIFI = {"key": "macAddress", "age": "age", "channel": "channel", "frequency": "frequency",
            "radio": "radioType", "signal": "signalStrength",
            "signalToNoiseRatio": "signalToNoiseRatio", "ssid": "ssid"}  # fmt: skip
_V0_POSITION = {"lat": "latitude", "lon": "longitude", "accuracy": "accuracy", "age": "age",
                "altitude": "altitude", "altitude_accuracy": "altitudeAccuracy",
                "heading": "heading", "pressure": "pressure", "speed": "speed",
                "source": "source"}  # fmt: skip


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
            "bluetoothBeacons": [_rename(e, _V0_BLUE) for e in _entries(item.get("blue"))],
            "cellTowers": [_rename(e, _V0_CELL) for e in _entries(item.get("cell"))],
            "wifiAccessPoints": [_rename(e, _V0_WIFI) for e in _entries(item.get("wifi"))],
        }
        report = _report(v2, _position(_rename(item, _V0_POSITION)) or None, now)
        if report is not None:
            reports.append(report)
    return reports
