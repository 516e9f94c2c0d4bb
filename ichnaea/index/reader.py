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

The searchsorted here is this slice's stand-in: issue 9 item 2 replaces the
lookup, scoring and positioning of a request with one compiled kernel call
per network type fed from these arrays.
"""

from __future__ import annotations

import mmap
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ichnaea.codecs import AREAID_BYTES, CELLID_BYTES, MAC_BYTES
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
from ichnaea.repositories.stations import AreaRows, StationRows, blocked

Float = NDArray[np.float64]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class KindIndex:
    """The mapped, verified keys and value records of one station kind."""

    header: Header
    keys: NDArray[Any]  # ascending, contiguous, read-only view of the mapped file
    values: NDArray[np.void]  # the values of keys[i] at values[i], read-only view
    regions: NDArray[np.object_]  # region code -> "DE" / None


def _open_kind(path: Path) -> KindIndex:
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
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
    return KindIndex(header=header, keys=keys, values=values, regions=regions)


def _nullable(raw: NDArray[Any], null: int, offset: float = 0.0) -> Float:
    values = raw.astype(np.float64) + offset
    return np.where(raw == null, np.nan, values)


def _find(index: KindIndex, query: NDArray[Any]) -> NDArray[np.intp]:
    """The positions of the keys of ``query`` (sorted, unique) that the index holds."""
    keys = index.keys
    if len(keys) == 0 or len(query) == 0:
        return np.zeros(0, dtype=np.intp)
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    found: NDArray[np.intp] = at[keys[at] == query]
    return found


def _split_keys(
    index: KindIndex, at: NDArray[np.intp], short: int
) -> tuple[NDArray[np.intp], list[bytes]]:
    """Positions reordered short keys first, NR keys last, and their keys as bytes.

    Keys of ``short`` bytes are stored zero-padded to the column's width;
    the radio byte says which is which.
    """
    width = index.keys.dtype.itemsize
    raw = np.ascontiguousarray(index.keys[at]).view(np.uint8).reshape(-1, width)
    nr = raw[:, 0] == Radio.nr
    order = np.concatenate([np.flatnonzero(~nr), np.flatnonzero(nr)])
    short_keys = np.ascontiguousarray(raw[~nr, :short]).view(f"V{short}").ravel().tolist()
    long_keys = np.ascontiguousarray(raw[nr]).view(f"V{width}").ravel().tolist()
    return at[order], short_keys + long_keys


def _station_rows(
    found: NDArray[np.void], keys: list[bytes], regions: NDArray[np.object_]
) -> StationRows:
    return StationRows(
        keys=keys,
        lat=found["lat"] / COORD_SCALE,
        lon=found["lon"] / COORD_SCALE,
        radius_m=_nullable(found["radius"], NULL_U32),
        samples=_nullable(found["samples"], NULL_U32),
        created_day=_nullable(found["created"], NULL_U16, _EPOCH_ORDINAL),
        modified_s=_nullable(found["modified"], NULL_U32),
        last_seen_day=_nullable(found["last_seen"], NULL_U16, _EPOCH_ORDINAL),
        block_last_day=_nullable(found["block_last"], NULL_U16, _EPOCH_ORDINAL),
        region=regions[found["region"]].tolist(),
    )


def _unblocked_rows(
    index: KindIndex, at: NDArray[np.intp], keys: list[bytes], today: date
) -> StationRows:
    """The stations at ``at`` (keys ``keys``) but the blocked ones, by the database path's rule."""
    found = index.values[at]
    rows = _station_rows(found, keys, index.regions)
    return rows.take(~blocked(rows, found["block_count"].astype(np.float64), today))


class StationIndex:
    """The mapped index of one generation: batch lookups for every station kind."""

    def __init__(self, kinds: dict[str, KindIndex]) -> None:
        self._kinds = kinds
        generations = {k.header.generation for k in kinds.values()}
        # Each file is swapped atomically on its own; a reader that opened
        # in the middle of a swap may hold two generations, which is harmless
        # for lookups but reported as the oldest.
        self.generation = min(generations)
        self.build_time_s = min(k.header.build_time_s for k in kinds.values())

    def header(self, kind: str) -> Header:
        """The header of a kind's file (counts, build time, high-water mark)."""
        return self._kinds[kind].header

    def columns(self, kind: str) -> tuple[NDArray[Any], NDArray[np.void]]:
        """The read-only sorted keys of a kind and their value records (format.py dtypes)."""
        return self._kinds[kind].keys, self._kinds[kind].values

    def macs(self, kind: str, macs: Sequence[bytes], *, today: date) -> StationRows:
        """Wi-Fi (``kind="wifi"``) or Bluetooth (``"blue"``) stations by 6-byte MAC,
        as :func:`ichnaea.repositories.stations.fetch_macs` gives them."""
        index = self._kinds[kind]
        joined = b"".join(macs)
        if len(joined) != MAC_BYTES * len(macs):
            raise ValueError(f"MAC keys must be {MAC_BYTES} bytes long")
        wide = np.zeros((len(macs), 8), dtype=np.uint8)
        wide[:, 8 - MAC_BYTES :] = np.frombuffer(joined, dtype=np.uint8).reshape(-1, MAC_BYTES)
        query = np.unique(wide.view(">u8").ravel().astype(np.uint64))
        at = _find(index, query)
        raw = index.keys[at].astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - MAC_BYTES :]
        keys = np.ascontiguousarray(raw).view(f"V{MAC_BYTES}").ravel().tolist()
        return _unblocked_rows(index, at, keys, today)

    def cells(self, cellids: Sequence[bytes], *, today: date) -> StationRows:
        """Cells by their 11-byte (17 for NR) codec keys, as ``fetch_cells`` gives them."""
        index = self._kinds["cell"]
        query = np.unique(np.array(cellids, dtype=index.keys.dtype))
        at, keys = _split_keys(index, _find(index, query), CELLID_BYTES)
        return _unblocked_rows(index, at, keys, today)

    def areas(self, areaids: Sequence[bytes]) -> AreaRows:
        """Cell areas by their 7-byte (9 for NR) keys, as ``fetch_areas`` gives them."""
        index = self._kinds["area"]
        query = np.unique(np.array(areaids, dtype=index.keys.dtype))
        at, keys = _split_keys(index, _find(index, query), AREAID_BYTES)
        found = index.values[at]
        return AreaRows(
            keys=keys,
            lat=found["lat"] / COORD_SCALE,
            lon=found["lon"] / COORD_SCALE,
            radius_m=_nullable(found["radius"], NULL_I32),
            num_cells=_nullable(found["num_cells"], NULL_U32),
            created_day=_nullable(found["created"], NULL_U16, _EPOCH_ORDINAL),
            modified_s=_nullable(found["modified"], NULL_U32),
            last_seen_day=_nullable(found["last_seen"], NULL_U16, _EPOCH_ORDINAL),
            region=index.regions[found["region"]].tolist(),
        )


def open_index(directory: Path) -> StationIndex:
    """Map and verify the four files in ``directory``.

    Raises :class:`~ichnaea.index.format.CorruptIndexError` when any is
    missing, truncated or damaged.
    """
    return StationIndex({kind: _open_kind(directory / file_name(kind)) for kind in KINDS})
