"""Build the station index from the database: streamed, in key order, once per host.

:func:`build_index` writes one file per station kind (see
:mod:`ichnaea.index.format`). Each kind's tables are read with keyset
pagination (``WHERE key > :last ORDER BY key LIMIT :page_rows``, over the
primary key), which is portable between MariaDB and SQLite and holds one
page per table in memory, never a whole table. The per-table streams are
merged into global key order with :func:`heapq.merge` (Wi-Fi and Bluetooth
shards split the key space by the MAC's fifth hex digit, so each shard is
sorted but their union is not), converted to records a chunk at a time and
appended to a temporary file in the index directory (keys; the values go
to a scratch file copied after them), which is fsynced and
renamed over the kind's file (:func:`ichnaea.atomicfile.write_atomically`):
a reader sees the old file or the new one, never a part. Rows without a
position are left out, as the database path never returns them.

:func:`ensure_index` is what a web process calls at start: under an
exclusive ``fcntl.flock`` on ``<directory>/.lock`` it opens the current
files and builds only if they are missing, damaged or older than the
start of the web role, so of several processes on one host the first
builds and the others wait for the lock, then map the finished files.

The web role uses the package through :class:`ichnaea.index.live.LiveIndex`,
which keeps the mapped generation fresh.
"""

from __future__ import annotations

import fcntl
import heapq
import logging
import os
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.engine import Connection, Engine

from ichnaea.atomicfile import write_atomically
from ichnaea.codecs import MAC_BYTES
from ichnaea.index.format import (
    COORD_SCALE,
    HEADER_BYTES,
    KEY_DTYPES,
    KINDS,
    NULL_I32,
    NULL_U16,
    NULL_U32,
    VALUE_DTYPES,
    CorruptIndexError,
    Header,
    file_name,
    record_size,
)
from ichnaea.index.reader import StationIndex, open_index
from ichnaea.repositories.index_rows import sources, stream_table

log = logging.getLogger(__name__)

DEFAULT_PAGE_ROWS = 5_000
DEFAULT_CHUNK_ROWS = 65_536
DEFAULT_LOG_EVERY_ROWS = 1_000_000
LOCK_NAME = ".lock"
_COPY_BYTES = 1 << 22


class IndexBuildError(Exception):
    """The source rows cannot be written as an index (out-of-range or unsorted data)."""


def _uint(values: Sequence[Any], null: int) -> NDArray[np.float64]:
    raw = np.array(values, dtype=np.float64)  # None becomes NaN
    return np.where(np.isnan(raw), null, np.clip(raw, 0, null - 1))


def _days(values: Sequence[Any]) -> NDArray[np.int64]:
    raw = np.array(values, dtype="datetime64[D]").astype(np.int64)
    nat = raw == np.iinfo(np.int64).min
    # Days before 1970 or after 2149 do not fit; clipping keeps them far in
    # the past or future, which is what scoring and blocking make of them.
    return np.where(nat, NULL_U16, np.clip(raw, 0, NULL_U16 - 1))


def _seconds(values: Sequence[Any]) -> NDArray[np.int64]:
    raw = np.array(values, dtype="datetime64[us]").astype("datetime64[s]").astype(np.int64)
    nat = raw == np.iinfo(np.int64).min
    return np.where(nat, NULL_U32, np.clip(raw, 0, NULL_U32 - 1))


def _coord(values: Sequence[Any]) -> NDArray[np.int32]:
    raw = np.rint(np.array(values, dtype=np.float64) * COORD_SCALE)
    limit = np.iinfo(np.int32).max
    if raw.size and not np.all(np.abs(raw) < limit):
        raise IndexBuildError("a station position does not fit the index (beyond ±214°)")
    return raw.astype(np.int32)


def index_keys(kind: str, values: Sequence[bytes]) -> NDArray[Any]:
    """The index keys (uint64 MACs, zero-padded cell and area keys) of codec keys."""
    if kind in ("wifi", "blue"):
        joined = b"".join(values)
        if len(joined) != MAC_BYTES * len(values):
            raise IndexBuildError(f"{kind}: a MAC key is not {MAC_BYTES} bytes long")
        wide = np.zeros((len(values), 8), dtype=np.uint8)
        wide[:, 8 - MAC_BYTES :] = np.frombuffer(joined, dtype=np.uint8).reshape(-1, MAC_BYTES)
        return wide.view(">u8").ravel().astype(np.uint64)
    return np.array(values, dtype=KEY_DTYPES[kind])


def encode_records(
    kind: str, rows: Sequence[Sequence[Any]], regions: dict[str | None, int]
) -> tuple[NDArray[Any], NDArray[np.void]]:
    """Keys and value records of ``kind`` for ``(key, *value columns)`` rows.

    Region codes not yet in ``regions`` are added to it.
    """
    out = np.zeros(len(rows), dtype=VALUE_DTYPES[kind])
    if not rows:
        return np.zeros(0, dtype=KEY_DTYPES[kind]), out
    columns = dict(zip(("key", *sources(kind)[2]), zip(*rows, strict=True), strict=True))
    out["lat"] = _coord(columns["lat"])
    out["lon"] = _coord(columns["lon"])
    if kind == "area":
        radius = np.array(columns["radius"], dtype=np.float64)
        out["radius"] = np.where(np.isnan(radius), NULL_I32, np.clip(radius, NULL_I32 + 1, None))
        out["num_cells"] = _uint(columns["num_cells"], NULL_U32)
    else:
        out["radius"] = _uint(columns["radius"], NULL_U32)
        out["samples"] = _uint(columns["samples"], NULL_U32)
        out["block_last"] = _days(columns["block_last"])
        # NULL is stored as 0: the blocking rule treats them alike.
        block_count = np.array(columns["block_count"], dtype=np.float64)
        out["block_count"] = np.clip(np.nan_to_num(block_count, nan=0.0), 0, 255)
    out["created"] = _days(columns["created"])
    out["modified"] = _seconds(columns["modified"])
    out["last_seen"] = _days(columns["last_seen"])
    out["region"] = [regions.setdefault(r, len(regions)) for r in columns["region"]]
    return index_keys(kind, columns["key"]), out


def _region_table(regions: dict[str | None, int]) -> bytes:
    names = sorted(regions, key=regions.__getitem__)
    return b"".join((name or "").encode("ascii").ljust(2, b"\0")[:2] for name in names)


def _write_kind(
    conn: Connection,
    kind: str,
    out: BinaryIO,
    *,
    directory: Path,
    generation: int,
    page_rows: int,
    chunk_rows: int,
    log_every_rows: int,
) -> Header:
    tables, key, columns = sources(kind)
    merged = heapq.merge(
        *(stream_table(conn, t, key, columns, page_rows) for t in tables), key=itemgetter(0)
    )
    regions: dict[str | None, int] = {None: 0}
    started = time.time()
    out.write(b"\0" * HEADER_BYTES)
    crc = 0
    count = 0
    high_water = -1
    last_key: Any = None
    next_log = log_every_rows
    # Keys go straight to the file, values to a scratch file appended after
    # them: the number of rows is known only at the end.
    with tempfile.TemporaryFile(dir=directory) as values_out:
        while chunk := list(islice(merged, chunk_rows)):
            keys, records = encode_records(kind, chunk, regions)
            if (last_key is not None and keys[0] <= last_key) or np.any(keys[1:] <= keys[:-1]):
                raise IndexBuildError(f"{kind}: source keys are not strictly increasing")
            last_key = keys[-1]
            modified = records["modified"]
            known = modified[modified != NULL_U32]
            if known.size:
                high_water = max(high_water, int(known.max()))
            data = keys.tobytes()
            crc = zlib.crc32(data, crc)
            out.write(data)
            values_out.write(records.tobytes())
            count += len(records)
            if count >= next_log:
                log.info("index build: %s, %d rows in %.1f s", kind, count, time.time() - started)
                next_log += log_every_rows
        values_out.seek(0)
        while data := values_out.read(_COPY_BYTES):
            crc = zlib.crc32(data, crc)
            out.write(data)
    if len(regions) > np.iinfo(np.uint16).max:
        raise IndexBuildError(f"{kind}: more than 65535 distinct regions")
    region_bytes = _region_table(regions)
    out.write(region_bytes)
    header = Header(
        kind=kind,
        record_size=record_size(kind),
        count=count,
        generation=generation,
        build_time_s=started,
        high_water_modified_s=high_water,
        region_count=len(regions),
        payload_crc=zlib.crc32(region_bytes, crc),
    )
    out.seek(0)
    out.write(header.pack())
    log.info("index build: %s done, %d rows in %.1f s", kind, count, time.time() - started)
    return header


def build_index(
    engine: Engine,
    directory: Path,
    *,
    page_rows: int = DEFAULT_PAGE_ROWS,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    log_every_rows: int = DEFAULT_LOG_EVERY_ROWS,
) -> int:
    """Write a new generation of every kind's file into ``directory``; return its id.

    Call it under the lock (:func:`ensure_index` does); each file replaces
    the previous one atomically.
    """
    generation = time.time_ns()
    headers: list[Header] = []
    with engine.connect() as conn:
        for kind in KINDS:

            def fill(out: BinaryIO, kind: str = kind) -> None:
                headers.append(
                    _write_kind(
                        conn,
                        kind,
                        out,
                        directory=directory,
                        generation=generation,
                        page_rows=page_rows,
                        chunk_rows=chunk_rows,
                        log_every_rows=log_every_rows,
                    )
                )

            write_atomically(directory / file_name(kind), fill, mode=0o644)
    log.info(
        "index build: generation %d, %s",
        generation,
        ", ".join(f"{h.kind} {h.count} rows" for h in headers),
    )
    return generation


@contextmanager
def host_lock(directory: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold the host-wide exclusive lock of an index directory.

    Blocks until it is free, or with ``blocking=False`` yields False at once
    when another process holds it (and True when this one got it).
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


def ensure_index(engine: Engine, directory: Path, *, not_before_ns: int = 0) -> StationIndex:
    """Map the index in ``directory``, building it first if it is missing, damaged,
    or of a generation that started before ``not_before_ns`` (``time.time_ns()``).

    Several processes may call this at once: the lock lets one build while
    the others wait, and those then find the finished files and map them.
    ``ichnaea web`` passes the moment it started, so every start of the web
    role builds one fresh generation per host (the files of a previous run
    may hold stations of another database, or ones deleted since).
    A failed build raises (:class:`IndexBuildError`, or the database's
    error) and leaves the file it was writing as it was (files of kinds
    already rebuilt keep their new generation); the caller keeps
    answering from the database.
    """
    with host_lock(directory):
        try:
            index = open_index(directory)
        except CorruptIndexError as exc:
            log.warning("index build: no usable index in %s (%s), building", directory, exc)
        else:
            if index.generation >= not_before_ns:
                return index
            log.info("index build: the index in %s predates this start, building", directory)
        build_index(engine, directory)
        return open_index(directory)
