"""The compiled Wi-Fi entry path (``_fast.wifi_lookups``) against the Python stages it replaces.

The Python path is the specification: stage A (``schemas._wifi``: types)
then stage B (``query._wifi``: ranges, MAC, channel/frequency) and the
duplicate rule (``query._dedup``). For any list of entries the kernel
either gives exactly what that path gives, or None (the caller then runs
the Python path); for plain entries it must not give None.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ichnaea._fast import wifi_limits, wifi_lookups
from ichnaea.api.locate import constants as c
from ichnaea.api.locate import query, schemas

MAC_POOL = ["a0b1c2d3e4f5", "A0:B1:C2:D3:E4:F5", "a0-b1-c2-d3-e4-f6", "a0b1.c2d3.e4f7"]
INVALID_MACS = ["", "000000000000", "ffffffffffff", "01005e901000", "a0b1c2d3e4", "a0b1c2d3e4f5a6"]
ODD_MACS = ["a0b1c2d3e4fg", ":::", "a0b1c2d3e4f5:", "\uff410b1c2d3e4f5", "a0b1c2d3e4\u00e9f"]


def reference(entries: list[Any]) -> list[tuple[Any, ...]] | None:
    """The Python path's lookups as field tuples; None where stage A refuses the list."""
    try:
        typed = [schemas._wifi(item, f"wifiAccessPoints.{i}") for i, item in enumerate(entries)]
    except schemas._Invalid:
        return None
    found = (w for e in typed if (w := query._wifi(e)))
    return [dataclasses.astuple(w) for w in query._dedup(found, lambda w: w.mac)]


def plain_ints(lo: int, hi: int) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), st.integers(lo - 20, hi + 20), st.integers(-(2**63), 2**63 - 1))


def plain_entry() -> st.SearchStrategy[dict[str, Any]]:
    fields = {
        "macAddress": st.one_of(st.sampled_from(MAC_POOL + INVALID_MACS), st.none()),
        "ssid": st.one_of(st.none(), st.sampled_from(["", "home", "café"])),
        "age": plain_ints(c.MIN_AGE_MS, c.MAX_AGE_MS),
        "channel": st.one_of(st.none(), st.integers(-5, 210)),
        "frequency": st.one_of(st.none(), st.integers(2300, 6100)),
        "signalStrength": plain_ints(c.MIN_WIFI_SIGNAL_DBM, c.MAX_WIFI_SIGNAL_DBM),
        "signalToNoiseRatio": plain_ints(c.MIN_WIFI_SNR, c.MAX_WIFI_SNR),
    }
    return st.fixed_dictionaries({}, optional=fields)


ODD_VALUES = st.sampled_from(
    [1.5, -60.0, True, False, "-60", "", "x", [], {}, [1], 2**64, -(2**70)]
)


@st.composite
def odd_entry(draw: st.DrawFn) -> Any:
    """A plain entry with one field made odd, or something that is not an entry at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, 1, "a0b1c2d3e4f5", ["macAddress"]]))
    entry = draw(plain_entry())
    name = draw(
        st.sampled_from(
            [
                "macAddress",
                "ssid",
                "age",
                "channel",
                "frequency",
                "signalStrength",
                "signalToNoiseRatio",
            ]
        )
    )
    entry[name] = draw(st.one_of(ODD_VALUES, st.sampled_from(ODD_MACS)))
    return entry


@settings(max_examples=400, deadline=None)
@given(st.lists(plain_entry(), max_size=30))
def test_plain_entries_take_the_fast_path_and_match_the_python_path(entries: list[Any]) -> None:
    assert wifi_lookups(entries) == reference(entries)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(plain_entry(), odd_entry()), max_size=12))
def test_any_entries_match_the_python_path_or_go_back_to_it(entries: list[Any]) -> None:
    fast = wifi_lookups(entries)
    if fast is not None:
        assert fast == reference(entries)


@pytest.mark.parametrize(
    "value", [1.5, True, "-60", "", [], {}, 2**64], ids=lambda v: f"{type(v).__name__}:{v!r}"
)
def test_values_the_python_path_coerces_go_back_to_it(value: Any) -> None:
    entries = [
        {"macAddress": "a0b1c2d3e4f5", "signalStrength": value},
        {"macAddress": "a0b1c2d3e4f6"},
    ]
    assert wifi_lookups(entries) is None


def test_non_ascii_mac_goes_back_to_the_python_path() -> None:
    assert wifi_lookups([{"macAddress": "a0b1c2d3e4\u00e9f"}]) is None


def test_duplicates_keep_the_first_position_and_the_better_entry() -> None:
    entries = [
        {"macAddress": "a0b1c2d3e4f5", "signalStrength": -80},
        {"macAddress": "a0b1c2d3e4f6", "signalStrength": -70},
        {"macAddress": "A0:B1:C2:D3:E4:F5", "signalStrength": -60, "ssid": "b"},
        {"macAddress": "a0b1c2d3e4f6", "signalStrength": -90},
    ]
    assert wifi_lookups(entries) == [
        ("a0b1c2d3e4f5", "b", None, None, None, -60, None),
        ("a0b1c2d3e4f6", None, None, None, None, -70, None),
    ]
    assert wifi_lookups(entries) == reference(entries)


def test_compiled_limits_are_the_python_constants() -> None:
    invalid = tuple(int(mac, 16) for mac in ("000000000000", "ffffffffffff", c.WIFI_TEST_MAC))
    assert wifi_limits() == {
        "age": (c.MIN_AGE_MS, c.MAX_AGE_MS),
        "channel": (c.MIN_WIFI_CHANNEL, c.MAX_WIFI_CHANNEL),
        "frequency": (c.MIN_WIFI_FREQUENCY_MHZ, c.MAX_WIFI_FREQUENCY_MHZ),
        "signal": (c.MIN_WIFI_SIGNAL_DBM, c.MAX_WIFI_SIGNAL_DBM),
        "snr": (c.MIN_WIFI_SNR, c.MAX_WIFI_SNR),
        "invalid_macs": invalid,
    }


def test_channel_frequency_rules_match() -> None:
    for channel in range(-2, 205):
        expected = query.channel_frequency(channel if 1 <= channel <= 199 else None, None)
        got = wifi_lookups([{"macAddress": "a0b1c2d3e4f5", "channel": channel}])
        assert got is not None and got[0][3:5] == expected
    for frequency in range(2390, 6010):
        expected = query.channel_frequency(None, frequency if 2400 <= frequency <= 5999 else None)
        got = wifi_lookups([{"macAddress": "a0b1c2d3e4f5", "frequency": frequency}])
        assert got is not None and got[0][3:5] == expected
