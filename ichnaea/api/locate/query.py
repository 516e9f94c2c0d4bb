"""Stage B: the query model — normalised, range-checked, deduplicated lookups.

Every entry that passed the type-strict stage A is checked value by value:
an out-of-range value becomes null, and an entry without a usable key
(a valid MAC; radio, MCC, MNC and LAC for cells) is dropped. Nothing here
raises. Then:

* duplicates (same MAC, cellid or areaid) keep the "better" entry, in the
  position of the first (spec 2.7);
* beyond ``MAX_WIFIS_IN_QUERY``, ``MAX_BLUES_IN_QUERY`` or
  ``MAX_CELLS_IN_QUERY`` networks of a type, only the strongest signals are
  kept (a missing or 0 reading ranks last; ties keep the earlier entry),
  in request order: a 2 MB body must not cost 35,000 station lookups;
* fewer than 2 Wi-Fi networks, or fewer than 2 Bluetooth beacons, empty
  that list: one real MAC must not reveal its position (privacy rule);
* each cell entry is validated twice, as a full cell (needs LAC and CID)
  and as a cell area (needs LAC); cell areas are dropped when ``lacf`` is
  off.

The query also answers what the search needs: ``expected_accuracy`` (the
best accuracy class the data could reach), ``geoip_only``, ``networks()``
(binary ids per type) and ``json()`` (the normalised query sent to
fallback providers and stored as a report).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ichnaea.api.locate.constants import (
    CELL_SIGNAL_RANGE_DBM,
    MAX_AGE_MS,
    MAX_BLUE_SIGNAL_DBM,
    MAX_BLUES_IN_QUERY,
    MAX_CELL_SIGNAL_DBM,
    MAX_CELL_TA,
    MAX_CELLS_IN_QUERY,
    MAX_CID,
    MAX_CID_GSM,
    MAX_LAC,
    MAX_MNC,
    MAX_NR_CID,
    MAX_NR_TAC,
    MAX_PCI_NR,
    MAX_PSC,
    MAX_PSC_LTE,
    MAX_WIFI_CHANNEL,
    MAX_WIFI_FREQUENCY_MHZ,
    MAX_WIFI_SIGNAL_DBM,
    MAX_WIFI_SNR,
    MAX_WIFIS_IN_QUERY,
    MIN_AGE_MS,
    MIN_BLUE_SIGNAL_DBM,
    MIN_BLUES_IN_QUERY,
    MIN_CELL_SIGNAL_DBM,
    MIN_CELL_TA,
    MIN_CID,
    MIN_LAC,
    MIN_MNC,
    MIN_PSC,
    MIN_WIFI_CHANNEL,
    MIN_WIFI_FREQUENCY_MHZ,
    MIN_WIFI_SIGNAL_DBM,
    MIN_WIFI_SNR,
    MIN_WIFIS_IN_QUERY,
    WIFI_TEST_MAC,
    DataAccuracy,
)
from ichnaea.api.locate.schemas import Entry, LocateRequest
from ichnaea.codecs import encode_areaid, encode_cellid
from ichnaea.enums import Radio
from ichnaea.geoip import GeoIPRecord
from ichnaea.mcc import is_valid_mcc

_HEX = frozenset("0123456789abcdef")
_INVALID_MACS = frozenset(("000000000000", "ffffffffffff", WIFI_TEST_MAC))
_CELL_RADIOS = {"gsm": Radio.gsm, "wcdma": Radio.wcdma, "lte": Radio.lte, "nr": Radio.nr}


def normalise_mac(value: str | None) -> str | None:
    """12 lower-case hex characters, or None when the MAC is not valid (spec 2.3)."""
    if not value:
        return None
    if ":" in value or "-" in value or "." in value:
        value = value.replace(":", "").replace("-", "").replace(".", "")
    value = value.lower()
    if len(value) != 12 or not _HEX.issuperset(value) or value in _INVALID_MACS:
        return None
    return value


def _within(value: int | None, lo: int, hi: int) -> int | None:
    return value if value is not None and lo <= value <= hi else None


def channel_frequency(channel: int | None, frequency: int | None) -> tuple[int | None, int | None]:
    """Derive the missing one of a Wi-Fi channel and frequency (spec 2.5)."""
    if channel is not None and frequency is None:
        if 0 < channel < 14:
            frequency = 5 * channel + 2407
        elif channel == 14:
            frequency = 2484
        elif 14 < channel < 186:
            frequency = 5 * channel + 5000
        elif 185 < channel < 200:
            frequency = 5 * channel + 4000
    elif frequency is not None and channel is None:
        if 2411 < frequency < 2473:
            channel = (frequency - 2407) // 5
        elif frequency == 2484:
            channel = 14
        elif 4914 < frequency < 4996:
            channel = (frequency - 4000) // 5
        elif 5074 < frequency < 5926:
            channel = (frequency - 5000) // 5
    return channel, frequency


@dataclass(slots=True)
class BlueLookup:
    mac: str
    name: str | None = None
    age: int | None = None
    signal: int | None = None

    def better(self, other: BlueLookup) -> bool:
        return _better(((self.signal, other.signal, True), (self.age, other.age, False)))

    def json(self) -> dict[str, Any]:
        return _compact(
            macAddress=self.mac, age=self.age, name=self.name, signalStrength=self.signal
        )


@dataclass(slots=True)
class WifiLookup:
    mac: str
    ssid: str | None = None
    age: int | None = None
    channel: int | None = None
    frequency: int | None = None
    signal: int | None = None
    snr: int | None = None

    def better(self, other: WifiLookup) -> bool:
        return _better(
            (
                (self.signal, other.signal, True),
                (self.snr, other.snr, True),
                (self.age, other.age, False),
            )
        )

    def json(self) -> dict[str, Any]:
        return _compact(
            macAddress=self.mac,
            age=self.age,
            channel=self.channel,
            frequency=self.frequency,
            signalStrength=self.signal,
            signalToNoiseRatio=self.snr,
            ssid=self.ssid,
        )


@dataclass(slots=True)
class CellLookup:
    """A full cell (``cid`` set) or a cell area (``cid`` None)."""

    radio: Radio
    mcc: int
    mnc: int
    lac: int
    cid: int | None = None
    psc: int | None = None
    age: int | None = None
    signal: int | None = None
    ta: int | None = None

    @property
    def areaid(self) -> bytes:
        return encode_areaid(self.radio, self.mcc, self.mnc, self.lac)

    @property
    def cellid(self) -> bytes:
        if self.cid is None:
            raise ValueError("a cell area has no cellid")
        return encode_cellid(self.radio, self.mcc, self.mnc, self.lac, self.cid)

    def better(self, other: CellLookup) -> bool:
        return _better(
            (
                (self.ta, other.ta, False),
                (self.signal, other.signal, True),
                (self.age, other.age, False),
            )
        )

    def json(self) -> dict[str, Any]:
        return _compact(
            radioType=self.radio.name,
            mobileCountryCode=self.mcc,
            mobileNetworkCode=self.mnc,
            locationAreaCode=self.lac,
            cellId=self.cid,
            primaryScramblingCode=self.psc,
            age=self.age,
            signalStrength=self.signal,
            timingAdvance=self.ta,
        )


def _compact(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _better(pairs: Iterable[tuple[int | None, int | None, bool]]) -> bool:
    """True if, for any field both sides have, the existing value wins (spec 2.7)."""
    for mine, theirs, higher_wins in pairs:
        if mine is None or theirs is None:
            continue
        if (mine > theirs) if higher_wins else (mine < theirs):
            return True
    return False


def _blue(entry: Entry) -> BlueLookup | None:
    mac = normalise_mac(entry["macAddress"])
    if mac is None:
        return None
    return BlueLookup(
        mac=mac,
        name=entry["name"],
        age=_within(entry["age"], MIN_AGE_MS, MAX_AGE_MS),
        signal=_within(entry["signalStrength"], MIN_BLUE_SIGNAL_DBM, MAX_BLUE_SIGNAL_DBM),
    )


def _wifi(entry: Entry) -> WifiLookup | None:
    mac = normalise_mac(entry["macAddress"])
    if mac is None:
        return None
    channel, frequency = channel_frequency(
        _within(entry["channel"], MIN_WIFI_CHANNEL, MAX_WIFI_CHANNEL),
        _within(entry["frequency"], MIN_WIFI_FREQUENCY_MHZ, MAX_WIFI_FREQUENCY_MHZ),
    )
    return WifiLookup(
        mac=mac,
        ssid=entry["ssid"],
        age=_within(entry["age"], MIN_AGE_MS, MAX_AGE_MS),
        channel=channel,
        frequency=frequency,
        signal=_within(entry["signalStrength"], MIN_WIFI_SIGNAL_DBM, MAX_WIFI_SIGNAL_DBM),
        snr=_within(entry["signalToNoiseRatio"], MIN_WIFI_SNR, MAX_WIFI_SNR),
    )


def _cell_signal(radio: Radio, value: int | None) -> int | None:
    value = _within(value, MIN_CELL_SIGNAL_DBM, MAX_CELL_SIGNAL_DBM)
    lo, hi = CELL_SIGNAL_RANGE_DBM[radio]
    return _within(value, lo, hi)


def _cells(entry: Entry) -> tuple[CellLookup | None, CellLookup | None]:
    """The (full cell, cell area) lookups of one ``cellTowers`` entry."""
    radio = _CELL_RADIOS.get(entry["radioType"] or "")
    mcc, mnc = entry["mobileCountryCode"], entry["mobileNetworkCode"]
    if radio is None or mcc is None or not is_valid_mcc(mcc):
        return None, None
    mnc = _within(mnc, MIN_MNC, MAX_MNC)
    lac = _within(entry["locationAreaCode"], MIN_LAC, MAX_NR_TAC if radio is Radio.nr else MAX_LAC)
    if mnc is None or lac is None:
        return None, None
    age = _within(entry["age"], MIN_AGE_MS, MAX_AGE_MS)
    signal = _cell_signal(radio, entry["signalStrength"])
    ta = None if radio is Radio.wcdma else _within(entry["timingAdvance"], MIN_CELL_TA, MAX_CELL_TA)
    # 5G NR tracking areas (24-bit TAC) have their own table (9-byte keys).
    area = CellLookup(radio, mcc, mnc, lac, None, None, age, signal, ta)

    if radio is Radio.nr:
        cid = _within(entry["newRadioCellId"] or entry["cellId"], MIN_CID, MAX_NR_CID)
        psc = _within(entry["primaryScramblingCode"], MIN_PSC, MAX_PCI_NR)
    else:
        cid = _within(entry["cellId"], MIN_CID, MAX_CID)
        psc = entry["primaryScramblingCode"]
        if radio is Radio.lte and psc is not None and psc > MAX_PSC_LTE:
            psc = None
        psc = _within(psc, MIN_PSC, MAX_PSC)
    if cid is None:
        return None, area
    cell_radio = radio
    if radio is Radio.gsm and cid > MAX_CID_GSM:
        # Quirk Q10, kept: such a "gsm" cell is a UMTS cell; only the cell
        # lookup is corrected, the area keeps the radio the client sent.
        cell_radio = Radio.wcdma
    return CellLookup(cell_radio, mcc, mnc, lac, cid, psc, age, signal, ta), area


def _cell_key(cell: CellLookup) -> tuple[int, int, int, int, int | None]:
    return cell.radio, cell.mcc, cell.mnc, cell.lac, cell.cid


def _area_key(cell: CellLookup) -> tuple[int, int, int, int]:
    return cell.radio, cell.mcc, cell.mnc, cell.lac


T = TypeVar("T", BlueLookup, WifiLookup, CellLookup)

# Radio(code) by indexing: the enum's call costs more than the rest of a lookup's set-up.
_RADIOS = tuple(Radio(code) for code in range(max(Radio) + 1))


def _dedup(items: Iterable[T], key: Callable[[T], object]) -> list[T]:
    kept: dict[object, T] = {}
    for item in items:
        k = key(item)
        existing = kept.get(k)
        if existing is None or not existing.better(item):
            kept[k] = item
    return list(kept.values())


def _strongest(items: list[T], cap: int) -> list[T]:
    """At most ``cap`` items, those with the strongest signals, in their original order."""
    if len(items) <= cap:
        return items
    # A 0 reading counts as missing, as in the search (quirk Q9); the sort is
    # stable, so among equal signals the earlier entry wins.
    ranked = sorted(range(len(items)), key=lambda i: -(items[i].signal or -math.inf))
    return [items[i] for i in sorted(ranked[:cap])]


def _lookups(
    request: LocateRequest,
) -> tuple[list[BlueLookup], list[WifiLookup], list[CellLookup], list[CellLookup]]:
    """Stage B of a request's entries: valid, deduplicated, the strongest within the caps."""
    if not (request.blue or request.wifi or request.cell) and _no_fields(request):
        return [], [], [], []  # no network (an IP-only query, the most frequent)
    # Beacons are rare in a query: no generator and dict for none (0.3 µs).
    blue = (
        _dedup((b for e in request.blue if (b := _blue(e))), lambda b: b.mac)
        if request.blue
        else []
    )
    if request.wifi_fields is not None:  # stage B done by the compiled fast path
        wifi = [WifiLookup(*fields) for fields in request.wifi_fields]
    else:
        wifi = _dedup((w for e in request.wifi if (w := _wifi(e))), lambda w: w.mac)
    if request.cell_fields is not None:  # stage B done by the compiled fast path
        cell_fields, area_fields = request.cell_fields
        cell = [CellLookup(_RADIOS[fields[0]], *fields[1:]) for fields in cell_fields]
        area = [CellLookup(_RADIOS[fields[0]], *fields[1:]) for fields in area_fields]
    else:
        pairs = [_cells(e) for e in request.cell]
        # Keyed by the fields the cell id and area id encode (one-to-one, cheaper).
        cell = _dedup((c for c, _ in pairs if c is not None), _cell_key)
        area = _dedup((a for _, a in pairs if a is not None), _area_key)
    blue = _strongest(blue, MAX_BLUES_IN_QUERY)
    wifi = _strongest(wifi, MAX_WIFIS_IN_QUERY)
    cell = _strongest(cell, MAX_CELLS_IN_QUERY)
    area = _strongest(area, MAX_CELLS_IN_QUERY)
    return blue, wifi, cell, area


def _no_fields(request: LocateRequest) -> bool:
    """Whether the compiled stage B found no Wi-Fi, cell or area (or did not run)."""
    cells = request.cell_fields
    return not request.wifi_fields and (cells is None or not (cells[0] or cells[1]))


@dataclass(slots=True)
class Query:
    """A normalised locate or region query."""

    api_type: str  # "locate" or "region"
    ip: str | None = None
    geoip: GeoIPRecord | None = None
    lacf: bool = True
    ipf: bool = True
    blue: list[BlueLookup] = field(default_factory=list)
    wifi: list[WifiLookup] = field(default_factory=list)
    cell: list[CellLookup] = field(default_factory=list)
    cell_area: list[CellLookup] = field(default_factory=list)
    # Entry counts before validation, for logs and metrics.
    considered: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        request: LocateRequest,
        *,
        api_type: str,
        ip: str | None,
        geoip: GeoIPRecord | None,
    ) -> Query:
        blue, wifi, cell, area = _lookups(request)
        return cls(
            api_type=api_type,
            ip=ip,
            geoip=geoip,
            lacf=request.lacf,
            ipf=request.ipf,
            blue=blue if len(blue) >= MIN_BLUES_IN_QUERY else [],
            wifi=wifi if len(wifi) >= MIN_WIFIS_IN_QUERY else [],
            cell=cell,
            cell_area=area if request.lacf else [],
            considered=request.considered,
        )

    @property
    def region(self) -> str | None:
        return self.geoip.region_code if self.geoip is not None else None

    @property
    def has_network_data(self) -> bool:
        return bool(self.blue or self.cell or self.cell_area or self.wifi)

    @property
    def geoip_only(self) -> bool | None:
        if self.has_network_data:
            return False
        return True if self.geoip is not None else None

    @property
    def expected_accuracy(self) -> DataAccuracy:
        levels = [DataAccuracy.none]
        if self.api_type == "locate":
            if self.cell:
                levels.append(DataAccuracy.medium)
            if self.blue or self.wifi:
                levels.append(DataAccuracy.high)
        elif self.blue or self.cell or self.wifi:
            levels.append(DataAccuracy.low)
        if (self.cell_area and self.lacf) or (self.ip and self.ipf):
            levels.append(DataAccuracy.low)
        return min(levels, key=lambda level: level.value)

    def networks(self) -> dict[str, set[bytes]]:
        return {
            "area": {a.areaid for a in self.cell_area},
            "blue": {bytes.fromhex(b.mac) for b in self.blue},
            "cell": {c.cellid for c in self.cell},
            "wifi": {bytes.fromhex(w.mac) for w in self.wifi},
        }

    def json(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.blue:
            result["bluetoothBeacons"] = [b.json() for b in self.blue]
        if self.cell:
            result["cellTowers"] = [c.json() for c in self.cell]
        if self.wifi:
            result["wifiAccessPoints"] = [w.json() for w in self.wifi]
        result["fallbacks"] = {"ipf": self.ipf, "lacf": self.lacf}
        return result
