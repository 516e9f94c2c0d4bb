import pytest

from ichnaea.api.locate.constants import DataAccuracy
from ichnaea.api.locate.result import (
    DataSource,
    Position,
    Region,
    best_position,
    best_region,
    satisfies,
)


def pos(lat: float, lon: float, accuracy: float, score: float) -> Position:
    return Position(lat, lon, accuracy, score, DataSource.internal)


GB1 = (51.5, -0.1, 100_000, 0.6)
GB2 = (51.5002, -0.1, 10_000, 1.5)
GB3 = (51.7, -0.1, 1_000, 5.0)
BT1 = (27.5002, 90.5, 1_000, 0.5)
BT2 = (27.5, 90.5, 2_000, 2.0)
BT3 = (27.7, 90.7, 500, 5.0)
BT4 = (27.9, 90.7, 300, 5.0)


@pytest.mark.parametrize(
    ("inputs", "winner_lat"),
    [
        ([GB1], 51.5),
        ([BT1, BT2], 27.5002),
        ([GB1, BT2], 27.5),
        ([GB1, GB2, BT2], 51.5002),
        ([GB1, GB3, BT1, BT2], 51.7),
        ([GB1, GB2, BT2, BT3], 27.7),
        ([GB3, BT3], 27.7),
        ([BT3, BT4], 27.9),
    ],
)
def test_best_position_matches_the_spec_table(
    inputs: list[tuple[float, ...]], winner_lat: float
) -> None:
    best = best_position([pos(*values) for values in inputs])
    assert best is not None and best.lat == winner_lat


def test_best_of_nothing_is_none() -> None:
    assert best_position([]) is None
    assert best_region([]) is None


def test_satisfies_needs_score_and_accuracy() -> None:
    near = [pos(51.5, -0.1, 100, 0.5), pos(51.5, -0.1, 10_000, 0.6)]
    assert satisfies(near, DataAccuracy.high)
    assert not satisfies([pos(51.5, -0.1, 2_500, 2.0)], DataAccuracy.high)
    assert not satisfies([], DataAccuracy.low)


@pytest.mark.parametrize(
    ("accuracy", "level"),
    [
        (500, "high"),
        (500.1, "medium"),
        (50_000, "medium"),
        (50_000.1, "low"),
        (1e9, "none"),
        (-1, "high"),
        (None, "none"),
    ],
)
def test_data_accuracy_boundaries(accuracy: float | None, level: str) -> None:
    assert DataAccuracy.from_number(accuracy) is DataAccuracy[level]


def region(
    code: str, score: float, accuracy: float, source: DataSource = DataSource.geoip
) -> Region:
    return Region(code, code, accuracy, score, source)


def test_best_region_by_summed_score_then_size() -> None:
    best = best_region([region("US", 3, 200_000), region("GB", 5, 100_000)])
    assert best is not None and best.region_code == "GB"
    best = best_region(
        [region("US", 3, 200_000), region("US", 3, 200_000), region("GB", 5, 100_000)]
    )
    assert best is not None and best.region_code == "US"
    best = best_region([region("US", 3, 200_000), region("GB", 3, 100_000)])
    assert best is not None and best.region_code == "US"


def test_best_region_prefers_internal_over_geoip_in_the_same_region() -> None:
    best = best_region(
        [
            region("GB", 0.8, 543_000, DataSource.geoip),
            region("GB", 0.2, 543_000, DataSource.internal),
        ]
    )
    assert best is not None and best.source is DataSource.internal
