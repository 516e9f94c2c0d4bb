"""Station lookups for the locate path: batched, one statement per network type.

All Wi-Fi MACs of a query are fetched with one ``UNION ALL`` over the shard
tables they touch (one ``SELECT ... WHERE mac IN (...)`` per shard), and the
same for Bluetooth and cells (one table per radio; the 17-byte NR keys get a
statement of their own, see :func:`_run`). Cell areas take one statement per
table (7-byte and 9-byte NR area ids). Rows without
a position never come back. The result is a set of NumPy columns ready for
scoring and the positioning kernels; dates are day numbers and datetimes
seconds since the epoch, NULL is NaN.

Blocked stations (moved recently or repeatedly; spec locate.md 4.2) are
dropped here, vectorised, so no caller can forget to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, ResourceClosedError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from ichnaea.codecs import NR_AREAID_BYTES, mac_shard_id
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES, CellArea, CellAreaNr
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS
from ichnaea.values import as_date, or_nan

Float = NDArray[np.float64]

_EPOCH = datetime(1970, 1, 1)
_NAN = float("nan")
# A station blocked on one of the last two days is ignored.
TEMPORARY_BLOCK_DAYS = 2
# A blocked station is *relearned*, and answered again, once GNSS
# observations that agree with each other have given it a position again
# since its last block: RELEARN_SAMPLES of them, for a station blocked at
# most MAX_RELEARN_BLOCKS times (one that keeps moving stays blocked by the
# rules above). A decision of issue 11: the original left a moved station
# blocked for as long as its age rule said (45 days for a young one), and
# never answered from its new place meanwhile. The pipeline
# (ichnaea.pipeline.stations.state) only lets GNSS observations give a
# blocked station a position; the index kernel (ichnaea/_fast/_index.pyx)
# keeps the same constants (tests/index/test_relearn.py holds them equal).
RELEARN_SAMPLES = 10
MAX_RELEARN_BLOCKS = 2


def relearned(samples: Float, block_count: Float) -> NDArray[np.bool_]:
    """Which blocked stations with a position are relearned (NaN samples: no; a
    NULL count is 0, as the index stores it)."""
    result: NDArray[np.bool_] = (samples >= RELEARN_SAMPLES) & (block_count <= MAX_RELEARN_BLOCKS)
    return result


@dataclass(slots=True)
class StationRows:
    """Columns of found, unblocked stations, in one consistent row order."""

    keys: list[bytes]
    lat: Float
    lon: Float
    radius_m: Float
    samples: Float
    created_day: Float
    modified_s: Float
    last_seen_day: Float
    block_last_day: Float
    region: list[str | None]
    # Scores at the request's time, when the lookup computed them (the
    # station index's kernel does); None: ichnaea.api.locate.score computes them.
    score: Float | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, mask: NDArray[np.bool_]) -> StationRows:
        index = np.flatnonzero(mask)
        return StationRows(
            keys=[self.keys[i] for i in index],
            lat=self.lat[index],
            lon=self.lon[index],
            radius_m=self.radius_m[index],
            samples=self.samples[index],
            created_day=self.created_day[index],
            modified_s=self.modified_s[index],
            last_seen_day=self.last_seen_day[index],
            block_last_day=self.block_last_day[index],
            region=[self.region[i] for i in index],
            score=None if self.score is None else self.score[index],
        )


def _datetime(value: datetime | str | None) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _day(value: date | str | None) -> float:
    day = as_date(value)
    return float(day.toordinal()) if day is not None else _NAN


def _seconds(value: datetime | str | None) -> float:
    moment = _datetime(value)
    return (moment - _EPOCH).total_seconds() if moment is not None else _NAN


def _rows_to_columns(rows: Sequence[Any]) -> tuple[StationRows, Float]:
    """Columns of ``(key, lat, lon, radius, region, samples, created, modified,
    last_seen, block_last, block_count)`` rows, plus the block counts."""
    n = len(rows)
    data = np.empty((9, n), dtype=np.float64)
    keys: list[bytes] = []
    region: list[str | None] = []
    for i, r in enumerate(rows):
        keys.append(bytes(r[0]))
        region.append(r[4])
        data[0, i] = r[1]
        data[1, i] = r[2]
        data[2, i] = or_nan(r[3])
        data[3, i] = or_nan(r[5])
        data[4, i] = _day(r[6])
        data[5, i] = _seconds(r[7])
        data[6, i] = _day(r[8])
        data[7, i] = _day(r[9])
        data[8, i] = or_nan(r[10])
    columns = StationRows(
        keys=keys,
        lat=data[0],
        lon=data[1],
        radius_m=data[2],
        samples=data[3],
        created_day=data[4],
        modified_s=data[5],
        last_seen_day=data[6],
        block_last_day=data[7],
        region=region,
    )
    return columns, data[8]


def blocked(rows: StationRows, block_count: Float, today: date) -> NDArray[np.bool_]:
    """Stations excluded from locate: blocked in the last two days, or
    blocked at least once per 30 days of their life (so any block in the
    first 15 days), unless :func:`relearned` since."""
    today_day = float(today.toordinal())
    recent = (today_day - rows.block_last_day) < TEMPORARY_BLOCK_DAYS  # NaN compares False
    count = np.nan_to_num(block_count)
    age_months = np.round(np.abs(rows.created_day - today_day) / 30.0)
    repeated = (count > 0) & ~np.isnan(rows.created_day) & (count >= age_months)
    result: NDArray[np.bool_] = (recent | repeated) & ~relearned(rows.samples, count)
    return result


class StationReader:
    """One pooled DBAPI connection for the read-only lookups of one request.

    The lookups bypass SQLAlchemy's ``Connection`` on purpose: with its
    transaction bookkeeping, every request paid a ROLLBACK round trip and
    more Python than the query itself. That also bypasses the wrapping of
    driver errors ``Connection`` does, so it is done here: every database
    failure, from the checkout (connect, pre-ping) or from a query, leaves
    as a SQLAlchemy ``DBAPIError`` subclass, with ``connection_invalidated``
    set when the connection is gone (see :func:`is_outage`), and a
    connection the server dropped is invalidated so the pool replaces it.
    """

    def __init__(self, engine: Engine) -> None:
        self._dialect = engine.dialect
        self._error: type[Exception] = engine.dialect.loaded_dbapi.Error
        try:
            # Pool errors (checkout timeout) are SQLAlchemy's own already; a
            # failed connect or pre-ping reconnect is the driver's error.
            self._conn = engine.raw_connection()
        except self._error as exc:
            disconnect = self._dialect.is_disconnect(exc, None, None)
            raise DBAPIError.instance(
                None, None, exc, self._error, connection_invalidated=disconnect
            ) from exc
        style = engine.dialect.paramstyle
        self.marker = "%s" if style in ("format", "pyformat") else "?"

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        if not self._conn.is_valid:
            # Invalidated by an earlier lookup of this request.
            raise ResourceClosedError("the database connection was lost")
        try:
            cursor = self._conn.cursor()
            try:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
            finally:
                # Inside the handler below: on a connection that just broke,
                # closing the cursor fails too (MySQL 2006 after a 2013).
                cursor.close()
        except self._error as exc:
            disconnect = self._dialect.is_disconnect(exc, self._conn.dbapi_connection, None)  # type: ignore[arg-type]
            if disconnect:
                self._conn.invalidate(exc)
            raise DBAPIError.instance(
                sql, params, exc, self._error, connection_invalidated=disconnect
            ) from exc

    def close(self) -> None:
        self._conn.close()

    def macs(
        self, kind: str, macs: Sequence[bytes], *, today: date, now_s: float | None = None
    ) -> StationRows:
        return fetch_macs(self, kind, macs, today=today)  # scored by the caller

    def cells(
        self,
        cellids: Sequence[tuple[Radio, bytes]],
        *,
        today: date,
        now_s: float | None = None,
    ) -> StationRows:
        return fetch_cells(self, cellids, today=today)

    def areas(self, areaids: Sequence[bytes]) -> AreaRows:
        return fetch_areas(self, areaids)

    def __enter__(self) -> StationReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def is_outage(exc: SQLAlchemyError) -> bool:
    """True when ``exc`` says the database is unreachable, not that a statement is wrong.

    A lost or refused connection (``connection_invalidated``, which
    :class:`StationReader` sets and SQLAlchemy's own ``Connection`` sets
    alike), a pool that could not hand out a connection in time, or one
    it found dead on checkout.
    """
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated
    return isinstance(exc, (PoolTimeoutError, DisconnectionError, ResourceClosedError))


_STATION_COLUMNS = (
    "lat, lon, radius, region, samples, created, modified, last_seen, block_last, block_count"
)


def _station_sql(marker: str, table: str, key: str, count: int) -> str:
    markers = ", ".join([marker] * count)
    return (
        f"SELECT {key}, {_STATION_COLUMNS} FROM {table} "
        f"WHERE lat IS NOT NULL AND lon IS NOT NULL AND {key} IN ({markers})"
    )


def _run(conn: StationReader, groups: dict[str, list[bytes]], key: str, today: date) -> StationRows:
    """One ``UNION ALL`` statement per key width over the tables of ``groups`` (table -> ids).

    Plain SQL on purpose: building and compiling a SQLAlchemy statement for
    every combination of shards cost several times the query itself on this
    hot path. Table and column names come from the models, never from input.

    Tables whose keys differ in width (11-byte cell keys, 17-byte NR keys)
    never share a statement: MariaDB types a ``UNION`` column by its widest
    member and pads the narrower ``BINARY`` keys with zero bytes, so a key
    would come back unequal to the one asked for.
    """
    by_width: dict[int, dict[str, list[bytes]]] = {}
    for table, ids in groups.items():
        if ids:
            # Every id of one table has the table's key width.
            by_width.setdefault(len(ids[0]), {})[table] = ids
    found: list[Any] = []
    for tables in by_width.values():
        sql = " UNION ALL ".join(
            _station_sql(conn.marker, table, key, len(ids)) for table, ids in tables.items()
        )
        found += conn.rows(sql, tuple(i for ids in tables.values() for i in ids))
    # Key order, whatever order the tables answered in: clustering, the
    # sample's ties and the least-squares refinement see the rows in this
    # order, so the answer does not depend on it (the station index gives
    # the same order).
    found.sort(key=lambda row: bytes(row[0]))
    rows, block_count = _rows_to_columns(found)
    return rows.take(~blocked(rows, block_count, today))


def fetch_macs(
    conn: StationReader, kind: str, macs: Iterable[bytes], *, today: date
) -> StationRows:
    """Wi-Fi (``kind="wifi"``) or Bluetooth (``"blue"``) stations by 6-byte MAC."""
    shards = WIFI_SHARDS if kind == "wifi" else BLUE_SHARDS
    groups: dict[str, list[bytes]] = {}
    for mac in macs:
        table = shards[mac_shard_id(mac.hex())].__tablename__
        groups.setdefault(table, []).append(mac)
    return _run(conn, groups, "mac", today)


def fetch_cells(
    conn: StationReader, cellids: Iterable[tuple[Radio, bytes]], *, today: date
) -> StationRows:
    """Cells by ``(radio, cellid)``; each radio has its own table."""
    groups: dict[str, list[bytes]] = {}
    for radio, cellid in cellids:
        groups.setdefault(CELL_TABLES[radio].__tablename__, []).append(cellid)
    return _run(conn, groups, "cellid", today)


@dataclass(slots=True)
class AreaRows:
    keys: list[bytes]
    lat: Float
    lon: Float
    radius_m: Float
    num_cells: Float
    created_day: Float
    modified_s: Float
    last_seen_day: Float
    region: list[str | None]

    def __len__(self) -> int:
        return len(self.keys)


def fetch_areas(conn: StationReader, areaids: Iterable[bytes]) -> AreaRows:
    """Cell areas by areaid: 7-byte ids in ``cell_area``, 9-byte NR ids in ``cell_area_nr``.

    Areas are never blocked.
    """
    by_table: dict[str, list[bytes]] = {}
    for areaid in areaids:
        table = CellAreaNr if len(areaid) == NR_AREAID_BYTES else CellArea
        by_table.setdefault(table.__tablename__, []).append(areaid)
    rows: list[Any] = []
    for table_name, ids in by_table.items():
        markers = ", ".join([conn.marker] * len(ids))
        sql = (
            "SELECT areaid, lat, lon, radius, region, num_cells, created, modified, last_seen "
            f"FROM {table_name} "
            f"WHERE lat IS NOT NULL AND lon IS NOT NULL AND areaid IN ({markers})"
        )
        rows.extend(conn.rows(sql, tuple(ids)))
    return AreaRows(
        keys=[bytes(r[0]) for r in rows],
        lat=np.array([r[1] for r in rows], dtype=np.float64),
        lon=np.array([r[2] for r in rows], dtype=np.float64),
        radius_m=np.array([or_nan(r[3]) for r in rows], dtype=np.float64),
        num_cells=np.array([or_nan(r[5]) for r in rows], dtype=np.float64),
        created_day=np.array([_day(r[6]) for r in rows], dtype=np.float64),
        modified_s=np.array([_seconds(r[7]) for r in rows], dtype=np.float64),
        last_seen_day=np.array([_day(r[8]) for r in rows], dtype=np.float64),
        region=[r[4] for r in rows],
    )
