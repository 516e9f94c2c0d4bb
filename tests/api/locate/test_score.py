from datetime import datetime, timedelta

import pytest

from ichnaea.api.locate.score import area_score, station_score

NOW = datetime(2026, 11, 30, 12, 0, 0)


def days(n: float) -> datetime:
    return NOW - timedelta(days=n)


@pytest.mark.parametrize(
    ("created", "modified", "radius", "samples", "extra", "expected"),
    [
        (0, 0, 0, 1, {}, 0.05),
        (1, 0, 10, 2, {}, 0.1),
        (5, 0, 10, 2, {}, 0.5),
        (10, 0, 10, 2, {}, 1.0),
        (10, 0, 10, 64, {}, 6.0),
        (10, 0, 10, 1024, {}, 10.0),
        (10, 0, 0, 1024, {}, 0.5),
        (70, 40, 10, 1024, {}, 7.07),
        (190, 180, 10, 1024, {}, 3.78),
        (190, 180, 10, 64, {}, 2.27),
        (70, 60, 10, 64, {"block_last": 65}, 1.73),
        (70, 60, 10, 64, {"block_last": 65, "last_seen": 58}, 2.42),
    ],
)
def test_station_score_matches_the_spec_table(
    created: int, modified: int, radius: int, samples: int, extra: dict[str, int], expected: float
) -> None:
    dates = {name: days(n).date() for name, n in extra.items()}
    score = station_score(
        NOW,
        created=days(created),
        modified=days(modified),
        radius_m=radius,
        samples=samples,
        **dates,
    )
    assert round(score, 2) == expected


def test_area_scores_match_the_spec() -> None:
    assert round(area_score(NOW, created=NOW, modified=NOW, radius_m=10, num_cells=4), 2) == 0.2
    assert round(area_score(NOW, created=NOW, modified=NOW, radius_m=0, num_cells=100), 2) == 0.1


def test_null_samples_score_as_one_sample_fixing_q13() -> None:
    score = station_score(NOW, created=days(10), modified=NOW, radius_m=10, samples=None)
    assert score == 0.5
