"""The compiled VALUES text of station upserts equals the Python specification."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ichnaea import _fast
from ichnaea.repositories.upsert import mysql_values_text

PLAIN = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.binary(max_size=17),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.dates(),
    st.text(alphabet="AZaz09 _.-", max_size=64),
)


@given(st.lists(st.lists(PLAIN, min_size=1, max_size=20), max_size=5))
def test_plain_rows_format_as_the_python_path_does(rows: list[list[Any]]) -> None:
    assert _fast.mysql_values(rows) == mysql_values_text(rows)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_reads_back_as_the_same_double(value: float) -> None:
    text = _fast.mysql_values([[value]])[1:-1]
    assert float(text) == value
    assert math.copysign(1.0, float(text)) == math.copysign(1.0, value)


def test_a_station_row() -> None:
    row = (b"\x00\x11\x22\x33\x44\x55", 51.5, -0.1, None, float("nan"), 12, "GB",
           datetime(2026, 12, 7, 4, 5, 6, 789), date(2026, 12, 7))  # fmt: skip
    expected = "(X'001122334455',51.5,-0.1,NULL,NULL,12,'GB','2026-12-07 04:05:06','2026-12-07')"
    assert _fast.mysql_values([row]) == mysql_values_text([row]) == expected
    assert _fast.mysql_values([]) == ""


@pytest.mark.parametrize(
    "value",
    [True, np.float64(1.5), np.int64(3), "it's", "x" * 65, "é",
     datetime(2026, 1, 1, tzinfo=UTC), 1 + 2j],
)  # fmt: skip
def test_values_that_are_not_plain_are_refused(value: object) -> None:
    with pytest.raises(TypeError):
        _fast.mysql_values([[1, value]])
