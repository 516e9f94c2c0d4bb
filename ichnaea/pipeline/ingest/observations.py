"""The internal exporter's transform: export items → observations, datamap grids, counts.

A pure function of a batch (no Redis, no database) that runs at tens of
thousands of observations per second per core, so it works on plain dicts and
local variables. Spec: pipeline.md section 7. Steps 1, 3 and 4 run compiled
for the entries real clients send (``ichnaea/_fast/_reports.pyx``: the
transform about twice as fast, ``benchmarks/bench_internal_batch.py
--python-path``); anything else takes the Python functions below, which are
the specification and which ``tests/_fast/test_reports.py`` holds the
kernels to.

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
2. **Validate** (7.2, :mod:`ichnaea.pipeline.ingest.validation`). The report
   position must lie inside some region: one vectorised
   ``Geocoder.any_region`` call per batch.
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

5G NR cells (our extension) go to ``update_cell_nr`` with the ranges of
:mod:`ichnaea.pipeline.ingest.validation`.

Decisions on the spec's quirks (pipeline.md section 24) and open points
-----------------------------------------------------------------------
* 1: grids are always computed; whether to push them (MAPBOX_TOKEN) is the
  exporter's decision, not this transform's.
* 3: the Wi-Fi/Bluetooth shard is the 5th hex character of the MAC.
* 4: position ``source`` is accepted by name (any case; ``gps`` means gnss and
  ``manual`` means fixed, as the submit API maps them) or by number 0/3/6/9;
  anything else is null, which the station updater treats as gnss.
* 7 and 8: see :mod:`ichnaea.pipeline.ingest.validation`.
* 9: one Wi-Fi network is enough for a report.
* 19 (replaced): Wi-Fi networks whose SSID opts out (``_nomap``, ``_optout``,
  :mod:`ichnaea.privacy`) are left out in the flatten step, as if absent.
* A non-string or empty ``api_key`` counts as "no key" (``None``).
* Radio names are read case-insensitively, ``umts`` meaning wcdma; an unknown
  cell radio name falls back to the report's ``radioType``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ichnaea import _fast
from ichnaea.broker import keyspace
from ichnaea.codecs import datamap_grid, datamap_shard_id, encode_datamap_grid
from ichnaea.enums import ReportSource
from ichnaea.geocode import Geocoder
from ichnaea.mcc import ALL_VALID_MCCS
from ichnaea.pipeline.ingest.validation import (
    CELL_LIMITS,
    SOURCE_NUMBERS,
    Entry,
    validate_blue,
    validate_cell,
    validate_report,
    validate_wifi,
)
from ichnaea.privacy import WIFI_LIST, strip_opted_out

# "Better" comparators: (field, whether higher is better).
_Comparators = tuple[tuple[str, bool], ...]

_SOURCES: Final = {"fixed": ReportSource.fixed.value, "gnss": ReportSource.gnss.value,
                   "fused": ReportSource.fused.value, "query": ReportSource.query.value,
                   "gps": ReportSource.gnss.value, "manual": ReportSource.fixed.value}  # fmt: skip
_RADIO_NAMES: Final = {"gsm": "gsm", "wcdma": "wcdma", "umts": "wcdma", "lte": "lte", "nr": "nr",
                       "cdma": "cdma"}  # fmt: skip
_CELL_QUEUES: Final = {
    limits.radio: keyspace.station_queue("cell", name) for name, limits in CELL_LIMITS.items()
}
# Kind -> the MAC's 5th hex digit -> its shard queue.
_MAC_QUEUES: Final = {
    kind: {digit: keyspace.station_queue(kind, digit) for digit in "0123456789abcdef"}
    for kind in ("blue", "wifi")
}


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


def _as_int(value: Any) -> int | None:
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is float:
        return int(value) if math.isfinite(value) else None
    if kind is str:
        try:
            return int(value)
        except ValueError:
            number = _as_float(value)
            return None if number is None else int(number)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return None


def _as_float(value: Any) -> float | None:
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
    number = _as_int(value)
    return number if number in SOURCE_NUMBERS else None


# -- 7.1 flatten --------------------------------------------------------------

_POSITION_FIELDS: Final = (
    ("latitude", "lat"), ("longitude", "lon"), ("accuracy", "accuracy"),
    ("altitude", "altitude"), ("altitudeAccuracy", "altitude_accuracy"),
    ("heading", "heading"), ("pressure", "pressure"), ("speed", "speed"),
)  # fmt: skip
# (v2 name, internal name, coercion); "radio" and "serving" only count for emptiness
# of Wi-Fi and cell entries respectively, and are not part of the observations.
_BLUE_FIELDS: Final = (
    ("macAddress", "mac", _str), ("age", "age", _as_int), ("signalStrength", "signal", _as_int),
)  # fmt: skip
_WIFI_FIELDS: Final = (
    ("macAddress", "mac", _str), ("age", "age", _as_int), ("channel", "channel", _as_int),
    ("frequency", "frequency", _as_int), ("radioType", "radio", _str),
    ("signalToNoiseRatio", "snr", _as_int), ("signalStrength", "signal", _as_int),
)  # fmt: skip
_CELL_FIELDS: Final = (
    ("radioType", "radio", _radio), ("mobileCountryCode", "mcc", _as_int),
    ("mobileNetworkCode", "mnc", _as_int), ("locationAreaCode", "lac", _as_int),
    ("cellId", "cid", _as_int), ("age", "age", _as_int), ("asu", "asu", _as_int),
    ("primaryScramblingCode", "psc", _as_int), ("serving", "serving", _as_int),
    ("signalStrength", "signal", _as_int), ("timingAdvance", "ta", _as_int),
)  # fmt: skip


def _field_table(
    fields: tuple[tuple[str, str, Any], ...],
) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    return {source_name: (name, convert) for source_name, name, convert in fields}


_BLUE_TABLE: Final = _field_table(_BLUE_FIELDS)
_WIFI_TABLE: Final = _field_table(_WIFI_FIELDS)
_CELL_TABLE: Final = _field_table(_CELL_FIELDS)
_POSITION_TABLE: Final = dict(_POSITION_FIELDS)

# The same tables for the compiled flatten (ichnaea/_fast/_reports.pyx): each
# coercion as the kernel's code for it.
_FIELD_CODES: Final = {_str: 0, _as_int: 1, _radio: 2}


def _coded_table(
    fields: tuple[tuple[str, str, Any], ...],
) -> dict[str, tuple[str, int]]:
    return {source_name: (name, _FIELD_CODES[convert]) for source_name, name, convert in fields}


# (v2 list name, flat name, Python table, kernel table) of each entry list.
_LISTS: Final = (
    ("bluetoothBeacons", "blue", _BLUE_TABLE, _coded_table(_BLUE_FIELDS)),
    ("cellTowers", "cell", _CELL_TABLE, _coded_table(_CELL_FIELDS)),
    (WIFI_LIST, "wifi", _WIFI_TABLE, _coded_table(_WIFI_FIELDS)),
)


def _entries(
    value: Any, fields: Mapping[str, tuple[str, Callable[[Any], Any]]], gps_age: int
) -> list[Entry]:
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if not isinstance(item, dict):
            continue
        entry = {}
        # Only the fields the entry has: every coercion maps null to null.
        for source_name, raw in item.items():
            field = fields.get(source_name)
            if field is not None and raw is not None:
                converted = field[1](raw)
                if converted is not None:
                    entry[field[0]] = converted
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
    Plain input goes through the compiled flatten (``_fast.position_fields``,
    ``_fast.flat_entries``); whatever it hands back takes the Python path
    (:func:`_position` and :func:`_entries`), which the tests hold it equal to.
    """
    if not isinstance(report, dict):
        return None
    position = report.get("position")
    gps_age = 0
    flat: dict[str, Any] = {}
    if isinstance(position, dict):
        fields = _fast.position_fields(position, _POSITION_TABLE)
        flat = _position(position) if fields is None else fields
        source = _source(position.get("source"))
        if source is not None:
            flat["source"] = source
        gps_age = _as_int(position.get("age")) or 0

    lists = []
    for list_name, flat_name, table, coded in _LISTS:
        value = report.get(list_name)
        entries = _fast.flat_entries(value, coded, _RADIO_NAMES, gps_age, list_name == WIFI_LIST)
        if entries is None:
            if list_name == WIFI_LIST:
                # Opted-out networks (ichnaea.privacy) are dropped whoever queued the report.
                value = strip_opted_out(report).get(list_name)
            entries = _entries(value, table, gps_age)
        lists.append((flat_name, entries))
    if not any(entries for _, entries in lists):
        return None
    blue, cell, wifi = (entries for _, entries in lists)
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

    timestamp = _as_int(report.get("timestamp"))
    if timestamp is not None:
        # A zero timestamp is left alone (it fails validation anyway).
        flat["timestamp"] = timestamp - gps_age if timestamp else timestamp
    return flat


def _position(position: dict[str, Any]) -> dict[str, Any]:
    """The usable position floats, by their internal names."""
    flat = {}
    for source_name, raw in position.items():
        name = _POSITION_TABLE.get(source_name)
        if name is not None and raw is not None:
            number = _as_float(raw)
            if number is not None:
                flat[name] = number
    return flat


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
        queue = _CELL_QUEUES[key[0]] if kind == "cell" else _MAC_QUEUES[kind][key[4]]
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
        for kind, validate, comparators, code, names, queues in _KINDS:
            entries = flat.get(kind)
            if entries:
                # Compiled for plain entries; None hands them to the Python path.
                added = _fast.add_observations(
                    code, entries, fields, observations, counter, names, queues, ALL_VALID_MCCS
                )
                if added is None:
                    added = _add_observations(
                        kind, validate, comparators, entries, fields, observations, counter
                    )
                produced += added

        if produced:
            grids.add(datamap_grid(fields["lat"], fields["lon"]))
        else:
            counter["report_drop"] += 1

    datamap: dict[str, set[bytes]] = {}
    for lat, lon in grids:
        queue = keyspace.datamap_queue(datamap_shard_id(lat, lon))
        datamap.setdefault(queue, set()).add(encode_datamap_grid(lat, lon))
    return InternalBatch(observations=observations, datamap=datamap, counts=counts)


# Entry kind, validator, its "better" comparators in the spec's order (field,
# whether higher is better), and for the compiled path (_fast.add_observations):
# the kind's code, its counter names and its queues by MAC digit or radio.
_KINDS: Final[
    tuple[
        tuple[
            str,
            Callable[[Mapping[str, Any]], Entry | None],
            _Comparators,
            int,
            tuple[str, str],
            Mapping[Any, str],
        ],
        ...,
    ]
] = (
    ("blue", validate_blue, (("signal", True), ("age", False)), _fast.KIND_BLUE,
     ("blue_upload", "blue_drop"), _MAC_QUEUES["blue"]),
    ("cell", validate_cell, (("ta", False), ("signal", True), ("asu", True), ("age", False)),
     _fast.KIND_CELL, ("cell_upload", "cell_drop"), _CELL_QUEUES),
    ("wifi", validate_wifi, (("signal", True), ("snr", True), ("age", False)), _fast.KIND_WIFI,
     ("wifi_upload", "wifi_drop"), _MAC_QUEUES["wifi"]),
)  # fmt: skip
