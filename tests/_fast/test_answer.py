"""The compiled choice of a locate answer (``_fast.best_position_index``, ``round7``)
against the Python they replace.

``result._best_position`` is the specification of the best answer, and
``round(x, DEGREE_DECIMAL_PLACES)`` of the rounding: for any results the
kernel gives the same choice or hands back (None), and ``round7`` gives the
same value, type and sign.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ichnaea._fast import best_position_index, round7
from ichnaea.api.locate import result
from ichnaea.api.locate.constants import DEGREE_DECIMAL_PLACES
from ichnaea.api.locate.result import DataSource, Position


def same(a: object, b: object) -> bool:
    """Equal values of one type, NaN equal to NaN, -0.0 apart from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def test_the_kernel_rounds_to_the_answers_decimal_places() -> None:
    assert DEGREE_DECIMAL_PLACES == 7  # round7's places; change both together


@given(st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=3000)
@example(0.00000005)  # a tie in decimal, not in binary
@example(-0.00000005)
@example(2.00000015)
@example(51.50000005)
@example(1e-300)
@example(-0.0)
@example(1e300)
@example(450359962.7370496)  # x * 1e7 at 2**52
def test_round7_is_round_to_seven_places(x: float) -> None:
    assert same(round7(x), round(x, 7))


@given(
    st.integers(min_value=-(10**12), max_value=10**12).map(lambda n: n / 10**8)
    | st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: (2 * n + 1) / (2 * 10**7))
)
@settings(max_examples=3000)
def test_round7_at_and_near_decimal_ties(x: float) -> None:
    # Halves of the 7th decimal and 8-decimal values: where a shortcut through
    # x * 1e7 would round the wrong way.
    assert same(round7(x), round(x, 7))


@pytest.mark.parametrize("value", [51, -3, True, 2**70])
def test_round7_leaves_non_floats_to_round(value: int) -> None:
    assert same(round7(value), int(value))  # as round(value, 7): an int, unchanged


# Results around one place, on a coarse grid so that clusters, distances at
# the reach and equal accuracies and scores all happen.
_coordinate = st.integers(min_value=-20, max_value=20)
_result = st.builds(
    lambda dlat, dlon, accuracy, score: Position(
        51.5 + dlat * 0.0005, -0.12 + dlon * 0.0008, accuracy, score, DataSource.internal
    ),
    _coordinate,
    _coordinate,
    st.sampled_from([10.0, 25.0, 50.0, 100.0, 1000.0, 25000.0]),
    st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.25, 10.0]),
)


@given(st.lists(_result, max_size=8))
@settings(max_examples=2000)
def test_best_position_index_is_the_python_choice(results: list[Position]) -> None:
    index = best_position_index(results)
    expected = result._best_position(results)
    assert index is not None
    assert (results[index] if index >= 0 else None) is expected
    assert result.best_position(results) is expected


@pytest.mark.parametrize(
    ("field", "value"),
    [("accuracy", math.nan), ("score", math.nan), ("score", 1), ("lat", 51)],
)
def test_best_position_index_hands_back_what_it_does_not_compare_as_python_does(
    field: str, value: float
) -> None:
    results = [
        Position(51.5, -0.12, 100.0, 1.0, DataSource.internal),
        Position(51.5001, -0.12, 50.0, 0.5, DataSource.geoip),
    ]
    setattr(results[1], field, value)  # as a provider might give it, unrounded
    assert best_position_index(results) is None
    assert result.best_position(results) is result._best_position(results)


def test_best_position_of_nothing_and_of_one() -> None:
    only = Position(51.5, -0.12, 100.0, 1.0, DataSource.internal)
    assert best_position_index([]) == -1
    assert best_position_index([only]) == 0
    assert result.best_position([]) is None
    assert result.best_position([only]) is only
