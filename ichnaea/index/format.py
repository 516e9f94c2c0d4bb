"""The on-disk format of the station index: one file per station kind.

A file holds every located station of one kind (``wifi``, ``blue``,
``cell``, ``area``) as fixed-width little-endian records sorted by key, so
that a batch of query keys is found with one ``np.searchsorted`` over the
key column of the memory-mapped records::

    offset 0    header, HEADER_BYTES (64) bytes, struct ``_HEADER`` below
    offset 64   the key column: count keys of KEY_DTYPES[kind], ascending
    then        the value records: count records of VALUE_DTYPES[kind]
                (packed, no padding), in the same order
    then        the region table: region_count codes of 2 ASCII bytes

Keys and values are apart so that the key column is one contiguous array:
``np.searchsorted`` over a strided field of packed records would first
copy the whole column, on every lookup.

Header fields: magic, format version, kind, record size, record count, the
build's generation id (nanoseconds since the epoch when the build started;
the four files of one build share it), build time (seconds since the
epoch), the high-water mark of the source rows' ``modified`` (whole seconds
since the epoch, -1 for an empty build; the later incremental read starts
there), the number of region codes, the CRC-32 of everything after the
header (keys, values and region table) and the CRC-32 of the header itself.
CRC-32 (``zlib.crc32``) is there to catch accidental damage (a flipped
byte, a torn write, a truncated copy), which it detects at more than
1 GB/s when the file is opened; the directory is the service's own, so
tampering is not in the threat model and a cryptographic hash would only
cost open time.

Stations (key + value record, packed, no alignment padding):

* ``wifi``/``blue``, 37 bytes: ``key`` uint64 (the 6-byte MAC read
  big-endian, so numeric order is byte order), ``lat``/``lon`` int32 in
  units of 1e-7 degree, ``radius`` uint32 metres, ``samples`` uint32,
  ``created`` uint16 day, ``modified`` uint32 second, ``last_seen`` uint16
  day, ``block_last`` uint16 day, ``block_count`` uint8, ``region`` uint16
  code into the region table.
* ``cell``, 46 bytes: ``key`` ``S17``, and the same values. The key is the
  codec's 11-byte key zero-padded to 17, or the 17-byte NR key. Why bytes
  and not two uint64: an NR key is radio, mcc, mnc, a 32-bit TAC and a
  64-bit NCI, 136 bits, which two uint64 hold only by narrowing a field the
  schema allows in full; ``S17`` keeps the codec's bytes as they are, its
  order is byte order (all keys of a file have one width), and the radio
  byte keeps padded 11-byte keys apart from NR keys (only NR keys are 17
  bytes long, and their radio byte is 4). Cells are a few per cent of the
  stations, so their 46 bytes barely move the total.
* ``area``, 35 bytes: ``key`` ``S9`` (7-byte areas zero-padded, 9-byte NR
  areas), ``lat``, ``lon``, ``radius`` int32, ``num_cells`` uint32,
  ``created``, ``modified``, ``last_seen``, ``region``.

Precision and ranges: positions are rounded to 1e-7 degree, an error of at
most 5.6 mm on the ground (half a unit of latitude; less for longitude away
from the equator); float32 steps are 1.7 m wide near ±180° (errors up
to 0.85 m) for the same 4 bytes. Days are
counted from 1970-01-01 (uint16, up to 2149-06-05), seconds from the epoch
(uint32, up to 2106); ``modified`` keeps whole seconds (MariaDB ``DATETIME``
stores no more). A NULL field is stored as the type's largest value (the
smallest for the signed area radius) and read back as NaN, as the database
path does; a NULL ``block_count`` is stored as 0, which the blocking rule
treats alike. Region code 0 is "no region".
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np

MAGIC: Final = b"ICHNIDX\n"
FORMAT_VERSION: Final = 1
HEADER_BYTES: Final = 64
REGION_BYTES: Final = 2
KINDS: Final = ("wifi", "blue", "cell", "area")

# magic, version, kind, record size, count, generation, build time,
# high-water modified, region count, payload crc, header crc.
_HEADER = struct.Struct("<8sH6sIQQdqIII")
_HEADER_CRC_OFFSET = _HEADER.size - 4

COORD_SCALE: Final = 10_000_000  # int32 units per degree
NULL_U16: Final = np.iinfo(np.uint16).max
NULL_U32: Final = np.iinfo(np.uint32).max
NULL_I32: Final = np.iinfo(np.int32).min

_STATION_FIELDS = [
    ("lat", "<i4"),
    ("lon", "<i4"),
    ("radius", "<u4"),
    ("samples", "<u4"),
    ("created", "<u2"),
    ("modified", "<u4"),
    ("last_seen", "<u2"),
    ("block_last", "<u2"),
    ("block_count", "u1"),
    ("region", "<u2"),
]

STATION_VALUES: Final = np.dtype(_STATION_FIELDS)
AREA_VALUES: Final = np.dtype(
    [
        ("lat", "<i4"),
        ("lon", "<i4"),
        ("radius", "<i4"),
        ("num_cells", "<u4"),
        ("created", "<u2"),
        ("modified", "<u4"),
        ("last_seen", "<u2"),
        ("region", "<u2"),
    ]
)
KEY_DTYPES: Final = {
    "wifi": np.dtype("<u8"),
    "blue": np.dtype("<u8"),
    "cell": np.dtype("S17"),
    "area": np.dtype("S9"),
}
VALUE_DTYPES: Final = {
    "wifi": STATION_VALUES,
    "blue": STATION_VALUES,
    "cell": STATION_VALUES,
    "area": AREA_VALUES,
}


def record_size(kind: str) -> int:
    """Bytes per station of a kind: its key plus its values."""
    return int(KEY_DTYPES[kind].itemsize + VALUE_DTYPES[kind].itemsize)


class CorruptIndexError(Exception):
    """An index file is missing, truncated, damaged or of another format; never serve it."""


@dataclass(frozen=True, slots=True)
class Header:
    """The decoded header of one index file."""

    kind: str
    record_size: int
    count: int
    generation: int
    build_time_s: float
    high_water_modified_s: int
    region_count: int
    payload_crc: int

    def pack(self) -> bytes:
        """The 64 header bytes, with the header's own CRC filled in."""
        body = _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            self.kind.encode("ascii"),
            self.record_size,
            self.count,
            self.generation,
            self.build_time_s,
            self.high_water_modified_s,
            self.region_count,
            self.payload_crc,
            0,
        )[:_HEADER_CRC_OFFSET]
        packed = body + struct.pack("<I", zlib.crc32(body))
        return packed.ljust(HEADER_BYTES, b"\0")

    @property
    def file_size(self) -> int:
        return HEADER_BYTES + self.count * self.record_size + self.region_count * REGION_BYTES


def unpack_header(data: bytes, *, name: str) -> Header:
    """Decode and check the header bytes of the file ``name`` (for error messages).

    Raises :class:`CorruptIndexError` on a short header, a wrong magic,
    version or kind, a record size that is not the kind's, or a header CRC
    that does not match.
    """
    if len(data) < HEADER_BYTES:
        raise CorruptIndexError(f"{name}: {len(data)} bytes, shorter than the header")
    fields = _HEADER.unpack_from(data)
    magic, version, kind_raw, size, count, generation = fields[:6]
    build_time_s, high_water, region_count, payload_crc, header_crc = fields[6:]
    if magic != MAGIC:
        raise CorruptIndexError(f"{name}: not a station index file (magic {magic!r})")
    if zlib.crc32(data[:_HEADER_CRC_OFFSET]) != header_crc:
        raise CorruptIndexError(f"{name}: header checksum mismatch")
    if version != FORMAT_VERSION:
        raise CorruptIndexError(f"{name}: format version {version}, expected {FORMAT_VERSION}")
    kind = kind_raw.rstrip(b"\0").decode("ascii", errors="replace")
    if kind not in KEY_DTYPES:
        raise CorruptIndexError(f"{name}: unknown station kind {kind!r}")
    if size != record_size(kind):
        raise CorruptIndexError(
            f"{name}: records of {size} bytes, expected {record_size(kind)} for {kind}"
        )
    return Header(
        kind=kind,
        record_size=size,
        count=count,
        generation=generation,
        build_time_s=build_time_s,
        high_water_modified_s=high_water,
        region_count=region_count,
        payload_crc=payload_crc,
    )


def file_name(kind: str) -> str:
    """The name of a kind's file inside the index directory."""
    return f"{kind}.idx"
