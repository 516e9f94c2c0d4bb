"""Search results and how the best one is chosen.

Positions (spec locate.md 3.7): results are sorted by accuracy; every result
seeds a cluster of itself and the later results close enough to it
(distance ≤ 1.5 times the larger of the two accuracies). The cluster with the
highest summed score wins (ties: the higher single score, then the earlier
seed, i.e. the more accurate one), and within it the most accurate result.
A query is *satisfied* when that cluster sums to a score of at least 1 and
reaches the accuracy class the query's data could reach; only then is the
external fallback provider skipped.

Regions (3.8): results are grouped by region code; the group with the
highest summed score wins (ties: the larger region), and within it the
result from the most direct source (internal before fallback before GeoIP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

from ichnaea._fast import best_position_index, round7
from ichnaea.api.locate.constants import DataAccuracy
from ichnaea.geo import distance_m


class DataSource(IntEnum):
    internal = 1
    fallback = 2
    geoip = 3


# (network type, binary id, seen today)
UsedNetwork = tuple[str, bytes, bool]


@dataclass(slots=True)
class Position:
    lat: float
    lon: float
    accuracy: float
    score: float
    source: DataSource
    fallback: str | None = None
    used_networks: list[UsedNetwork] = field(default_factory=list)
    # The internal source's spread before any bound: the 95th percentile of
    # the distances to the networks used, or the station's radius when one
    # was used alone (metres; NaN for other sources). Read by the radius
    # calibration (ichnaea.api.locate.calibration), never answered.
    spread_m: float = math.nan

    def __post_init__(self) -> None:
        # round(x, DEGREE_DECIMAL_PLACES), compiled: this runs for every result.
        self.lat = round7(self.lat)
        self.lon = round7(self.lon)
        self.accuracy = round7(self.accuracy)

    @property
    def data_accuracy(self) -> DataAccuracy:
        return DataAccuracy.from_number(self.accuracy)

    def with_accuracy(self, accuracy: float) -> Position:
        """This result with another accuracy: ``dataclasses.replace(self,
        accuracy=accuracy)``, at half its cost (it runs for most answers)."""
        return Position(
            self.lat,
            self.lon,
            accuracy,
            self.score,
            self.source,
            self.fallback,
            self.used_networks,
            self.spread_m,
        )


@dataclass(slots=True)
class Region:
    region_code: str
    region_name: str
    accuracy: float
    score: float
    source: DataSource
    fallback: str | None = None


def _best_position_cluster(results: list[Position]) -> list[Position]:
    if len(results) <= 1:
        return list(results)
    ordered = sorted(results, key=lambda r: r.accuracy)
    best: list[Position] = []
    best_key: tuple[float, float] | None = None
    for i, seed in enumerate(ordered):
        cluster = [seed]
        for other in ordered[i + 1 :]:
            reach = 1.5 * max(seed.accuracy, other.accuracy)
            if distance_m(seed.lat, seed.lon, other.lat, other.lon) <= reach:
                cluster.append(other)
        key = (_left_to_right_sum([r.score for r in cluster]), max(r.score for r in cluster))
        # Strictly greater: on a full tie the earlier (more accurate) seed stays.
        if best_key is None or key > best_key:
            best, best_key = cluster, key
    return best


def _left_to_right_sum(values: list[float]) -> float:
    """The sum as plain double additions, in order (``sum`` compensates from Python
    3.12 on): the compiled path adds the same way, on every version."""
    total = 0.0
    for value in values:
        total += value
    return total


def best_position(results: list[Position]) -> Position | None:
    """The best result (see the module docstring); compiled for the usual results
    (``ichnaea._fast.best_position_index``), of which this is the specification."""
    index = best_position_index(results) if type(results) is list else None
    if index is not None:
        return results[index] if index >= 0 else None
    return _best_position(results)


def _best_position(results: list[Position]) -> Position | None:
    cluster = _best_position_cluster(results)
    if not cluster:
        return None
    return min(cluster, key=lambda r: (r.accuracy, -r.score))


def satisfies(results: list[Position], expected: DataAccuracy) -> bool:
    """Whether the results are good enough to skip the fallback provider."""
    cluster = _best_position_cluster(results)
    if not cluster or sum(r.score for r in cluster) < 1.0:
        return False
    reached = min(r.data_accuracy.value for r in cluster)
    return reached <= expected.value


def best_region(results: list[Region]) -> Region | None:
    if not results:
        return None
    groups: dict[str, list[Region]] = {}
    for result in results:
        groups.setdefault(result.region_code, []).append(result)
    group = max(
        groups.values(),
        key=lambda g: (sum(r.score for r in g), max(r.accuracy for r in g)),
    )
    return min(group, key=lambda r: (r.source, -r.score))
