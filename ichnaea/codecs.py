"""Pure encoders and decoders of the binary keys stored in the database.

Every function here is a total function of its arguments: no I/O, no
database, no validation beyond what the binary format itself can hold (a
value that does not fit raises ``ValueError``). Semantic checks, such as
"is this a valid MCC", belong to the request and report schemas.

Formats (all big-endian, ``struct`` notation):

* MAC: 12 lower-case hex characters ⇄ the 6 raw bytes (``mac`` columns).
* Cell id (``cellid`` columns): ``!bHHHI`` (11 bytes) = radio, mcc, mnc,
  16-bit lac, 32-bit cid for GSM, WCDMA and LTE; ``!bHHIQ`` (17 bytes) =
  radio, mcc, mnc, 24-bit TAC in 32 bits, 36-bit NR cell identity in 64
  bits for 5G NR (``Radio.nr``). The length tells the two apart.
* Area id (``cell_area.areaid``): ``!bHHH`` (7 bytes) = radio, mcc, mnc, lac.
* Datamap grid (``datamap_*.grid``): ``!II`` (8 bytes) = lat + 90000,
  lon + 180000, where lat and lon are degrees scaled by 1000 and rounded.

Shard selection also lives here because it is a pure function of a key:
Wi-Fi and Bluetooth stations are spread over 16 tables by the 5th hex
character of the MAC, datamap grid cells over four tables by quadrant.
"""

from __future__ import annotations

import string
import struct
from typing import NamedTuple

from ichnaea import _fast
from ichnaea.enums import Radio

MAC_HEX_LENGTH = 12
MAC_BYTES = 6
CELLID_BYTES = 11
NR_CELLID_BYTES = 17
AREAID_BYTES = 7
NR_AREAID_BYTES = 9
DATAMAP_GRID_BYTES = 8

# Scaled-degree bounds of the datamap grid and the quadrant split points.
DATAMAP_LAT_MAX = 90_000
DATAMAP_LON_MAX = 180_000
DATAMAP_SPLIT_LAT = 36_000
DATAMAP_SPLIT_LON = 5_000
DATAMAP_SHARD_IDS = ("ne", "nw", "se", "sw")

# The 16 shard suffixes of wifi_shard_* / blue_shard_*, in table order.
MAC_SHARD_IDS = tuple("0123456789abcdef")

_HEX_DIGITS = frozenset(string.hexdigits)
_CELLID = struct.Struct("!bHHHI")
_NR_CELLID = struct.Struct("!bHHIQ")
_AREAID = struct.Struct("!bHHH")
_NR_AREAID = struct.Struct("!bHHI")
_DATAMAP_GRID = struct.Struct("!II")
# Each radio code's key layouts, found by the code as Radio(code) finds the
# radio (a dict lookup costs a tenth of the enum call, and keys are made
# for every cell of every query and observation).
_CELLID_LAYOUTS = {int(r): _NR_CELLID if r is Radio.nr else _CELLID for r in Radio}
_AREAID_LAYOUTS = {int(r): _NR_AREAID if r is Radio.nr else _AREAID for r in Radio}


class CellId(NamedTuple):
    """The identity of one cell; ``lac`` is the TAC and ``cid`` the NCI for NR."""

    radio: Radio
    mcc: int
    mnc: int
    lac: int
    cid: int


class AreaId(NamedTuple):
    """The identity of one location/tracking area."""

    radio: Radio
    mcc: int
    mnc: int
    lac: int


def _check_mac_hex(mac: str) -> None:
    if len(mac) != MAC_HEX_LENGTH or not _HEX_DIGITS.issuperset(mac):
        raise ValueError(f"MAC must be {MAC_HEX_LENGTH} hex characters, got {mac!r}")


def encode_mac(mac: str) -> bytes:
    """Return the 6 raw bytes of a MAC given as 12 hex characters (any case)."""
    # In C: the station stage keys every queued Wi-Fi and Bluetooth observation.
    mac_bytes: bytes = _fast.mac_bytes(mac)
    return mac_bytes


def decode_mac(value: bytes) -> str:
    """Return the 12 lower-case hex characters of a 6-byte MAC."""
    if len(value) != MAC_BYTES:
        raise ValueError(f"MAC must be {MAC_BYTES} bytes, got {len(value)}")
    return value.hex()


def mac_shard_id(mac: str) -> str:
    """Return the shard suffix (``0``-``f``) of a Wi-Fi or Bluetooth MAC.

    It is the 5th hex character of the lower-case MAC, so ``a82067491500``
    lives in ``wifi_shard_6``. The first four characters are mostly a
    vendor prefix and would spread the rows badly.
    """
    _check_mac_hex(mac)
    return mac[4].lower()


def _radio(value: int) -> Radio:
    try:
        return Radio(value)
    except ValueError:
        raise ValueError(f"unknown radio {value!r}") from None


def encode_cellid(radio: int, mcc: int, mnc: int, lac: int, cid: int) -> bytes:
    """Return the binary cell key: 11 bytes, or 17 bytes for ``Radio.nr``."""
    try:
        layout = _CELLID_LAYOUTS[radio]
    except (KeyError, TypeError):
        raise ValueError(f"unknown radio {radio!r}") from None
    try:
        return layout.pack(radio, mcc, mnc, lac, cid)
    except struct.error as exc:
        raise ValueError(
            f"cell ({radio}, {mcc}, {mnc}, {lac}, {cid}) does not fit {layout.format}: {exc}"
        ) from None


def decode_cellid(value: bytes) -> CellId:
    """Return the cell identity of an 11- or 17-byte binary cell key."""
    if len(value) == CELLID_BYTES:
        radio, mcc, mnc, lac, cid = _CELLID.unpack(value)
        if radio == Radio.nr:
            raise ValueError("an 11-byte cell key cannot hold an NR cell")
    elif len(value) == NR_CELLID_BYTES:
        radio, mcc, mnc, lac, cid = _NR_CELLID.unpack(value)
        if radio != Radio.nr:
            raise ValueError(f"a 17-byte cell key must be an NR cell, got radio {radio}")
    else:
        raise ValueError(
            f"cell key must be {CELLID_BYTES} or {NR_CELLID_BYTES} bytes, got {len(value)}"
        )
    return CellId(_radio(radio), mcc, mnc, lac, cid)


def encode_areaid(radio: int, mcc: int, mnc: int, lac: int) -> bytes:
    """Return the binary area key.

    7 bytes (``!bHHH``, a 16-bit LAC/TAC) for gsm, wcdma and lte, as in the
    original; 9 bytes (``!bHHI``) for 5G NR, whose tracking area codes have
    24 bits.
    """
    try:
        layout = _AREAID_LAYOUTS[radio]
    except (KeyError, TypeError):
        raise ValueError(f"unknown radio {radio!r}") from None
    try:
        return layout.pack(radio, mcc, mnc, lac)
    except struct.error as exc:
        raise ValueError(
            f"area ({radio}, {mcc}, {mnc}, {lac}) does not fit {layout.format}: {exc}"
        ) from None


def decode_areaid(value: bytes) -> AreaId:
    """Return the area identity of a 7-byte (or, for NR, 9-byte) binary area key."""
    if len(value) == AREAID_BYTES:
        radio, mcc, mnc, lac = _AREAID.unpack(value)
    elif len(value) == NR_AREAID_BYTES and value[0] == Radio.nr:
        radio, mcc, mnc, lac = _NR_AREAID.unpack(value)
    else:
        raise ValueError(
            f"area key must be {AREAID_BYTES} bytes (or {NR_AREAID_BYTES} for NR), got {len(value)}"
        )
    return AreaId(_radio(radio), mcc, mnc, lac)


def datamap_grid(lat_deg: float, lon_deg: float) -> tuple[int, int]:
    """Return the datamap grid cell of a position: degrees times 1000, rounded.

    One grid step is 0.001° (about 111 m of latitude).
    """
    return round(lat_deg * 1000), round(lon_deg * 1000)


def encode_datamap_grid(lat: int, lon: int) -> bytes:
    """Return the 8-byte key of a grid cell given in scaled degrees."""
    if not -DATAMAP_LAT_MAX <= lat <= DATAMAP_LAT_MAX:
        raise ValueError(f"grid latitude {lat} is outside ±{DATAMAP_LAT_MAX}")
    if not -DATAMAP_LON_MAX <= lon <= DATAMAP_LON_MAX:
        raise ValueError(f"grid longitude {lon} is outside ±{DATAMAP_LON_MAX}")
    return _DATAMAP_GRID.pack(lat + DATAMAP_LAT_MAX, lon + DATAMAP_LON_MAX)


def decode_datamap_grid(value: bytes) -> tuple[int, int]:
    """Return the scaled (lat, lon) of an 8-byte grid key."""
    if len(value) != DATAMAP_GRID_BYTES:
        raise ValueError(f"grid key must be {DATAMAP_GRID_BYTES} bytes, got {len(value)}")
    lat, lon = _DATAMAP_GRID.unpack(value)
    return lat - DATAMAP_LAT_MAX, lon - DATAMAP_LON_MAX


def datamap_shard_id(lat: int, lon: int) -> str:
    """Return the datamap table suffix (``ne``, ``nw``, ``se``, ``sw``) of a grid cell.

    The split is not at the equator and prime meridian but at 36° N and 5° E,
    which cuts the densest data (Europe) into roughly equal parts.
    """
    north_south = "s" if lat < DATAMAP_SPLIT_LAT else "n"
    east_west = "w" if lon < DATAMAP_SPLIT_LON else "e"
    return north_south + east_west
