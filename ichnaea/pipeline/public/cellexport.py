"""The public cell export: MLS-format CSV files of the learned cells (spec section 14.1).

File format (what the published MLS exports held, which downstream tools
parse):

* gzip (level 5) of UTF-8 text with CRLF line ends;
* header ``radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,
  created,updated,averageSignal``;
* one row per cell with a position: ``radio`` is ``GSM``, ``UMTS`` (wcdma),
  ``LTE`` or ``NR``; ``unit`` the psc or empty; ``lon``/``lat`` with seven
  decimals (``-0.1000000``); ``range`` the radius and ``samples``, 0 when
  unknown; ``changeable`` always ``1``; ``created``/``updated`` Unix
  seconds (UTC) or empty; ``averageSignal`` always empty.
* tables in the order gsm, wcdma, lte, nr, each in cell id order, read in
  pages of ``page_size`` rows by key (not OFFSET, which rescans).

NR rows are our addition (the original had no 5G table); they come last,
so a reader that stops at unknown radios still gets every older one.

Two windows (``full_window``, ``diff_window``):

* full: cells modified on or after the day 365 days before today, file
  ``MLS-full-cell-export-YYYY-MM-DDT000000.csv.gz``;
* diff: the last whole hour, ``start <= modified < end`` with ``end`` = now
  truncated to the hour, file ``MLS-diff-cell-export-YYYY-MM-DDTHH0000.csv.gz``
  (HH the end hour).

``publish`` writes the file to a temporary path and hands it to the
:mod:`ichnaea.objectstore` store of ``ASSET_BUCKET`` as ``export/<filename>``.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import io
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.engine import Engine

from ichnaea.enums import Radio
from ichnaea.objectstore import DirectoryStore, ObjectStore
from ichnaea.repositories.cell_exchange import export_pages
from ichnaea.values import naive_utc

log = logging.getLogger(__name__)

CSV_HEADER = (
    "radio",
    "mcc",
    "net",
    "area",
    "cell",
    "unit",
    "lon",
    "lat",
    "range",
    "samples",
    "changeable",
    "created",
    "updated",
    "averageSignal",
)
# Export order and the radio names of the CSV (wcdma is "UMTS").
EXPORT_RADIOS: tuple[tuple[Radio, str], ...] = (
    (Radio.gsm, "GSM"),
    (Radio.wcdma, "UMTS"),
    (Radio.lte, "LTE"),
    (Radio.nr, "NR"),
)
PAGE_SIZE = 25_000
GZIP_LEVEL = 5
EXPORT_PREFIX = "export/"
# The names of the files under it (kind, day, hour), as ExportWindow gives them.
EXPORT_NAME = re.compile(r"MLS-(full|diff)-cell-export-(\d{4}-\d{2}-\d{2})T(\d{2})0000\.csv\.gz")
# Days a local directory store keeps its exports (a bucket: its lifecycle policy).
LOCAL_KEEP_DAYS = 7
FULL_DAYS = 365


@dataclass(frozen=True)
class ExportWindow:
    """Which cells one export holds (by ``modified``, naive UTC) and its file name."""

    kind: str
    start: datetime
    end: datetime | None
    filename: str


def full_window(now: datetime) -> ExportWindow:
    """Cells modified since the day 365 days before ``now``'s day (UTC)."""
    today = naive_utc(now).date()
    start = datetime.combine(today - timedelta(days=FULL_DAYS), time())
    return ExportWindow("full", start, None, f"MLS-full-cell-export-{today:%Y-%m-%d}T000000.csv.gz")


def diff_window(now: datetime) -> ExportWindow:
    """Cells modified in the last whole hour before ``now`` (UTC)."""
    end = naive_utc(now).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=1)
    return ExportWindow("diff", start, end, f"MLS-diff-cell-export-{end:%Y-%m-%dT%H}0000.csv.gz")


def coordinate_text(value: float | None) -> str:
    """Seven decimals, the text MySQL's ``ROUND(x, 7)`` gives; "" for NULL.

    ``+ 0.0`` turns a rounded -0.0 into 0.0, as MySQL prints ROUND(-1e-8, 7).
    """
    return "" if value is None else f"{round(value, 7) + 0.0:.7f}"


def unix_text(value: date | None) -> str:
    """Unix seconds of a naive UTC datetime, or of a date's midnight UTC; "" for NULL."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return str(calendar.timegm(value.utctimetuple()))
    return str(calendar.timegm(value.timetuple()))


def _rows(engine: Engine, window: ExportWindow, page_size: int) -> Iterator[list[Any]]:
    """Pages of CSV rows, table by table in cell id order."""
    for radio, name in EXPORT_RADIOS:
        pages = export_pages(engine, radio, start=window.start, end=window.end, page_size=page_size)
        for page in pages:
            yield [
                [
                    name,
                    row.mcc,
                    row.mnc,
                    row.lac,
                    row.cid,
                    "" if row.psc is None else row.psc,
                    coordinate_text(row.lon),
                    coordinate_text(row.lat),
                    row.radius or 0,
                    row.samples or 0,
                    1,
                    unix_text(row.created),
                    unix_text(row.modified),
                    "",
                ]
                for row in page
            ]


def write_cells(
    engine: Engine,
    out: BinaryIO,
    window: ExportWindow,
    *,
    page_size: int = PAGE_SIZE,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Write the gzip CSV of ``window`` to ``out``; return the number of cells."""
    if page_size < 1:
        raise ValueError(f"page_size must be positive, got {page_size}")
    count = 0
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as zipped:
        text = io.TextIOWrapper(zipped, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        for page in _rows(engine, window, page_size):
            writer.writerows(page)
            count += len(page)
            if progress is not None:
                progress(len(page))
        text.flush()
        text.detach()  # the gzip stream is closed by its own with, `out` by the caller
    return count


def prune_local(store: ObjectStore, now: datetime, *, keep_days: int = LOCAL_KEEP_DAYS) -> int:
    """Delete the exports of a local directory store dated before ``now - keep_days``.

    A bucket expires its exports by a lifecycle policy (the README's,
    ``docker/s3-lifecycle.json``: 7 days); a local directory has none, and
    the scheduler writes 25 files a day into it (on the embedded default
    too), so the export job does it: the same 7 days by default. Files of
    other names are left alone. Returns how many were deleted.
    """
    if not isinstance(store, DirectoryStore):
        return 0
    cutoff = (now - timedelta(days=keep_days)).date()
    old = [
        key
        for key in store.sizes(EXPORT_PREFIX)
        if (match := EXPORT_NAME.fullmatch(key[len(EXPORT_PREFIX) :])) is not None
        and date.fromisoformat(match.group(2)) < cutoff
    ]
    store.delete(old)
    if old:
        log.info("deleted %d cell exports older than %d days", len(old), keep_days)
    return len(old)


def publish(
    engine: Engine,
    store: ObjectStore,
    window: ExportWindow,
    *,
    page_size: int = PAGE_SIZE,
    progress: Callable[[int], object] | None = None,
) -> tuple[str, int]:
    """Export ``window`` and store it as ``export/<filename>``; return (location, cells)."""
    with tempfile.TemporaryDirectory(prefix="ichnaea-export-") as tmp:
        path = Path(tmp) / window.filename
        with path.open("wb") as out:
            count = write_cells(engine, out, window, page_size=page_size, progress=progress)
        location = store.put(EXPORT_PREFIX + window.filename, path)
    log.info("%s cell export: %d cells to %s", window.kind, count, location)
    return location, count
