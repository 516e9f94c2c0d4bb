"""Stage A of the locate request: the type-strict HTTP schema.

A field of the wrong JSON type rejects the whole request (400 parseError
with ``details = {"validation": {<dotted.path>: <message>}}``); unknown keys
are ignored at every level. Values are only coerced here, never
range-checked: out-of-range values are dropped later, in the query model
(stage B), and never cause an error.

Coercions follow the original service (colander 1.8):

* integer: JSON int; float truncated toward zero; numeric string as
  ``int()`` reads it (``" 01"`` is 1); ``true``/``false`` as 1/0;
  ``null``, ``""``, ``[]`` and ``{}`` mean "missing";
* string: any JSON string; ``""`` and ``null`` mean "missing";
* boolean: ``null``/missing take the default; otherwise false only when the
  value's text is ``false`` or ``0`` in any case (``0.0`` and ``"no"`` are
  true) — quirk Q7, kept because clients rely on it;
* lists must be arrays and their entries objects; ``null`` is an error.

Extensions over the original: ``radioType`` also accepts ``nr`` (5G), with
the 36-bit ``newRadioCellId`` of the Google dialect, and the ``psc`` alias
of ``primaryScramblingCode`` is honoured when the latter is absent (quirk
Q4: the original always overwrote it with null).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ichnaea._fast import cell_lookups, wifi_lookups
from ichnaea.errors import ParseError
from ichnaea.mcc import ALL_VALID_MCCS

RADIO_TYPES = ("gsm", "cdma", "wcdma", "lte", "nr")
_RADIO_MESSAGE = "is not one of gsm, cdma, wcdma, lte, nr"

Entry = dict[str, Any]


class _Invalid(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _integer(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if type(value) is int:  # the usual case first (bool is a subclass, not this type)
        return value
    if value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return int(value)
    elif isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _Invalid(path, f'"{value}" is not a number')


def _string(value: Any, path: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise _Invalid(path, f"{value!r} is not a string")


def _boolean(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).lower() not in ("false", "0")


def _radio(value: Any, path: str) -> str | None:
    text = _string(value, path)
    if text is not None and text not in RADIO_TYPES:
        raise _Invalid(path, f'"{text}" {_RADIO_MESSAGE}')
    return text


def _entries(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = data.get(name)
    if name not in data:
        return []
    if not isinstance(value, list):
        raise _Invalid(name, f'"{value}" is not iterable')
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise _Invalid(f"{name}.{index}", f'"{item}" is not a mapping type')
    return value


_BLUE_INTS = ("age", "signalStrength")
_WIFI_INTS = ("age", "channel", "frequency", "signalStrength", "signalToNoiseRatio")
_CELL_INTS = (
    "mobileCountryCode",
    "mobileNetworkCode",
    "locationAreaCode",
    "cellId",
    "newRadioCellId",
    "age",
    "primaryScramblingCode",
    "signalStrength",
    "timingAdvance",
)


def _blue(item: dict[str, Any], path: str) -> Entry:
    entry: Entry = {k: _integer(item.get(k), f"{path}.{k}") for k in _BLUE_INTS}
    entry["macAddress"] = _string(item.get("macAddress"), f"{path}.macAddress")
    entry["name"] = _string(item.get("name"), f"{path}.name")
    return entry


def _wifi(item: dict[str, Any], path: str) -> Entry:
    entry: Entry = {k: _integer(item.get(k), f"{path}.{k}") for k in _WIFI_INTS}
    entry["macAddress"] = _string(item.get("macAddress"), f"{path}.macAddress")
    entry["ssid"] = _string(item.get("ssid"), f"{path}.ssid")
    return entry


def _cell(item: dict[str, Any], path: str, default_radio: str | None) -> Entry:
    entry: Entry = {k: _integer(item.get(k), f"{path}.{k}") for k in _CELL_INTS}
    psc = _integer(item.get("psc"), f"{path}.psc")
    if entry["primaryScramblingCode"] is None:
        entry["primaryScramblingCode"] = psc
    entry["radioType"] = _radio(item.get("radioType"), f"{path}.radioType") or default_radio
    return entry


@dataclass(slots=True)
class LocateRequest:
    """A request body that passed stage A: typed, not yet range-checked."""

    blue: list[Entry] = field(default_factory=list)
    cell: list[Entry] = field(default_factory=list)
    wifi: list[Entry] = field(default_factory=list)
    lacf: bool = True
    ipf: bool = True
    considered: dict[str, int] = field(default_factory=dict)
    # The Wi-Fi entries already through stage B as ``WifiLookup`` field
    # tuples, deduplicated, when the compiled fast path took them (then
    # ``wifi`` is empty); None when ``wifi`` holds them.
    wifi_fields: list[tuple[Any, ...]] | None = None
    # The same for the cell entries: (cells, areas) as ``CellLookup`` field
    # tuples (the radio as its code); None when ``cell`` holds them.
    cell_fields: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None = None


def _parse(data: Any) -> LocateRequest:
    if not isinstance(data, dict):
        raise _Invalid(
            "", f'"{data}" is not a mapping type: Does not implement dict-like functionality.'
        )
    for name in ("carrier",):
        _string(data.get(name), name)
    for name in ("homeMobileCountryCode", "homeMobileNetworkCode"):
        _integer(data.get(name), name)
    default_radio = _radio(data.get("radioType"), "radioType")

    if "fallbacks" in data:
        fallbacks = data["fallbacks"]
        if not isinstance(fallbacks, dict):
            raise _Invalid("fallbacks", f'"{fallbacks}" is not a mapping type')
        lacf = _boolean(fallbacks.get("lacf"), True)
        ipf = _boolean(fallbacks.get("ipf"), True)
    else:
        lacf, ipf = True, _boolean(data.get("considerIp"), True)

    blues = _entries(data, "bluetoothBeacons")
    cells = _entries(data, "cellTowers")
    wifis = _entries(data, "wifiAccessPoints")
    blue = [_blue(item, f"bluetoothBeacons.{i}") for i, item in enumerate(blues)]
    # Plain entries (the usual) in one compiled call; the rest entry by entry.
    cell_fields = cell_lookups(cells, default_radio, ALL_VALID_MCCS)
    cell = (
        []
        if cell_fields is not None
        else [_cell(item, f"cellTowers.{i}", default_radio) for i, item in enumerate(cells)]
    )
    wifi_fields = wifi_lookups(wifis)
    return LocateRequest(
        blue=blue,
        cell=cell,
        wifi=[]
        if wifi_fields is not None
        else [_wifi(item, f"wifiAccessPoints.{i}") for i, item in enumerate(wifis)],
        lacf=lacf,
        ipf=ipf,
        considered={"blue": len(blues), "cell": len(cells), "wifi": len(wifis)},
        wifi_fields=wifi_fields,
        cell_fields=cell_fields,
    )


def parse_locate_request(data: Any) -> LocateRequest:
    """Apply stage A to decoded JSON; a type error raises ``ParseError``."""
    try:
        return _parse(data)
    except _Invalid as exc:
        raise ParseError({"validation": {exc.path: exc.message}}) from None
