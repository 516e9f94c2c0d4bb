import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from ichnaea.api.locate.score import area_score, station_score, station_scores

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


def test_a_station_without_modified_ages_from_last_seen_then_created_never_nan() -> None:
    """Decision: the original crashed on a NULL ``modified`` or ``created``; a NaN
    score then made a NaN position (and a 500). A station without ``modified`` now
    ages from ``last_seen``, else ``created``, else now; without ``created`` its
    collection span is one day."""
    now_s = (NOW - datetime(1970, 1, 1)).total_seconds()

    def score(modified_days_ago: float, last_seen: float, created: float) -> float:
        def ordinal(n: float) -> float:
            return math.nan if math.isnan(n) else float(days(n).date().toordinal())

        modified_s = now_s - modified_days_ago * 86400.0
        return float(
            station_scores(
                now_s,
                created_day=np.array([ordinal(created)]),
                modified_s=np.array([modified_s]),
                last_seen_day=np.array([ordinal(last_seen)]),
                block_last_day=np.array([math.nan]),
                radius_m=np.array([10.0]),
                samples=np.array([64.0]),
            )[0]
        )

    nan = math.nan
    # Aged from the day it was last seen, as if modified then.
    assert score(nan, 100, 200) == pytest.approx(score(100, 100, 200))
    # Never seen: from its creation.
    assert score(nan, nan, 200) == pytest.approx(score(200, nan, 200))
    # Nothing known: fresh, collected over one day (0.1 * log2(64) = 0.6).
    assert score(nan, nan, nan) == pytest.approx(0.6)
    assert score(0, nan, nan) == pytest.approx(0.6)
