"""The object-to-column kernels (``ichnaea/_fast/_rows.pyx``) equal their Python specifications."""

from __future__ import annotations

import string
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from ichnaea import _fast

NAMES = ("lat", "lon", "age", "source")
VALUES = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.sampled_from(["5", "-1.5e3", " 7 ", "nan"]),
)
OBJECTS = st.lists(st.dictionaries(st.sampled_from((*NAMES, "other")), VALUES), max_size=30)


@given(OBJECTS)
def test_float_fields_is_numpys_conversion(objects: list[dict[str, Any]]) -> None:
    expected = np.array([[obj.get(name) for obj in objects] for name in NAMES], dtype=np.float64)
    got = _fast.float_fields(objects, NAMES)
    assert got.shape == (len(NAMES), len(objects))
    assert_array_equal(got, expected.reshape(got.shape))


@pytest.mark.parametrize("value", [{"a": 1}, "abc", object()])
def test_float_fields_refuses_what_numpy_refuses(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        np.array([value], dtype=np.float64)
    with pytest.raises((TypeError, ValueError)):
        _fast.float_fields([{"lat": value}], ("lat",))


def test_float_fields_wants_dicts() -> None:
    with pytest.raises(TypeError, match="observation 1 is tuple"):
        _fast.float_fields([{}, ("lat", 1.0)], ("lat",))


@given(st.lists(st.tuples(VALUES, VALUES, st.binary(max_size=6)), max_size=20))
def test_object_table_holds_the_rows_and_a_row_of_none(rows: list[tuple[Any, ...]]) -> None:
    table = _fast.object_table(rows, 3)
    assert table.shape == (len(rows) + 1, 3) and table.dtype == object
    assert [tuple(row) for row in table.tolist()] == [*rows, (None, None, None)]
    for i, row in enumerate(rows):
        assert all(table[i, j] is value for j, value in enumerate(row))


def test_object_table_refuses_a_row_of_another_width() -> None:
    with pytest.raises(ValueError, match="row 1 has 2 values, not 3"):
        _fast.object_table([(1, 2, 3), [1, 2]], 3)


KEYS = st.lists(st.binary(min_size=1, max_size=2), max_size=40)


@given(KEYS, KEYS)
def test_positions_is_a_lookup_with_minus_one(indexed: list[bytes], keys: list[bytes]) -> None:
    index = {key: i for i, key in enumerate(indexed)}
    got = _fast.positions(index, keys)
    assert got.dtype == np.intp
    assert got.tolist() == [index.get(key, -1) for key in keys]


@given(KEYS, st.data())
def test_first_seen_numbers_keys_in_order_of_appearance(keys: list[bytes], data: Any) -> None:
    chosen = sorted(data.draw(st.sets(st.integers(0, max(len(keys) - 1, 0)))) if keys else [])
    ids: dict[bytes, int] = {}
    expected = [ids.setdefault(keys[i], len(ids)) for i in chosen]
    got, distinct = _fast.first_seen(keys, np.array(chosen, dtype=np.intp))
    assert got.tolist() == expected
    assert distinct == list(ids)


@given(st.text(alphabet=string.hexdigits + "xg: -é", min_size=10, max_size=14))
def test_mac_bytes_is_fromhex_of_twelve_hex_digits(text: str) -> None:
    valid = len(text) == 12 and set(text) <= set(string.hexdigits)
    if valid:
        assert _fast.mac_bytes(text) == bytes.fromhex(text)
    else:
        with pytest.raises(ValueError, match="MAC must be 12 hex characters"):
            _fast.mac_bytes(text)


@pytest.mark.parametrize("value", [None, 123456789012, b"a8206749abcd"])
def test_mac_bytes_wants_text(value: object) -> None:
    with pytest.raises(ValueError, match="MAC must be 12 hex characters"):
        _fast.mac_bytes(value)


@given(st.lists(st.one_of(st.none(), st.dates(), st.datetimes()), max_size=30))
def test_day_numbers_are_ordinals(values: list[Any]) -> None:
    expected = [np.nan if value is None else value.toordinal() for value in values]
    assert_array_equal(_fast.day_numbers(values), np.array(expected, dtype=np.float64))


def test_day_numbers_want_dates() -> None:
    with pytest.raises(TypeError, match="value 1 is str, not a date"):
        _fast.day_numbers([None, "2026-01-01"])


@given(st.lists(st.lists(VALUES, min_size=3, max_size=3), max_size=20))
def test_ints_to_floats_makes_the_ints_of_the_columns_floats(rows: list[list[Any]]) -> None:
    expected = [
        [float(v) if j in (0, 2) and type(v) is int else v for j, v in enumerate(row)]
        for row in rows
    ]
    _fast.ints_to_floats(rows, (0, 2))
    assert [[type(v) for v in row] for row in rows] == [[type(v) for v in r] for r in expected]
    assert rows == expected  # a NaN is the same object on both sides


DATE_TEXTS = st.one_of(
    st.none(),
    st.dates().map(str),
    st.datetimes().map(str),  # with and without microseconds
    st.datetimes().map(lambda moment: moment.isoformat(" ", "seconds")),
    st.sampled_from(["0000-00-00", "0000-00-00 00:00:00", "2026-02-30", "2026-12-07T10:00", ""]),
    st.text(max_size=12),
)


@given(st.lists(st.lists(DATE_TEXTS, min_size=4, max_size=4), max_size=20))
def test_dates_from_text_is_the_drivers_conversion(rows: list[list[Any]]) -> None:
    from ichnaea.repositories.session import date_or_none, datetime_or_none

    def expected(j: int, value: Any) -> Any:
        if value is None or j == 3:
            return value
        return date_or_none(value) if j == 0 else datetime_or_none(value)

    want = [[expected(j, value) for j, value in enumerate(row)] for row in rows]
    _fast.dates_from_text(rows, (0,), (1, 2))
    assert rows == want
    assert [[type(v) for v in row] for row in rows] == [[type(v) for v in row] for row in want]
