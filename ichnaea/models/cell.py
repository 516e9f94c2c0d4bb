"""Cell station tables, one per radio, and the cell-area table.

Cells are stored by radio in ``cell_gsm``, ``cell_wcdma``, ``cell_lte`` and
``cell_nr`` (there is no ``cell_cdma``); the four classes are generated from
one definition and reached through :data:`CELL_TABLES`, keyed by
:class:`ichnaea.enums.Radio`. Each row has the station columns of
:class:`ichnaea.models.station.StationMixin` plus the cell identity:

* GSM, WCDMA, LTE: ``lac`` SMALLINT UNSIGNED (16-bit LAC/TAC), ``cid`` INT
  UNSIGNED (up to the 28-bit LTE ECI), and the binary key ``cellid`` of 11
  bytes, ``struct`` layout ``!bHHHI`` (radio, mcc, mnc, lac, cid).
* 5G NR (radio 4), new in this implementation: ``lac`` is the 24-bit
  tracking area code, stored as INT UNSIGNED; ``cid`` is the 36-bit NR cell
  identity (NCI), stored as BIGINT UNSIGNED; ``cellid`` is 17 bytes,
  ``!bHHIQ`` (radio, mcc, mnc, 32-bit TAC, 64-bit NCI).

The encodings are implemented in :mod:`ichnaea.codecs`. ``(radio, mcc, mnc,
lac, cid)`` is also unique on its own (``<table>_cellid_unique``).

``cell_area`` aggregates the cells of one location/tracking area, keyed by
the 7-byte ``areaid`` (``!bHHH``: radio, mcc, mnc, 16-bit lac), as in the
original schema. 5G NR tracking areas (24-bit TAC) live in ``cell_area_nr``,
keyed by the 9-byte ``!bHHI``, with the same columns; :func:`area_table`
picks the table of a radio.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from ichnaea.codecs import AREAID_BYTES, CELLID_BYTES, NR_AREAID_BYTES, NR_CELLID_BYTES
from ichnaea.enums import Radio
from ichnaea.models.base import (
    Base,
    BigUnsigned,
    IntUnsigned,
    SmallUnsigned,
    TinyInt,
    fixed_binary,
    table_args,
)
from ichnaea.models.station import StationMixin, station_indexes


class Cell(StationMixin, Base):
    """A cell; concrete classes are the values of :data:`CELL_TABLES`."""

    __abstract__ = True

    # ichnaea.enums.Radio value; always the radio of the table.
    radio: Mapped[int] = mapped_column(TinyInt)
    mcc: Mapped[int] = mapped_column(SmallInteger)
    mnc: Mapped[int] = mapped_column(SmallInteger)
    # Primary scrambling code (WCDMA) / physical cell id (LTE, NR).
    psc: Mapped[int | None] = mapped_column(SmallInteger)

    if TYPE_CHECKING:
        # Per-radio widths; the columns are built by _make_cell_table.
        cellid: Mapped[bytes]
        lac: Mapped[int]
        cid: Mapped[int]


# radio -> (cellid bytes, lac type, cid type)
_CELL_LAYOUTS: dict[Radio, tuple[int, TypeEngine[int], TypeEngine[int]]] = {
    Radio.gsm: (CELLID_BYTES, SmallUnsigned, IntUnsigned),
    Radio.wcdma: (CELLID_BYTES, SmallUnsigned, IntUnsigned),
    Radio.lte: (CELLID_BYTES, SmallUnsigned, IntUnsigned),
    Radio.nr: (NR_CELLID_BYTES, IntUnsigned, BigUnsigned),
}


def _make_cell_table(radio: Radio) -> type[Cell]:
    cellid_bytes, lac_type, cid_type = _CELL_LAYOUTS[radio]
    table = f"cell_{radio.name}"
    namespace: dict[str, Any] = {
        "__tablename__": table,
        "__table_args__": table_args(
            UniqueConstraint("radio", "mcc", "mnc", "lac", "cid", name=f"{table}_cellid_unique"),
            *station_indexes(table),
        ),
        "__module__": __name__,
        "cellid": mapped_column(fixed_binary(cellid_bytes), primary_key=True),
        "lac": mapped_column(lac_type, nullable=False),
        "cid": mapped_column(cid_type, nullable=False),
    }
    return cast(type[Cell], type(f"Cell{radio.name.capitalize()}", (Cell,), namespace))


CELL_TABLES: dict[Radio, type[Cell]] = {radio: _make_cell_table(radio) for radio in _CELL_LAYOUTS}


class _AreaColumns:
    """The columns every cell-area table has besides its key and LAC/TAC."""

    radio: Mapped[int] = mapped_column(TinyInt)
    mcc: Mapped[int] = mapped_column(SmallInteger)
    mnc: Mapped[int] = mapped_column(SmallInteger)
    lat: Mapped[float | None] = mapped_column(Double)
    lon: Mapped[float | None] = mapped_column(Double)
    # Metres; signed in the original schema.
    radius: Mapped[int | None] = mapped_column(Integer)
    region: Mapped[str | None] = mapped_column(String(2))
    avg_cell_radius: Mapped[int | None] = mapped_column(IntUnsigned)
    num_cells: Mapped[int | None] = mapped_column(IntUnsigned)
    created: Mapped[datetime | None] = mapped_column(DateTime)
    modified: Mapped[datetime | None] = mapped_column(DateTime)
    last_seen: Mapped[date | None] = mapped_column(Date)


def _area_table_args(table: str) -> Any:
    return table_args(
        UniqueConstraint("radio", "mcc", "mnc", "lac", name=f"{table}_areaid_unique"),
        Index(f"{table}_region_radio_idx", "region", "radio"),
        Index(f"{table}_created_idx", "created"),
        Index(f"{table}_modified_idx", "modified"),
        Index(f"{table}_latlon_idx", "lat", "lon"),
    )


class CellArea(_AreaColumns, Base):
    """A GSM/WCDMA/LTE location or tracking area: the aggregate of its cells."""

    __tablename__ = "cell_area"
    __table_args__ = _area_table_args("cell_area")

    areaid: Mapped[bytes] = mapped_column(fixed_binary(AREAID_BYTES), primary_key=True)
    lac: Mapped[int] = mapped_column(SmallUnsigned)


class CellAreaNr(_AreaColumns, Base):
    """A 5G NR tracking area (24-bit TAC, 9-byte key); new in this implementation."""

    __tablename__ = "cell_area_nr"
    __table_args__ = _area_table_args("cell_area_nr")

    areaid: Mapped[bytes] = mapped_column(fixed_binary(NR_AREAID_BYTES), primary_key=True)
    lac: Mapped[int] = mapped_column(IntUnsigned)


AREA_TABLES: tuple[type[CellArea] | type[CellAreaNr], ...] = (CellArea, CellAreaNr)


def area_table(radio: int) -> type[CellArea] | type[CellAreaNr]:
    """The area table of a radio: ``cell_area_nr`` for NR, ``cell_area`` otherwise."""
    return CellAreaNr if radio == Radio.nr else CellArea
