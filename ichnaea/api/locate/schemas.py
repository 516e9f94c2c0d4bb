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

The fields read are declared in tables (``LOCATE_FIELDS`` and the entry
tables under it): the parser's name tuples come from them, and so does the
API document (``ichnaea.api.openapi``).

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
from ichnaea.api.locate import constants as c
from ichnaea.errors import ParseError
from ichnaea.mcc import ALL_VALID_MCCS
from ichnaea.reports.fields import Field, Kind, names

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


# The fields stage A reads (ichnaea.reports.fields): the parser's name tuples
# come from these tables, and so does the API document. Out-of-range values
# (the ranges given) are dropped in stage B, never an error.
_AGE = Field(
    "age",
    Kind.integer,
    f"Milliseconds since the network was last seen ({c.MIN_AGE_MS} to {c.MAX_AGE_MS}).",
)
BLUE_FIELDS = (
    Field("macAddress", Kind.mac, "The beacon's MAC address."),
    _AGE,
    Field("name", Kind.string, "The beacon's name; not used to locate."),
    Field(
        "signalStrength",
        Kind.integer,
        f"Received signal strength in dBm ({c.MIN_BLUE_SIGNAL_DBM} to {c.MAX_BLUE_SIGNAL_DBM}).",
    ),
)
WIFI_FIELDS = (
    Field("macAddress", Kind.mac, "The access point's BSSID."),
    _AGE,
    Field(
        "channel",
        Kind.integer,
        f"The channel ({c.MIN_WIFI_CHANNEL} to {c.MAX_WIFI_CHANNEL}); "
        "derived from the frequency when missing.",
    ),
    Field(
        "frequency",
        Kind.integer,
        f"The frequency in MHz ({c.MIN_WIFI_FREQUENCY_MHZ} to {c.MAX_WIFI_FREQUENCY_MHZ}); "
        "derived from the channel when missing.",
    ),
    Field(
        "signalStrength",
        Kind.integer,
        f"Received signal strength in dBm ({c.MIN_WIFI_SIGNAL_DBM} to {c.MAX_WIFI_SIGNAL_DBM}).",
    ),
    Field(
        "signalToNoiseRatio",
        Kind.integer,
        f"Signal to noise ratio in dB ({c.MIN_WIFI_SNR} to {c.MAX_WIFI_SNR}).",
    ),
    Field("ssid", Kind.string, "The network name; not used to locate."),
)
CELL_FIELDS = (
    Field(
        "radioType",
        Kind.choice,
        "The cell's radio; when missing, the body's radioType.",
        choices=RADIO_TYPES,
    ),
    Field("mobileCountryCode", Kind.integer, "The mobile country code (MCC)."),
    Field("mobileNetworkCode", Kind.integer, f"The mobile network code (MNC, 0 to {c.MAX_MNC})."),
    Field(
        "locationAreaCode",
        Kind.integer,
        f"The location or tracking area code (LAC/TAC, {c.MIN_LAC} to {c.MAX_LAC}; "
        f"to {c.MAX_NR_TAC} for nr).",
    ),
    Field(
        "cellId",
        Kind.integer,
        f"The cell id (CID, UTRAN CID or ECI; {c.MIN_CID} to {c.MAX_CID}).",
    ),
    Field(
        "newRadioCellId",
        Kind.integer,
        "The 36-bit NR cell identity (NCI) of a 5G cell; used instead of cellId when present.",
    ),
    _AGE,
    Field(
        "primaryScramblingCode",
        Kind.integer,
        f"The primary scrambling code (WCDMA, {c.MIN_PSC} to {c.MAX_PSC}) "
        f"or physical cell id (LTE to {c.MAX_PSC_LTE}, NR to {c.MAX_PCI_NR}).",
    ),
    Field(
        "psc",
        Kind.integer,
        "Alias of primaryScramblingCode, used when that is absent.",
        alias_of="primaryScramblingCode",
    ),
    Field(
        "signalStrength",
        Kind.integer,
        f"Received signal strength in dBm ({c.MIN_CELL_SIGNAL_DBM} to {c.MAX_CELL_SIGNAL_DBM}).",
    ),
    Field(
        "timingAdvance",
        Kind.integer,
        f"The timing advance ({c.MIN_CELL_TA} to {c.MAX_CELL_TA}).",
    ),
)
FALLBACK_FIELDS = (
    Field("lacf", Kind.boolean, "Answer from the cells' location area when no cell is known."),
    Field("ipf", Kind.boolean, "Answer from the client's IP address when nothing else does."),
)
LOCATE_FIELDS = (
    Field("carrier", Kind.string, "The client's network operator; not used to locate."),
    Field(
        "considerIp",
        Kind.boolean,
        "Whether the client's IP address may answer when the networks do not "
        "(the IP fallback); ignored when fallbacks is present.",
    ),
    Field(
        "homeMobileCountryCode",
        Kind.integer,
        "The MCC of the client's home network; not used to locate.",
    ),
    Field(
        "homeMobileNetworkCode",
        Kind.integer,
        "The MNC of the client's home network; not used to locate.",
    ),
    Field(
        "radioType",
        Kind.choice,
        "The radio of the cells that do not name their own.",
        choices=RADIO_TYPES,
    ),
    Field(
        "bluetoothBeacons",
        Kind.array,
        f"The Bluetooth beacons the client sees (the {c.MAX_BLUES_IN_QUERY} strongest are "
        f"looked up; at least {c.MIN_BLUES_IN_QUERY} known ones give a position).",
        fields=BLUE_FIELDS,
    ),
    Field(
        "cellTowers",
        Kind.array,
        f"The cells the client sees (the {c.MAX_CELLS_IN_QUERY} strongest are looked up).",
        fields=CELL_FIELDS,
    ),
    Field(
        "wifiAccessPoints",
        Kind.array,
        f"The Wi-Fi access points the client sees (the {c.MAX_WIFIS_IN_QUERY} strongest are "
        f"looked up; at least {c.MIN_WIFIS_IN_QUERY} known ones give a position).",
        fields=WIFI_FIELDS,
    ),
    Field(
        "fallbacks",
        Kind.object,
        "Which fallbacks may answer; each flag defaults to true. When present, "
        "considerIp is ignored.",
        fields=FALLBACK_FIELDS,
    ),
)

_TOP_STRINGS = names(LOCATE_FIELDS, Kind.string)
_TOP_INTS = names(LOCATE_FIELDS, Kind.integer)
_BLUE_INTS = names(BLUE_FIELDS, Kind.integer)
_WIFI_INTS = names(WIFI_FIELDS, Kind.integer)
_CELL_INTS = names(CELL_FIELDS, Kind.integer)


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


def _empty() -> LocateRequest:
    """What :func:`_parse` makes of ``{}`` (an empty body: an IP-only query)."""
    return LocateRequest(
        considered={"blue": 0, "cell": 0, "wifi": 0}, wifi_fields=[], cell_fields=([], [])
    )


def _parse(data: Any) -> LocateRequest:
    if type(data) is dict and not data:
        return _empty()  # the most frequent body: 0.9 µs instead of 2.2
    if not isinstance(data, dict):
        raise _Invalid(
            "", f'"{data}" is not a mapping type: Does not implement dict-like functionality.'
        )
    for name in _TOP_STRINGS:
        _string(data.get(name), name)
    for name in _TOP_INTS:
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
