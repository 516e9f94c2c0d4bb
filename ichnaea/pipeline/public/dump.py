"""Station dump: every station of one type as a gzip CSV (spec pipeline.md section 14.3).

:func:`dump_stations` writes one header line, then one line per station of
all the tables of the type (LF line endings, UTF-8, gzip):

* ``blue``/``wifi``: the 16 shards ``0`` … ``f`` in order; header
  ``mac,lat,lon,max_lat,min_lat,max_lon,min_lon,radius,region,samples,
  source,weight,created,modified,last_seen,block_first,block_last,
  block_count`` (one line); ``mac`` is 12 lower-case hex characters.
* ``cell``: ``cell_gsm``, ``cell_wcdma``, ``cell_lte``, then ``cell_nr``;
  header ``radio,mcc,mnc,lac,cid,psc,`` followed by the columns above after
  ``mac``; ``radio`` is ``GSM``, ``WCDMA``, ``LTE`` or ``NR``, ``psc`` is
  empty when NULL.

Values are written as the original MySQL ``CONCAT_WS`` export printed them:
coordinates rounded to 7 decimals with exactly 7 digits (``-0.1000000``,
never ``-0.0000000``); ``radius``, ``samples``, ``weight`` and
``block_count`` are ``0`` when NULL; ``weight`` is the shortest text of the
double, without ``.0`` on whole numbers (``2``, ``2.5``); datetimes (naive
UTC) and dates (midnight UTC) are integer Unix seconds; other NULLs are
empty.

Each table is read in pages of ``page_size`` rows by primary key (keyset
pagination: ``WHERE key > last ORDER BY key LIMIT n``), all on one
connection. With ``bounds`` = ``(max_lat, min_lat, max_lon, min_lon)``
(see :func:`area_bounds`) only stations with ``min_lat <= lat <= max_lat``
and ``min_lon <= lon <= max_lon`` are written.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from sqlalchemy.engine import Engine

from ichnaea import geo
from ichnaea.codecs import decode_mac
from ichnaea.enums import Radio
from ichnaea.pipeline.public.cellexport import coordinate_text, unix_text
from ichnaea.repositories.dumps import station_pages

PAGE_SIZE = 25_000

RADIO_NAMES: dict[int, str] = {
    Radio.gsm: "GSM",
    Radio.wcdma: "WCDMA",
    Radio.lte: "LTE",
    Radio.nr: "NR",
}


def _count(value: int | None) -> str:
    return "0" if value is None else str(value)


def _double(value: float | None) -> str:
    if value is None:
        return "0"
    text = repr(value + 0.0)
    return text.removesuffix(".0")


def _text(value: object) -> str:
    return "" if value is None else str(value)


# The columns every station line ends with, and how each is written.
_STATION_FIELDS: tuple[tuple[str, Callable[[Any], str]], ...] = (
    ("lat", coordinate_text),
    ("lon", coordinate_text),
    ("max_lat", coordinate_text),
    ("min_lat", coordinate_text),
    ("max_lon", coordinate_text),
    ("min_lon", coordinate_text),
    ("radius", _count),
    ("region", _text),
    ("samples", _count),
    ("source", _text),
    ("weight", _double),
    ("created", unix_text),
    ("modified", unix_text),
    ("last_seen", unix_text),
    ("block_first", unix_text),
    ("block_last", unix_text),
    ("block_count", _count),
)
STATION_COLUMNS = tuple(name for name, _ in _STATION_FIELDS)
CELL_IDENTITY = ("radio", "mcc", "mnc", "lac", "cid", "psc")
MAC_HEADER = ("mac", *STATION_COLUMNS)
CELL_HEADER = (*CELL_IDENTITY, *STATION_COLUMNS)


def area_bounds(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """``(max_lat, min_lat, max_lon, min_lon)`` of the box ``radius_m`` around a point.

    The sides are the geodesic destinations north, south, east and west
    (:func:`ichnaea.geo.bbox`: Vincenty direct, clamped to ±85.051° / ±180°),
    each rounded to 5 decimals, e.g. ``area_bounds(51.5, -0.1, 25000)`` is
    ``(51.7247, 51.27529, 0.26002, -0.46002)``.
    """
    max_lat, min_lat, max_lon, min_lon = geo.bbox(lat, lon, radius_m)
    return (round(max_lat, 5), round(min_lat, 5), round(max_lon, 5), round(min_lon, 5))


def _station_values(values: Sequence[Any]) -> list[str]:
    return [fmt(value) for (_, fmt), value in zip(_STATION_FIELDS, values, strict=True)]


def _mac_line(row: Sequence[Any]) -> list[str]:
    return [decode_mac(row[0]), *_station_values(row[1:])]


def _cell_line(row: Sequence[Any]) -> list[str]:
    # row[0] is the binary cellid, selected only as the paging key.
    radio, mcc, mnc, lac, cid, psc = row[1:7]
    return [
        RADIO_NAMES.get(radio, ""),
        str(mcc),
        str(mnc),
        str(lac),
        str(cid),
        _text(psc),
        *_station_values(row[7:]),
    ]


def dump_stations(
    engine: Engine,
    datatype: str,
    out: BinaryIO,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    page_size: int = PAGE_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the gzip CSV of every ``datatype`` station to ``out``; return the row count.

    ``out`` is left open. ``progress(n)`` is called after each non-empty
    page with the number of rows it wrote.

    Raises
    ------
    ValueError
        If ``datatype`` is not one of :data:`ichnaea.repositories.dumps.DATATYPES`
        or ``page_size < 1``.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    if datatype == "cell":
        header, columns, line = CELL_HEADER, ("cellid", *CELL_HEADER), _cell_line
    else:
        header, columns, line = MAC_HEADER, MAC_HEADER, _mac_line
    total = 0
    with engine.connect() as connection:
        # Raises for an unknown datatype before the gzip stream writes to ``out``.
        pages = station_pages(connection, datatype, columns, bounds=bounds, page_size=page_size)
        with (
            gzip.GzipFile(fileobj=out, mode="wb") as gz,
            io.TextIOWrapper(gz, encoding="utf-8", newline="") as text,
        ):
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(header)
            for rows in pages:
                writer.writerows(line(row) for row in rows)
                total += len(rows)
                if progress is not None:
                    progress(len(rows))
    return total
