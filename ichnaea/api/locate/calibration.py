"""The accuracy radius, calibrated: what ``accuracy`` promises, and how it keeps it.

Decision (issue 11): the ``accuracy`` of a position answered from our own
station data is the radius of the circle around the answer that holds the
true position with a stated confidence, **95 %** by default. That is what
the W3C Geolocation API promises a web page (browsers pass our answer on
unchanged). ``LOCATE_CONFIDENCE=68`` states 68 % instead, what Android's
``Location.getAccuracy()`` promises an app; choose it when the service
answers mostly Android network-location providers. Both are calibrated.

The original's radius was the 95th percentile of the distances from the
answer to the networks used, bounded per type (Wi-Fi 10-500 m, Bluetooth
10-50 m, cells 1-50 km, cell areas 50-500 km): measured on our synthetic
worlds (``benchmarks/accuracy/``, seeds 1-2) it held the truth 91 % of the
time for Wi-Fi, 51 % for Bluetooth, 81 % for cells and every time for
areas, so it promised nothing in particular.

The calibrated radius is a quantile regression of the error on that same
spread, fitted per network type and per number of networks used::

    radius = clamp(intercept + slope * spread, floor, ceiling)

where ``spread`` is :attr:`Position.spread_m` (the 95th percentile of the
distances to the networks used, unbounded, or the station's or area's
radius when it was used alone), and ``(intercept, slope)`` come from the
first row of the type's table whose ``min_networks`` the result reaches
(rows in descending order). The tables are data, in
``ichnaea/data/radius_calibration.json``, written by
``benchmarks/accuracy/calibrate.py`` from training worlds and checked on
held-out ones (``benchmarks/RESULTS.md``); the file names the seeds and
the commit it was fitted on.

Answers from GeoIP and from the external fallback keep their own radius:
there is no ground truth here to calibrate them against.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from ichnaea.api.locate.result import DataSource, Position

TABLE_PATH = Path(__file__).resolve().parents[2] / "data" / "radius_calibration.json"
CONFIDENCES = (68, 95)
DEFAULT_CONFIDENCE = 95
KINDS = ("wifi", "blue", "cell", "area")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a type's table: applies from ``min_networks`` networks used."""

    min_networks: int
    intercept_m: float
    slope: float


@dataclass(frozen=True, slots=True)
class KindTable:
    floor_m: float
    ceiling_m: float
    rows: tuple[Row, ...]  # descending min_networks; the last one has min_networks 1

    def radius(self, spread_m: float, networks: int) -> float:
        for row in self.rows:
            if networks >= row.min_networks:
                break
        spread = spread_m if spread_m == spread_m else 0.0  # NaN: no spread known
        return min(max(row.intercept_m + row.slope * spread, self.floor_m), self.ceiling_m)


def kind_of(position: Position) -> str | None:
    """The table a result is calibrated by, or None (not from our station data)."""
    if position.source is not DataSource.internal or not position.used_networks:
        return None
    return position.used_networks[0][0]


class Calibration:
    """Turns the internal source's spreads into radii of one confidence."""

    def __init__(self, confidence: int, tables: dict[str, KindTable]) -> None:
        missing = set(KINDS) - set(tables)
        if missing:
            raise ValueError(f"radius calibration: no table for {', '.join(sorted(missing))}")
        self.confidence = confidence
        self.tables = tables

    def radius(self, position: Position) -> float:
        kind = kind_of(position)
        if kind is None:
            return position.accuracy
        return self.tables[kind].radius(position.spread_m, len(position.used_networks))

    def apply(self, results: Sequence[Position]) -> list[Position]:
        """The results with calibrated radii (new objects; the inputs are left alone)."""
        out = []
        for position in results:
            radius = self.radius(position)
            out.append(position if radius == position.accuracy else position.with_accuracy(radius))
        return out


def table_from(data: dict[str, Any], where: str) -> KindTable:
    rows = tuple(
        Row(int(r["min_networks"]), float(r["intercept_m"]), float(r["slope"]))
        for r in data["rows"]
    )
    if not rows or rows[-1].min_networks != 1:
        raise ValueError(f"{where}: the last row must have min_networks 1")
    if any(a.min_networks <= b.min_networks for a, b in pairwise(rows)):
        raise ValueError(f"{where}: rows must be in descending min_networks")
    table = KindTable(float(data["floor_m"]), float(data["ceiling_m"]), rows)
    if not 0 <= table.floor_m <= table.ceiling_m or not math.isfinite(table.ceiling_m):
        raise ValueError(f"{where}: need 0 <= floor_m <= ceiling_m < inf")
    return table


def load(confidence: int = DEFAULT_CONFIDENCE, path: Path = TABLE_PATH) -> Calibration:
    """The calibration of ``confidence`` (68 or 95) from the table file."""
    if confidence not in CONFIDENCES:
        raise ValueError(f"confidence must be one of {CONFIDENCES}, got {confidence}")
    data = json.loads(path.read_text())
    tables = data["confidence"][str(confidence)]
    return Calibration(
        confidence,
        {kind: table_from(tables[kind], f"{path.name}: {confidence}/{kind}") for kind in tables},
    )
