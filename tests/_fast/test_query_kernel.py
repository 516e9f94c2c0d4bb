"""The compiled entry paths (``_fast.wifi_lookups``, ``cell_lookups``) against the Python
stages they replace.

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

from ichnaea._fast import cell_limits, cell_lookups, wifi_limits, wifi_lookups
from ichnaea.api.locate import constants as c
from ichnaea.api.locate import query, schemas
from ichnaea.enums import Radio
from ichnaea.mcc import ALL_VALID_MCCS

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


# -- cell entries ------------------------------------------------------------

CELL_INT_FIELDS = {
    "mobileCountryCode": [234, 262, 310, 1, 553, 999, 0],
    "mobileNetworkCode": [0, 10, 999, 1000, -1],
    "locationAreaCode": [0, 1, 100, 65533, 65534, 70000, (1 << 24) - 1, 1 << 24],
    "cellId": [0, 1, 4, 65535, 65536, (1 << 28) - 1, 1 << 28, (1 << 36) - 1],
    "newRadioCellId": [0, 1, 68719476735, 1 << 36],
    "age": [0, 1500, -3_600_001, 3_600_000],
    "primaryScramblingCode": [0, 300, 503, 504, 511, 512, 1007, 1008],
    "psc": [0, 55, 600, 1007],
    "signalStrength": [-160, -141, -140, -120, -113, -60, -51, -43, -31, -25, -24],
    "timingAdvance": [-1, 0, 30, 63, 64],
}
RADIO_VALUES = ["gsm", "wcdma", "lte", "nr", "cdma", "", None]


def cell_reference(entries: list[Any], default_radio: str | None) -> Any:
    """The Python path's cells and areas as field tuples; None where stage A refuses the list."""
    try:
        typed = [
            schemas._cell(item, f"cellTowers.{i}", default_radio) for i, item in enumerate(entries)
        ]
    except schemas._Invalid:
        return None
    pairs = [query._cells(e) for e in typed]
    fields = lambda c: (int(c.radio), *dataclasses.astuple(c)[1:])  # noqa: E731
    cells = query._dedup((c for c, _ in pairs if c is not None), query._cell_key)
    areas = query._dedup((a for _, a in pairs if a is not None), query._area_key)
    return [fields(c) for c in cells], [fields(a) for a in areas]


def plain_cell() -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        name: st.one_of(st.none(), st.sampled_from(values), st.integers(-(2**63), 2**63 - 1))
        for name, values in CELL_INT_FIELDS.items()
    }
    fields["radioType"] = st.sampled_from(RADIO_VALUES)
    # Mostly few distinct cells, so that duplicates meet; sometimes any value.
    pools = {"mobileCountryCode": [234, 262, 1], "mobileNetworkCode": [10, 20],
             "locationAreaCode": [1, 2, 70000], "cellId": [4, 5, 70000]}  # fmt: skip
    required = {
        name: st.one_of(st.sampled_from(pool), st.sampled_from(pool), fields.pop(name))
        for name, pool in pools.items()
    }
    return st.fixed_dictionaries(required, optional=fields)


@st.composite
def odd_cell(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, 1, "cell", []]))
    entry = draw(plain_cell())
    name = draw(st.sampled_from([*CELL_INT_FIELDS, "radioType"]))
    entry[name] = draw(st.one_of(ODD_VALUES, st.sampled_from(["GSM", "umts", "5g"])))
    return entry


@settings(max_examples=500, deadline=None)
@given(st.lists(plain_cell(), max_size=20), st.sampled_from(["lte", "gsm", "nr", None]))
def test_plain_cells_take_the_fast_path_and_match_the_python_path(
    entries: list[Any], default_radio: str | None
) -> None:
    assert cell_lookups(entries, default_radio, ALL_VALID_MCCS) == cell_reference(
        entries, default_radio
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(plain_cell(), odd_cell()), max_size=10), st.sampled_from(["lte", None]))
def test_any_cells_match_the_python_path_or_go_back_to_it(
    entries: list[Any], default_radio: str | None
) -> None:
    fast = cell_lookups(entries, default_radio, ALL_VALID_MCCS)
    if fast is not None:
        assert fast == cell_reference(entries, default_radio)


def test_quirk_q10_gsm_cell_beyond_16_bits_is_a_wcdma_cell_in_a_gsm_area() -> None:
    entry = {"radioType": "gsm", "mobileCountryCode": 234, "mobileNetworkCode": 10,
             "locationAreaCode": 5, "cellId": 70000}  # fmt: skip
    cells, areas = cell_lookups([entry], None, ALL_VALID_MCCS)
    assert [c[0] for c in cells] == [2] and [a[0] for a in areas] == [0]  # wcdma cell, gsm area
    assert (cells, areas) == cell_reference([entry], None)


def test_compiled_cell_limits_are_the_python_constants() -> None:
    assert cell_limits() == {
        "mnc": (c.MIN_MNC, c.MAX_MNC),
        "lac": (c.MIN_LAC, c.MAX_LAC, c.MAX_NR_TAC),
        "cid": (c.MIN_CID, c.MAX_CID, c.MAX_CID_GSM, c.MAX_NR_CID),
        "psc": (c.MIN_PSC, c.MAX_PSC, c.MAX_PSC_LTE, c.MAX_PCI_NR),
        "ta": (c.MIN_CELL_TA, c.MAX_CELL_TA),
        "signal": (c.MIN_CELL_SIGNAL_DBM, c.MAX_CELL_SIGNAL_DBM),
        "signal_by_radio": {
            int(radio): bounds for radio, bounds in c.CELL_SIGNAL_RANGE_DBM.items()
        },
        "radios": {name: int(radio) for name, radio in query._CELL_RADIOS.items()},
    }


# -- mac_search_input: the lookups an index search takes -----------------------

SEARCH_MACS = ["a0b1c2d3e4f5", "a0b1c2d3e4f6", "00b1c2d3e4f5", "ffb1c2d3e4f5", "A0B1C2D3E4F7"]


def _mac_lookup(kind: str, mac: str, signal: Any, age: Any) -> Any:
    if kind == "wifi":
        return query.WifiLookup(mac=mac, signal=signal, age=age)
    return query.BlueLookup(mac=mac, signal=signal, age=age)


mac_lookups = st.tuples(
    st.sampled_from(["wifi", "blue"]),
    st.lists(
        st.tuples(
            st.sampled_from(SEARCH_MACS),
            st.one_of(st.none(), st.just(0), st.integers(-100, -10)),
            st.one_of(st.none(), st.just(0), st.integers(-3_600_000, 3_600_000)),
        ),
        max_size=25,
    ),
)


@settings(max_examples=400, deadline=None)
@given(mac_lookups, st.sampled_from([-100.0, -90.0]))
def test_mac_search_input_equals_the_python_expression(drawn: Any, missing: float) -> None:
    """Keys in order, the last lookup of a repeated MAC, the missing signal, the
    weight age: bit for bit what ``internal._mac_search_input`` computes."""
    from ichnaea._fast import mac_search_input
    from ichnaea.api.locate.sources import internal

    kind, rows = drawn
    lookups = [_mac_lookup(kind, *row) for row in rows]
    params = dataclasses.replace(
        internal.WIFI if kind == "wifi" else internal.BLUE, min_signal_dbm=missing
    )
    got = mac_search_input(lookups, missing, c.MIN_WEIGHT_AGE_MS)
    want = internal._mac_search_input(lookups, params)
    assert got is not None
    assert got[0] == want[0]
    assert got[1] == want[1]
    assert got[2].tolist() == want[2].tolist()
    assert got[3].tolist() == want[3].tolist()


@pytest.mark.parametrize(
    "mac, signal, age",
    [
        ("a0:b1:c2:d3:e4", -50, 0),  # not 12 digits
        ("a0b1c2d3e4fg", -50, 0),  # not hex
        ("a0b1c2d3e4f\u00e9", -50, 0),  # not ASCII
        ("a0b1c2d3e4f5", -50.0, 0),  # a float signal
        ("a0b1c2d3e4f5", -50, "10"),  # a text age
    ],
)
def test_mac_search_input_hands_odd_lookups_back(mac: str, signal: Any, age: Any) -> None:
    from ichnaea._fast import mac_search_input

    plain = query.WifiLookup(mac="a0b1c2d3e4f6", signal=-60)
    odd = query.WifiLookup(mac=mac, signal=signal, age=age)
    assert mac_search_input([plain, odd], -100.0, 1000.0) is None
    assert mac_search_input([plain], -100.0, 1000.0) is not None


# -- cell_search_input: the full cells an index search takes -------------------

cell_lookups_drawn = st.lists(
    st.tuples(
        st.sampled_from([Radio.gsm, Radio.wcdma, Radio.lte, Radio.nr]),
        st.sampled_from([(262, 1, 5), (262, 1, 6), (1, 0, 1), (999, 999, 65533)]),
        st.sampled_from([1, 2, 255, 256, 65535, (1 << 28) - 1]),
        st.one_of(st.none(), st.just(0), st.integers(-156, -25)),
        st.one_of(st.none(), st.just(0), st.integers(-3_600_000, 3_600_000)),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(cell_lookups_drawn)
def test_cell_search_input_equals_the_python_expression(rows: Any) -> None:
    """Ids in the index's key order (NR ids are longer), the last lookup of a
    repeated id, each radio's floor for a missing signal, the weight age: bit
    for bit what ``internal._cell_search_input`` computes."""
    from ichnaea._fast import cell_search_input
    from ichnaea.api.locate.sources import internal
    from ichnaea.codecs import NR_CELLID_BYTES

    cells = [
        query.CellLookup(radio, mcc, mnc, lac, cid, signal=signal, age=age)
        for radio, (mcc, mnc, lac), cid, signal, age in rows
    ]
    got = cell_search_input(cells, NR_CELLID_BYTES, internal._FLOOR_BY_RADIO, c.MIN_WEIGHT_AGE_MS)
    want = internal._cell_search_input(cells)
    assert got is not None
    assert got[0] == want[0]
    assert got[1] == want[1]
    for mine, theirs in zip(got[2:], want[2:], strict=True):
        assert mine.tolist() == theirs.tolist()


def _field(bits: int) -> st.SearchStrategy[int]:
    # Mostly inside the unsigned range of ``bits``, sometimes just past either end.
    top = (1 << bits) - 1
    return st.one_of(st.integers(0, top), st.sampled_from([-1, 0, top, top + 1]))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([Radio.gsm, Radio.wcdma, Radio.lte, Radio.nr]),
            _field(16),
            _field(16),
            _field(32),
            _field(64),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_cell_search_input_packs_the_keys_encode_cellid_packs(rows: Any) -> None:
    """The compiled pass packs the cell ids itself: the same bytes as
    ``codecs.encode_cellid`` over each layout's whole range; a field that does not
    fit its key hands the query back (the Python expression then raises
    ``encode_cellid``'s error, as before)."""
    from ichnaea._fast import cell_search_input
    from ichnaea.api.locate.sources import internal
    from ichnaea.codecs import NR_CELLID_BYTES, encode_cellid

    cells = [query.CellLookup(radio, mcc, mnc, lac, cid) for radio, mcc, mnc, lac, cid in rows]
    try:
        want = {encode_cellid(*row) for row in rows}
    except ValueError:
        want = None
    got = cell_search_input(cells, NR_CELLID_BYTES, internal._FLOOR_BY_RADIO, 1000.0)
    if want is None or any(row[0] is Radio.nr and row[4] >= 1 << 63 for row in rows):
        assert got is None  # NR ids past 2^63 - 1 are handed back too
    else:
        assert got is not None and set(got[0]) == want


def test_cell_search_input_hands_odd_lookups_back() -> None:
    from ichnaea._fast import cell_search_input
    from ichnaea.api.locate.sources import internal

    plain = query.CellLookup(Radio.lte, 262, 1, 5, 7, signal=-80)
    floors = internal._FLOOR_BY_RADIO
    assert cell_search_input([plain], 17, floors, 1000.0) is not None
    for odd in (
        query.CellLookup(Radio.lte, 262, 1, 5, 8, signal=-80.5),  # a float signal
        query.CellLookup(Radio.lte, 262, 1, 5, 8, age="1"),  # a text age
        query.CellLookup(Radio.cdma, 262, 1, 5, 8),  # a radio without a floor
    ):
        assert cell_search_input([plain, odd], 17, floors, 1000.0) is None
    assert cell_search_input([plain], 10, floors, 1000.0) is None  # longer than the width
