"""Import of MLS-format cell CSV files (spec section 14.2): ``ichnaea import cells``.

Reads what :mod:`ichnaea.pipeline.public.cellexport` writes (and the public MLS and
OpenCellID files of the same layout), gzip or plain:

* A first row equal to the header is skipped; any other first row is data
  (with a warning).
* ``radio``: ``GSM``, ``UMTS``, ``LTE`` and ``NR`` (our addition); an empty
  radio skips the row with a warning; any other value stops the import
  (``InvalidCSV``), as the file is not what we think it is.
* Each row becomes a cell: ``net``/``area``/``cell`` are mnc/lac/cid, ``unit``
  the psc (0 when empty), ``range`` the radius (capped at 100 km),
  ``created``/``updated`` Unix seconds (UTC); ``changeable`` and
  ``averageSignal`` are ignored. A row must be a valid cell (the key ranges
  of the observation rules, lat/lon in range, radius and samples not
  negative). An invalid first data row stops the import (the file is
  probably not a cell CSV); later invalid rows are skipped, each logged
  with its line and field.
* A cell already stored is overwritten (psc, position, radius, samples,
  created, modified, and the region, which follows the position) only when
  the row's ``updated`` is newer than its ``modified``: "updated"; else it
  is "found" and left alone. A new cell is inserted with its bounding box at
  the point and no source, weight or last_seen: "new". Within one file the
  newest row of a cell wins.

Rows are handled ``chunk`` at a time, one transaction each (one read of the
stored cells, one insert, one update per table; lock conflicts retried), so
an interrupted import keeps every whole chunk and a re-run finds those
cells again. The areas of new and updated cells are rebuilt every 1000
areas and at the end, then the region statistics are recounted.

Decision against the original: it left ``region`` stale when an import
moved a cell; here it follows the new position.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import redis
from sqlalchemy.engine import Connection, Engine

from ichnaea.codecs import encode_areaid, encode_cellid
from ichnaea.enums import Radio
from ichnaea.geocode import Geocoder
from ichnaea.index.changes import announce_changes
from ichnaea.metrics import Metrics
from ichnaea.pipeline.ingest.validation import validate_cell
from ichnaea.pipeline.ops.stats import update_region_stats
from ichnaea.pipeline.public.cellexport import CSV_HEADER
from ichnaea.pipeline.stations.areas import update_areas
from ichnaea.pipeline.stations.dbretry import with_lock_retry
from ichnaea.repositories.cell_exchange import insert_cells, read_modified_for_update, update_cells

log = logging.getLogger(__name__)

RADIOS: Mapping[str, Radio] = {
    "GSM": Radio.gsm,
    "UMTS": Radio.wcdma,
    "LTE": Radio.lte,
    "NR": Radio.nr,
}
MAX_RADIUS_M = 100_000
CHUNK_ROWS = 1000
# Skipped rows named one by one; a bad file must not flood the log.
MAX_ROW_WARNINGS = 20
AREA_BATCH = 1000
_UPDATED_COLUMNS = ("psc", "lat", "lon", "radius", "samples", "region", "created", "modified")


Progress = Callable[[int, int], object]


class InvalidCSV(ValueError):
    """The file is not a cell CSV we can read; the message names file, line and field."""


class _BadRow(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


@dataclass
class ImportSummary:
    """What one import did, per radio name (``GSM``, ``UMTS``, ...)."""

    new: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    invalid: int = 0
    areas: int = 0

    def lines(self) -> list[str]:
        out = [
            f"{name}: {self.new[name]} new, {self.updated[name]} updated, {self.found[name]} found"
            for name in RADIOS
            if self.new[name] or self.updated[name] or self.found[name]
        ]
        out.append(
            f"{self.skipped} rows without a radio skipped, {self.invalid} invalid rows skipped, "
            f"{self.areas} areas rebuilt"
        )
        return out


@dataclass(frozen=True)
class _Cell:
    radio: Radio
    name: str
    cellid: bytes
    values: dict[str, Any]


def _column_int(row: Mapping[str, str], column: str, *, empty: int | None = None) -> int | None:
    text = row.get(column, "").strip()
    if not text:
        if empty is None:
            raise _BadRow(column, "missing")
        return empty
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise _BadRow(column, f"{text!r} is not a number") from None
        if not number.is_integer():
            raise _BadRow(column, f"{text!r} is not a whole number") from None
        return int(number)


def _column_float(row: Mapping[str, str], column: str, lo: float, hi: float) -> float:
    text = row.get(column, "").strip()
    try:
        value = float(text)
    except ValueError:
        raise _BadRow(column, f"{text!r} is not a number") from None
    if not lo <= value <= hi:
        raise _BadRow(column, f"{value} is outside {lo}..{hi}")
    return value


def _moment(row: Mapping[str, str], column: str) -> datetime | None:
    seconds = _column_int(row, column, empty=-1)
    if seconds is None or seconds < 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise _BadRow(column, f"{seconds} is not a time") from None


def parse_row(row: Mapping[str, str], geocoder: Geocoder) -> _Cell:
    """The cell of one CSV row (the radio is already known to be valid)."""
    radio = RADIOS[row["radio"].strip()]
    key = {name: _column_int(row, column) for name, column in
           (("mcc", "mcc"), ("mnc", "net"), ("lac", "area"), ("cid", "cell"))}  # fmt: skip
    psc = _column_int(row, "unit", empty=0)
    checked = validate_cell({"radio": radio.name, **key, "psc": psc})
    if checked is None or checked["radio"] != radio.value:
        raise _BadRow("mcc/net/area/cell", f"{radio.name} cell {key} is not a valid cell key")
    if "psc" not in checked:
        raise _BadRow("unit", f"{psc} is not a valid {radio.name} psc")
    lat = _column_float(row, "lat", -90.0, 90.0)
    lon = _column_float(row, "lon", -180.0, 180.0)
    radius = _column_int(row, "range", empty=0)
    samples = _column_int(row, "samples", empty=0)
    assert radius is not None and samples is not None
    if radius < 0:
        raise _BadRow("range", f"{radius} is negative")
    if samples < 0:
        raise _BadRow("samples", f"{samples} is negative")
    values = {
        **key,
        "radio": radio.value,
        "psc": psc,
        "lat": lat,
        "lon": lon,
        "radius": min(radius, MAX_RADIUS_M),
        "samples": samples,
        "region": geocoder.region_for_cell(lat, lon, checked["mcc"]),
        "created": _moment(row, "created"),
        "modified": _moment(row, "updated"),
    }
    cellid = encode_cellid(
        radio.value, checked["mcc"], checked["mnc"], checked["lac"], checked["cid"]
    )
    return _Cell(radio, row["radio"].strip(), cellid, values)


def _newer(row_modified: datetime | None, stored_modified: datetime | None) -> bool:
    if row_modified is None:
        return False
    return stored_modified is None or stored_modified < row_modified


def _write_chunk(connection: Connection, cells: list[_Cell]) -> dict[bytes, str]:
    """Insert or update one chunk; return each cell id's outcome (new/updated/found)."""
    outcome: dict[bytes, str] = {}
    by_radio: dict[Radio, dict[bytes, _Cell]] = {}
    for cell in cells:
        pending = by_radio.setdefault(cell.radio, {})
        kept = pending.get(cell.cellid)
        if kept is None or _newer(cell.values["modified"], kept.values["modified"]):
            pending[cell.cellid] = cell
    for radio, pending in by_radio.items():
        stored = read_modified_for_update(connection, radio, list(pending))
        inserts: list[dict[str, Any]] = []
        updates: list[tuple[bytes, dict[str, Any]]] = []
        for cellid, cell in pending.items():
            if cellid not in stored:
                v = cell.values
                inserts.append(
                    {
                        **v,
                        "cellid": cellid,
                        "max_lat": v["lat"],
                        "min_lat": v["lat"],
                        "max_lon": v["lon"],
                        "min_lon": v["lon"],
                    }
                )
                outcome[cellid] = "new"
            elif _newer(cell.values["modified"], stored[cellid]):
                updates.append((cellid, cell.values))
                outcome[cellid] = "updated"
            else:
                outcome[cellid] = "found"
        if inserts:
            insert_cells(connection, radio, inserts)
        if updates:
            update_cells(connection, radio, updates, _UPDATED_COLUMNS)
    return outcome


def _open_text(raw: IO[bytes]) -> IO[str]:
    magic = raw.read(2)
    raw.seek(0)
    binary = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if magic == b"\x1f\x8b" else raw
    return io.TextIOWrapper(binary, encoding="utf-8", newline="")


def _records(path: Path, text: IO[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by header name) of every data row."""
    reader = csv.reader(text)
    first = True
    for values in reader:
        if not values or values == [""]:
            continue
        if first:
            first = False
            if [v.strip() for v in values] == list(CSV_HEADER):
                continue
            log.warning("%s: no header line; the first line is read as data", path)
        if len(values) < len(CSV_HEADER):
            values = values + [""] * (len(CSV_HEADER) - len(values))
        yield reader.line_num, dict(zip(CSV_HEADER, values, strict=False))


@dataclass
class _Run:
    engine: Engine
    geocoder: Geocoder
    metrics: Metrics
    now: datetime
    chunk_rows: int
    raw: IO[bytes]
    redis: redis.Redis
    chunk: list[_Cell] = field(default_factory=list)
    areas: set[bytes] = field(default_factory=set)
    summary: ImportSummary = field(default_factory=ImportSummary)

    def flush(self, progress: Progress | None = None) -> None:
        if not self.chunk:
            return
        cells = self.chunk

        def run() -> dict[bytes, str]:
            with self.engine.begin() as connection:
                return _write_chunk(connection, cells)

        outcome = with_lock_retry(run, metrics=self.metrics, tags={"task": "import_cells"})
        changed = [cellid for cellid, result in outcome.items() if result != "found"]
        announce_changes(self.redis, "cell", changed)
        for cell in {cell.cellid: cell for cell in cells}.values():
            result = outcome[cell.cellid]
            getattr(self.summary, result)[cell.name] += 1
            if result != "found":
                v = cell.values
                self.areas.add(encode_areaid(v["radio"], v["mcc"], v["mnc"], v["lac"]))
        self.chunk = []
        if progress is not None:
            progress(len(cells), self.raw.tell())
        if len(self.areas) >= AREA_BATCH:
            self.flush_areas()

    def flush_areas(self) -> None:
        if self.areas:
            self.summary.areas += update_areas(
                self.engine,
                sorted(self.areas),
                geocoder=self.geocoder,
                now=self.now,
                metrics=self.metrics,
            )
            announce_changes(self.redis, "area", self.areas)
            self.areas = set()


def _skipped(run: _Run, message: str, *args: Any) -> None:
    """Log a skipped row; after MAX_ROW_WARNINGS only the summary counts them."""
    shown = run.summary.skipped + run.summary.invalid
    if shown <= MAX_ROW_WARNINGS:
        log.warning(message, *args)
    if shown == MAX_ROW_WARNINGS:
        log.warning("further skipped rows are only counted (see the summary)")


def _read(path: Path, text: IO[str], run: _Run, progress: Progress | None) -> None:
    first_data = True
    try:
        for line, row in _records(path, text):
            name = row["radio"].strip()
            if not name:
                run.summary.skipped += 1
                _skipped(run, "%s:%d: no radio; row skipped", path, line)
                continue
            if name not in RADIOS:
                raise InvalidCSV(f"{path}:{line}: radio {name!r} is not one of {', '.join(RADIOS)}")
            try:
                run.chunk.append(parse_row(row, run.geocoder))
            except _BadRow as exc:
                if first_data:
                    raise InvalidCSV(f"{path}:{line}: {exc} (the first row must be valid)") from exc
                run.summary.invalid += 1
                _skipped(run, "%s:%d: %s; row skipped", path, line, exc)
                continue
            first_data = False
            if len(run.chunk) >= run.chunk_rows:
                run.flush(progress)
        run.flush(progress)
    except (csv.Error, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise InvalidCSV(f"{path}: unreadable ({exc})") from exc


def import_cells(
    engine: Engine,
    redis_client: redis.Redis,
    path: Path,
    *,
    geocoder: Geocoder,
    metrics: Metrics,
    now: datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import one cell CSV file (module docstring).

    ``progress(rows, position)`` is called after each chunk with its rows
    and how many bytes of the file have been read.

    Raises :class:`InvalidCSV` for an unknown radio or an invalid first
    data row; what was committed before stays.
    """
    moment = now or datetime.now(UTC).replace(tzinfo=None)
    with path.open("rb") as raw, _open_text(raw) as text:
        run = _Run(engine, geocoder, metrics, moment, chunk_rows, raw, redis_client)
        try:
            _read(path, text, run, progress)
        except InvalidCSV:
            # The rows read before the stop were valid: keep them.
            run.flush()
            run.flush_areas()
            raise
    run.flush_areas()
    update_region_stats(engine, redis_client)
    for message in run.summary.lines():
        log.info("%s: %s", path, message)
    return run.summary
