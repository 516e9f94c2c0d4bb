"""Small integer enumerations stored in the database and sent on the wire.

The values are part of the storage format (the ``radio`` byte of cell keys,
the ``source`` column of station tables, the ``key`` column of ``stat``), so
they never change; retired values are not reused.
"""

from __future__ import annotations

from enum import IntEnum


class Radio(IntEnum):
    """Radio technology of a cell; the first byte of cell and area keys."""

    gsm = 0
    cdma = 1  # never stored: CDMA cells are dropped at the API layer
    wcdma = 2
    lte = 3
    nr = 4  # 5G New Radio; cells live in ``cell_nr``


class ReportSource(IntEnum):
    """Where the position of a report came from (``source`` column)."""

    fixed = 0
    gnss = 3
    fused = 6
    query = 9


class StatKey(IntEnum):
    """Counters of the ``stat`` table; 0, 5, 6 and 7 are retired."""

    cell = 1
    unique_cell = 2
    wifi = 3
    unique_wifi = 4
    blue = 8
    unique_blue = 9
