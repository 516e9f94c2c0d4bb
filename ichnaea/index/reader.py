"""Map the station index and answer a request's lookups from it in one batch.

:func:`open_index` memory-maps the four files of an index directory (see
:mod:`ichnaea.index.format`) read-only, so every process of a host shares
one copy in the page cache. Opening checks each file's header, its size
against the header's counts (a truncated or padded file) and the CRC-32 of
its records; any failure raises :class:`~ichnaea.index.format.CorruptIndexError`
and nothing of the file is served (the caller rebuilds).

A lookup takes all keys of one kind in a query, sorts and de-duplicates
them, finds them with one ``np.searchsorted`` over the sorted, contiguous
key column and decodes the found value records field by field: the number of Python calls
is the same for 1 key as for 100. The answer has the shape the database
path gives (:class:`~ichnaea.repositories.stations.StationRows`,
:class:`~ichnaea.repositories.stations.AreaRows`): the same NULL-as-NaN
columns, days as ordinals, and the same blocking rule
(:func:`~ichnaea.repositories.stations.blocked`) applied. Positions come
back rounded to 1e-7 degree and ``modified_s`` to the whole second. Row
order is not the query's order (nor is the database's).

An :class:`Overlay` of stations changed since the build (kept by
:mod:`ichnaea.index.live`) is searched first: its entries replace the
mapped records of their keys, or hide them when the station is gone.
"""

from __future__ import annotations

import array
import math
import mmap
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from ichnaea._fast import gather_stations
from ichnaea.codecs import AREAID_BYTES, MAC_BYTES
from ichnaea.enums import Radio
from ichnaea.index.format import (
    COORD_SCALE,
    HEADER_BYTES,
    KEY_DTYPES,
    KINDS,
    NULL_I32,
    NULL_U16,
    NULL_U32,
    REGION_BYTES,
    VALUE_DTYPES,
    CorruptIndexError,
    Header,
    file_name,
    unpack_header,
)
from ichnaea.repositories.stations import AreaRows, StationRows

Float = NDArray[np.float64]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class KindIndex:
    """The mapped, verified keys and value records of one station kind."""

    header: Header
    keys: NDArray[Any]  # ascending, contiguous, read-only view of the mapped file
    values: NDArray[np.void]  # the values of keys[i] at values[i], read-only view
    regions: NDArray[np.object_]  # region code -> "DE" / None
    file_id: tuple[int, int]  # (st_dev, st_ino) of the mapped file: a rebuild replaces it
    # The keys and records as bytes, as the kernels take them (made once, not per search).
    key_bytes: NDArray[np.uint8] = field(init=False)
    value_bytes: NDArray[np.uint8] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_bytes", self.keys.view(np.uint8))
        object.__setattr__(self, "value_bytes", self.values.view(np.uint8))


def _open_kind(path: Path) -> KindIndex:
    try:
        with path.open("rb") as f:
            stat = os.fstat(f.fileno())
            size = stat.st_size
            if size < HEADER_BYTES:
                raise CorruptIndexError(f"{path}: {size} bytes, shorter than the header")
            # The map outlives the file object; NumPy's views keep it open.
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise CorruptIndexError(f"{path}: cannot be opened ({exc})") from exc
    header = unpack_header(mapped[:HEADER_BYTES], name=str(path))
    if header.kind != path.name.removesuffix(".idx"):
        raise CorruptIndexError(f"{path}: holds {header.kind} stations")
    if size != header.file_size:
        raise CorruptIndexError(
            f"{path}: {size} bytes, the header says {header.file_size} (truncated or damaged)"
        )
    view = memoryview(mapped)
    if zlib.crc32(view[HEADER_BYTES:]) != header.payload_crc:
        raise CorruptIndexError(f"{path}: payload checksum mismatch")
    key_dtype = KEY_DTYPES[header.kind]
    keys = np.frombuffer(mapped, dtype=key_dtype, count=header.count, offset=HEADER_BYTES)
    values_at = HEADER_BYTES + header.count * key_dtype.itemsize
    values = np.frombuffer(
        mapped, dtype=VALUE_DTYPES[header.kind], count=header.count, offset=values_at
    )
    table_at = HEADER_BYTES + header.count * header.record_size
    raw = bytes(view[table_at:size])
    view.release()
    names = [raw[i : i + REGION_BYTES].rstrip(b"\0").decode("ascii") or None
             for i in range(0, len(raw), REGION_BYTES)]  # fmt: skip
    regions = np.array(names, dtype=object)
    return KindIndex(
        header=header,
        keys=keys,
        values=values,
        regions=regions,
        file_id=(stat.st_dev, stat.st_ino),
    )


def _nullable(raw: NDArray[Any], null: int, offset: float = 0.0) -> Float:
    values = raw.astype(np.float64) + offset
    return np.where(raw == null, np.nan, values)


@dataclass(frozen=True, slots=True)
class Overlay:
    """Stations of one kind changed since the mapped generation was built.

    Sorted unique ``keys`` (the kind's key dtype) with their ``values``;
    ``present`` is False where the station is gone (deleted, or without a
    position); ``fetched_ns`` is when each entry was read from the database
    (``time.time_ns()`` before the read), so that a newer generation can
    drop the entries it already holds. Region codes in ``values`` index
    ``regions``, the overlay's own table.
    """

    keys: NDArray[Any]
    values: NDArray[np.void]
    present: NDArray[np.bool_]
    fetched_ns: NDArray[np.int64]
    regions: NDArray[np.object_]
    # keys, values and present as bytes, as the kernels take them (made once).
    tables: tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]] = field(init=False)

    def __post_init__(self) -> None:
        tables = (self.keys.view(np.uint8), self.values.view(np.uint8), self.present.view(np.uint8))
        object.__setattr__(self, "tables", tables)

    def __len__(self) -> int:
        return len(self.keys)


def _find(keys: NDArray[Any], query: NDArray[Any]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Where ``keys`` holds the ``query`` keys (sorted, unique), and which of them it holds."""
    if len(keys) == 0 or len(query) == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(len(query), dtype=np.bool_)
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    hit: NDArray[np.bool_] = keys[at] == query
    return at[hit], hit


def _gather(
    index: KindIndex, overlay: Overlay | None, query: NDArray[Any]
) -> tuple[NDArray[Any], NDArray[np.void], list[str | None]]:
    """The keys, value records and region names of the ``query`` keys found.

    An overlay entry replaces the mapped station of its key, or hides it
    when the entry says the station is gone.
    """
    if overlay is None or len(overlay) == 0:
        at, _ = _find(index.keys, query)
        values = index.values[at]
        return index.keys[at], values, index.regions[values["region"]].tolist()
    over_at, in_overlay = _find(overlay.keys, query)
    over_at = over_at[overlay.present[over_at]]
    at, _ = _find(index.keys, query[~in_overlay])
    base_values = index.values[at]
    over_values = overlay.values[over_at]
    regions = (
        index.regions[base_values["region"]].tolist()
        + overlay.regions[over_values["region"]].tolist()
    )
    keys = np.concatenate([index.keys[at], overlay.keys[over_at]])
    return keys, np.concatenate([base_values, over_values]), regions


def _split_keys(keys: NDArray[Any], short: int) -> tuple[NDArray[np.intp], list[bytes]]:
    """An order that puts short keys first and NR keys last, and the keys as bytes in it.

    Keys of ``short`` bytes are stored zero-padded to the column's width;
    the radio byte says which is which.
    """
    width = keys.dtype.itemsize
    raw = np.ascontiguousarray(keys).view(np.uint8).reshape(-1, width)
    nr = raw[:, 0] == Radio.nr
    order = np.concatenate([np.flatnonzero(~nr), np.flatnonzero(nr)])
    short_keys = np.ascontiguousarray(raw[~nr, :short]).view(f"V{short}").ravel().tolist()
    long_keys = np.ascontiguousarray(raw[nr]).view(f"V{width}").ravel().tolist()
    return order, short_keys + long_keys


_NO_OVERLAY = {
    kind: (np.zeros(0, np.uint8), np.zeros(0, np.uint8), np.zeros(0, np.uint8))
    for kind in KEY_DTYPES
}


def _stations(
    index: KindIndex,
    overlay: Overlay | None,
    query: list[tuple[bytes, bytes]],
    width: int,
    today: date,
    now_s: float | None,
) -> StationRows:
    """The unblocked stations of ``query``: (search key, codec key) pairs sorted by search key.

    One call of the compiled kernel finds, decodes and filters them
    (``ichnaea._fast.gather_stations``); the rest is this function's
    few array views.
    """
    n = len(query)
    out = np.empty((9, n), dtype=np.float64)
    at = np.empty(n, dtype=np.int64)
    region = np.empty(n, dtype=np.int32)
    source = np.empty(n, dtype=np.int8)
    over_keys, over_values, over_present = _overlay_tables(index, overlay)
    over_regions = overlay.regions if overlay is not None and len(overlay) else index.regions
    rows = gather_stations(
        b"".join(search for search, _ in query),
        width,
        index.key_bytes,
        index.value_bytes,
        over_keys,
        over_values,
        over_present,
        float(today.toordinal()),
        math.nan if now_s is None else now_s,
        out,
        at,
        region,
        source,
    )
    # Only the rows' names: the tables hold every region of the build.
    names = index.regions, over_regions
    sources = zip(source[:rows].tolist(), region[:rows].tolist(), strict=True)
    return StationRows(
        keys=[query[i][1] for i in at[:rows].tolist()],
        lat=out[0, :rows],
        lon=out[1, :rows],
        radius_m=out[2, :rows],
        samples=out[3, :rows],
        created_day=out[4, :rows],
        modified_s=out[5, :rows],
        last_seen_day=out[6, :rows],
        block_last_day=out[7, :rows],
        region=[names[s][r] for s, r in sources],
        score=None if now_s is None else out[8, :rows],
    )


def lookup_macs(
    index: KindIndex,
    overlay: Overlay | None,
    macs: Sequence[bytes],
    today: date,
    now_s: float | None = None,
) -> StationRows:
    """Wi-Fi or Bluetooth stations by 6-byte MAC, as ``fetch_macs`` gives them
    (with their scores at ``now_s`` when it is given)."""
    unique = sorted(set(macs))
    if len(b"".join(unique)) != MAC_BYTES * len(unique):
        raise ValueError(f"MAC keys must be {MAC_BYTES} bytes long")
    return _stations(index, overlay, [(mac, mac) for mac in unique], MAC_BYTES, today, now_s)


# A position the kernels found, a Wi-Fi/Bluetooth cluster or a cell area:
# (lat, lon, accuracy_m, score_sum, [(query index, seen today) of the stations used]).
Found = tuple[float, float, float, float, list[tuple[int, bool]]]


def _overlay_tables(
    index: KindIndex, overlay: Overlay | None
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]:
    """The overlay's keys, records and present flags as bytes for the kernels (empty: none)."""
    if overlay is not None and len(overlay):
        return overlay.tables
    return _NO_OVERLAY[index.header.kind]


# The float64 columns the search kernels take: numpy arrays, or array.array("d")
# (what the compiled search inputs make, cheaper for a query's few values).
Doubles: TypeAlias = "NDArray[np.float64] | array.array[float]"

KernelTables = tuple[
    NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]
]


def kernel_tables(index: KindIndex, overlay: Overlay | None) -> KernelTables:
    """The five byte tables the search kernels (``_fast.locate_macs``, ``locate_cells``)
    take after the query: the base keys and records, the overlay's keys, records and
    present flags."""
    return (index.key_bytes, index.value_bytes, *_overlay_tables(index, overlay))


def lookup_cells(
    index: KindIndex,
    overlay: Overlay | None,
    cellids: Sequence[bytes],
    today: date,
    now_s: float | None = None,
) -> StationRows:
    """Cells by their 11-byte (17 for NR) codec keys, as ``fetch_cells`` gives them
    (with their scores at ``now_s`` when it is given)."""
    width = index.keys.dtype.itemsize
    padded = sorted({cellid.ljust(width, b"\0"): cellid for cellid in cellids}.items())
    return _stations(index, overlay, padded, width, today, now_s)


def lookup_areas(index: KindIndex, overlay: Overlay | None, areaids: Sequence[bytes]) -> AreaRows:
    """Cell areas by their 7-byte (9 for NR) keys, as ``fetch_areas`` gives them."""
    query = np.unique(np.array(areaids, dtype=index.keys.dtype))
    keys, values, regions = _gather(index, overlay, query)
    order, key_bytes = _split_keys(keys, AREAID_BYTES)
    found = values[order]
    return AreaRows(
        keys=key_bytes,
        lat=found["lat"] / COORD_SCALE,
        lon=found["lon"] / COORD_SCALE,
        radius_m=_nullable(found["radius"], NULL_I32),
        num_cells=_nullable(found["num_cells"], NULL_U32),
        created_day=_nullable(found["created"], NULL_U16, _EPOCH_ORDINAL),
        modified_s=_nullable(found["modified"], NULL_U32),
        last_seen_day=_nullable(found["last_seen"], NULL_U16, _EPOCH_ORDINAL),
        region=[regions[i] for i in order],
    )


class StationIndex:
    """The mapped index of one generation: batch lookups for every station kind."""

    def __init__(self, kinds: dict[str, KindIndex]) -> None:
        self.kinds = kinds
        generations = {k.header.generation for k in kinds.values()}
        # Each file is swapped atomically on its own; a reader that opened
        # in the middle of a swap may hold two generations, which is harmless
        # for lookups but reported as the oldest.
        self.generation = min(generations)
        self.build_time_s = min(k.header.build_time_s for k in kinds.values())

    def header(self, kind: str) -> Header:
        """The header of a kind's file (counts, build time, high-water mark)."""
        return self.kinds[kind].header

    def columns(self, kind: str) -> tuple[NDArray[Any], NDArray[np.void]]:
        """The read-only sorted keys of a kind and their value records (format.py dtypes)."""
        return self.kinds[kind].keys, self.kinds[kind].values

    def macs(self, kind: str, macs: Sequence[bytes], *, today: date) -> StationRows:
        """Wi-Fi (``kind="wifi"``) or Bluetooth (``"blue"``) stations by 6-byte MAC,
        as :func:`ichnaea.repositories.stations.fetch_macs` gives them."""
        return lookup_macs(self.kinds[kind], None, macs, today)

    def cells(self, cellids: Sequence[bytes], *, today: date) -> StationRows:
        """Cells by their 11-byte (17 for NR) codec keys, as ``fetch_cells`` gives them."""
        return lookup_cells(self.kinds["cell"], None, cellids, today)

    def areas(self, areaids: Sequence[bytes]) -> AreaRows:
        """Cell areas by their 7-byte (9 for NR) keys, as ``fetch_areas`` gives them."""
        return lookup_areas(self.kinds["area"], None, areaids)


def open_index(directory: Path) -> StationIndex:
    """Map and verify the four files in ``directory``.

    Raises :class:`~ichnaea.index.format.CorruptIndexError` when any is
    missing, truncated or damaged.
    """
    return StationIndex({kind: _open_kind(directory / file_name(kind)) for kind in KINDS})
