"""The compiled transform of a report (``ichnaea/_fast/_reports.pyx``) equals its Python path.

``ichnaea.pipeline.ingest.observations`` flattens, validates and
de-duplicates plain entries in C and hands everything else to the Python
functions, which are the specification. These tests run the transform both
ways on random batches (mostly plain, sometimes any JSON) and compare every
output value with its type and order, then the kernels one by one.
"""

from __future__ import annotations

import copy
import random
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ichnaea import _fast
from ichnaea.geocode import Geocoder
from ichnaea.mcc import ALL_VALID_MCCS
from ichnaea.pipeline.ingest import observations, validation
from ichnaea.pipeline.ingest.observations import InternalBatch, transform_batch
from ichnaea.regions import RegionTable
from tests._strategies import json_values

HEX = "0123456789abcdefABCDEF"


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.load(RegionTable.load())


def mostly(
    good: st.SearchStrategy[Any], junk: st.SearchStrategy[Any] = json_values
) -> st.SearchStrategy[Any]:
    """Nine times in ten ``good``, else ``junk``."""
    return st.integers(0, 9).flatmap(lambda n: junk if n == 9 else good)


def ints(*edges: int) -> st.SearchStrategy[int]:
    return st.sampled_from(edges) | st.integers(-200, 70_000) | st.integers(-(2**70), 2**70)


def _grouped(digits: str, separator: str, size: int) -> str:
    return separator.join(digits[i : i + size] for i in range(0, len(digits), size))


macs = (
    # One station in three spellings: duplicates within a report.
    st.sampled_from(["0123456789ab", "01:23:45:67:89:AB", "0123.4567.89ab"])
    | st.text(HEX, min_size=12, max_size=12)
    | st.builds(
        _grouped,
        st.text(HEX, min_size=12, max_size=12),
        st.sampled_from(":-."),
        st.sampled_from([2, 4, 6]),
    )
    | st.sampled_from(["000000000000", "FF:FF:FF:FF:FF:FF", "01:00:5e:90:10:00", "", "ab"])
    | st.text(HEX + ":-.xé\u212a", max_size=18)
)
ssids = st.none() | st.sampled_from(["home", "x_nomap", "A_OptOut", "_", "a\0_nomap"]) | st.text()
radios = st.sampled_from(["gsm", "wcdma", "umts", "lte", "nr", "cdma", "GSM", " lte ", "foo", ""])
mac_entry = st.fixed_dictionaries(
    {"macAddress": mostly(macs)},
    optional={
        "age": mostly(ints(0, 1500, -3_600_000, 3_600_001)),
        "signalStrength": mostly(ints(-70, -127, -10, -100, 0, 5)),
        "signalToNoiseRatio": mostly(ints(0, 1, 100, 101)),
        "channel": mostly(ints(1, 14, 36, 186, 199, 200)),
        "frequency": mostly(ints(2412, 2484, 4915, 5075, 5925, 5999, 2400)),
        "radioType": mostly(st.sampled_from(["802.11n", ""])),
        "ssid": mostly(ssids),
    },
)
cell_entry = st.fixed_dictionaries(
    {
        "radioType": mostly(radios),
        "mobileCountryCode": mostly(st.sampled_from([234, 234, 262, 553]) | ints(0, 999)),
        "mobileNetworkCode": mostly(st.sampled_from([30, 30]) | ints(0, 999, 1000)),
        "locationAreaCode": mostly(st.sampled_from([7, 7]) | ints(1, 65533, 65534, 16_777_215)),
        "cellId": mostly(
            st.sampled_from([9, 9, 65536]) | ints(1, 65535, 2**28 - 1, 2**28, 2**36 - 1)
        ),
    },
    optional={
        "age": mostly(ints(0, -3_600_000)),
        "asu": mostly(ints(-70, -6, -5, 15, 31, 91, 97, 127)),
        "primaryScramblingCode": mostly(ints(0, 503, 504, 511, 1007)),
        "serving": mostly(ints(0, 1)),
        "signalStrength": mostly(ints(-70, -113, -51, -140, -156, -31, 0, 5)),
        "timingAdvance": mostly(ints(0, 63, 64, 3846)),
    },
)


def entry_lists(entry: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Few distinct entries, so duplicates are frequent.
    return mostly(
        st.lists(entry, max_size=3).flatmap(
            lambda pool: st.lists(st.sampled_from(pool), max_size=6) if pool else st.just([])
        )
    )


positions = st.fixed_dictionaries(
    {"latitude": mostly(st.sampled_from([51.5, 50.0, 52])), "longitude": mostly(st.just(-0.1))},
    optional={
        "accuracy": mostly(st.floats() | st.integers(-(2**1100), 2**1100)),
        "altitude": mostly(st.floats(allow_nan=False)),
        "heading": mostly(st.sampled_from([0, 360, 361.5])),
        "speed": mostly(st.floats(0, 400)),
        "age": mostly(ints(0, 2000, -5000)),
        "source": mostly(st.sampled_from(["gnss", "fused", 3])),
    },
)
reports = st.fixed_dictionaries(
    {
        "timestamp": mostly(st.just(1_460_700_010_000)),
        "position": mostly(positions),
        "bluetoothBeacons": entry_lists(mac_entry),
        "cellTowers": entry_lists(cell_entry),
        "wifiAccessPoints": entry_lists(mac_entry),
    },
    optional={"radioType": mostly(radios)},
)
batches = st.lists(
    st.fixed_dictionaries({"report": reports, "api_key": st.sampled_from([None, "a", "b"])}),
    max_size=6,
)


def python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every kernel hands its input back, as it does for input that is not plain."""
    for name in ("position_fields", "flat_entries", "add_observations"):
        monkeypatch.setattr(_fast, name, lambda *args: None)


def snapshot(batch: InternalBatch) -> Any:
    """Everything the batch holds, with the types and order of every value."""
    return (
        [
            (queue, [repr(list(obs.items())) for obs in queue_obs])
            for queue, queue_obs in batch.observations.items()
        ],
        batch.datamap,
        {key: sorted(counter.items()) for key, counter in batch.counts.items()},
    )


@settings(max_examples=400, deadline=None)
@given(items=batches)
def test_transform_batch_equals_its_python_path(geocoder: Geocoder, items: list[Any]) -> None:
    compiled = transform_batch(copy.deepcopy(items), geocoder)
    with pytest.MonkeyPatch.context() as monkeypatch:
        python_path(monkeypatch)
        expected = transform_batch(copy.deepcopy(items), geocoder)
    assert snapshot(compiled) == snapshot(expected)


@pytest.fixture
def no_python_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The Python path fails if it is taken."""

    def refused(*args: Any) -> None:
        raise AssertionError("the Python path was taken")

    for name in ("_position", "_entries", "_add_observations"):
        monkeypatch.setattr(observations, name, refused)
    yield


def load_reports(count: int) -> list[dict[str, Any]]:
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    try:
        import load_pipeline
    finally:
        sys.path.pop(0)
    rng = random.Random(5)
    sites = load_pipeline.population(50, 5, rng)
    return [load_pipeline.make_report(rng.choice(sites), 5, rng) for _ in range(count)]


@pytest.mark.usefixtures("no_python_path")
def test_the_reports_clients_send_take_the_compiled_path(geocoder: Geocoder) -> None:
    items: list[dict[str, Any]] = [
        {"api_key": "k", "report": report} for report in load_reports(200)
    ]
    # The separators clients write, an upper-case MAC, a known radio name.
    items[0]["report"]["wifiAccessPoints"][0]["macAddress"] = "A8:20:66:00:00:01"
    items[1]["report"]["cellTowers"][0]["radioType"] = "umts"
    batch = transform_batch(items, geocoder)
    assert batch.counts["k"]["wifi_upload"] == 1000
    assert batch.counts["k"]["cell_upload"] == 200
    assert batch.counts["k"]["blue_upload"] == 200
    macs = [obs["mac"] for queue in batch.observations.values() for obs in queue if "mac" in obs]
    assert "a82066000001" in macs


@settings(max_examples=300, deadline=None)
@given(value=entry_lists(mac_entry) | entry_lists(cell_entry), gps_age=ints(0, 0, 1500))
def test_flat_entries_is_the_python_flatten(value: Any, gps_age: int) -> None:
    for _, _, table, coded in observations._LISTS:
        got = _fast.flat_entries(
            copy.deepcopy(value), coded, observations._RADIO_NAMES, gps_age, True
        )
        if got is not None:
            assert repr(got) == repr(observations._entries(value, table, gps_age))


@settings(max_examples=300, deadline=None)
@given(position=positions)
def test_position_fields_is_the_python_flatten(position: Any) -> None:
    got = _fast.position_fields(position, observations._POSITION_TABLE)
    if got is not None:
        assert repr(got) == repr(observations._position(position))


@settings(max_examples=500, deadline=None)
@given(value=entry_lists(mac_entry) | entry_lists(cell_entry), gps_age=ints(0, 0, -7))
def test_add_observations_is_the_python_validation(value: Any, gps_age: int) -> None:
    fields = {"lat": 51.5, "lon": -0.1, "source": 1}
    for kind, validate, comparators, code, names, queues in observations._KINDS:
        table = dict((flat, table) for _, flat, table, _ in observations._LISTS)[kind]
        entries = observations._entries(value, table, gps_age)
        if kind == "cell":
            for entry in entries:
                entry.setdefault("radio", "gsm")
        got: dict[str, list[dict[str, Any]]] = {"update_wifi_0": [{"kept": 1}]}
        got_counts: Counter[str] = Counter(report_upload=1)
        added = _fast.add_observations(
            code, copy.deepcopy(entries), fields, got, got_counts, names, queues, ALL_VALID_MCCS
        )
        assert added is not None  # flat entries are always plain
        expected: dict[str, list[dict[str, Any]]] = {"update_wifi_0": [{"kept": 1}]}
        expected_counts: Counter[str] = Counter(report_upload=1)
        assert added == observations._add_observations(
            kind, validate, comparators, entries, fields, expected, expected_counts
        )
        assert repr(got) == repr(expected)
        assert got_counts == expected_counts


@pytest.mark.parametrize("value", [1.0, True, "5", [1]])
def test_add_observations_hands_back_what_the_flatten_never_makes(value: Any) -> None:
    fields = {"lat": 1.0}
    for _, _, _, code, names, queues in observations._KINDS:
        entries = [
            {"mac": "0123456789ab", "radio": "gsm", "mcc": 234, "mnc": 1, "lac": 1, "cid": 1},
            {
                "mac": "0123456789ab",
                "radio": "gsm",
                "mcc": 234,
                "mnc": 1,
                "lac": 1,
                "cid": 1,
                "age": value,
                "signal": value,
            },
        ]
        out: dict[str, Any] = {}
        counts: Counter[str] = Counter()
        assert (
            _fast.add_observations(
                code, entries, fields, out, counts, names, queues, ALL_VALID_MCCS
            )
            is None
        )
        assert out == {} and counts == Counter()


def test_compiled_ranges_are_the_validation_constants() -> None:
    limits = _fast.transform_limits()
    assert limits["age"] == validation.MAX_AGE_MS
    assert limits["blue_signal"] == (validation.MIN_BLUE_SIGNAL_DBM, validation.MAX_BLUE_SIGNAL_DBM)
    assert limits["wifi_signal"] == (validation.MIN_WIFI_SIGNAL_DBM, validation.MAX_WIFI_SIGNAL_DBM)
    assert limits["wifi_snr"] == (validation.MIN_WIFI_SNR_DB, validation.MAX_WIFI_SNR_DB)
    assert limits["wifi_channel"] == (validation.MIN_WIFI_CHANNEL, validation.MAX_WIFI_CHANNEL)
    assert limits["wifi_frequency"] == (
        validation.MIN_WIFI_FREQUENCY_MHZ,
        validation.MAX_WIFI_FREQUENCY_MHZ,
    )
    assert limits["mnc"] == validation.MAX_MNC
    assert limits["gsm_cid"] == validation._MAX_GSM_CID
    assert limits["cells"] == {name: tuple(lim) for name, lim in validation.CELL_LIMITS.items()}
    assert limits["invalid_macs"] == validation._INVALID_MACS


def _same_as_python(kind: str, entries: list[dict[str, Any]]) -> None:
    fields = {"lat": 51.5, "lon": -0.1}
    _, validate, comparators, code, names, queues = next(
        k for k in observations._KINDS if k[0] == kind
    )
    got: dict[str, list[dict[str, Any]]] = {}
    got_counts: Counter[str] = Counter()
    added = _fast.add_observations(
        code, entries, fields, got, got_counts, names, queues, ALL_VALID_MCCS
    )
    expected: dict[str, list[dict[str, Any]]] = {}
    expected_counts: Counter[str] = Counter()
    assert added == observations._add_observations(
        kind, validate, comparators, entries, fields, expected, expected_counts
    )
    assert (repr(got), got_counts) == (repr(expected), expected_counts)


@pytest.mark.parametrize("radio", ["gsm", "wcdma", "lte", "nr", "cdma", None])
@pytest.mark.parametrize("cid", [65535, 65536, 2**28 - 1, 2**28, 2**36 - 1, 2**36])
def test_cell_boundaries_match_the_python_validation(radio: str | None, cid: int) -> None:
    base: dict[str, Any] = {"mcc": 234, "mnc": 30, "lac": 7, "cid": cid}
    if radio is not None:
        base["radio"] = radio
    entries = [
        {
            **base,
            **{
                name: value
                for name, value in zip(("asu", "signal", "ta", "psc"), values, strict=True)
                if value is not None
            },
        }
        for values in [
            (asu, signal, ta, psc)
            for asu in (None, -200, -70, -6, -5, 0, 31, 32, 91, 97, 127, 128)
            for signal in (None, -157, -141, -113, -60, -51, -25, -1, 0, 3)
            for ta, psc in ((None, None), (0, 0), (63, 503), (64, 511), (3846, 1007), (3847, 1008))
        ]
    ]
    for entry in entries:
        _same_as_python("cell", [entry])
    _same_as_python("cell", entries)  # every one a duplicate of the first


@pytest.mark.parametrize("kind", ["wifi", "blue"])
def test_mac_boundaries_match_the_python_validation(kind: str) -> None:
    entries = [
        {
            "mac": "0123456789ab",
            **{
                name: value
                for name, value in zip(
                    ("channel", "frequency", "signal", "snr", "age"), values, strict=True
                )
                if value is not None
            },
        }
        for values in [
            (channel, frequency, signal, snr, age)
            for channel in (None, 0, 1, 13, 14, 15, 185, 186, 199, 200)
            for frequency in (
                None,
                2399,
                2400,
                2412,
                2472,
                2473,
                2484,
                4915,
                4995,
                5075,
                5925,
                5999,
                6000,
            )
            for signal, snr, age in (
                (None, None, None),
                (-128, 0, -3_600_001),
                (-127, 1, 0),
                (-100, 100, 3_600_000),
                (-10, 101, 3_600_001),
                (0, 5, 1),
                (1, 5, 1),
            )
        ]
    ]
    for entry in entries:
        _same_as_python(kind, [entry])
    _same_as_python(kind, entries)


# -- submitted_macs: the submit API's Wi-Fi and Bluetooth entries --------------

_SUBMIT_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**63) - 2, 2**63 + 1),
    st.sampled_from([2147483647, -2147483648, 9223372036854775807, -(2**63), 2**63 - 1, 0]),
    st.sampled_from(["", "x", "abc", "a_b", "net_nomap", "802.11n", "caf\u00e9"]),
)
_SUBMIT_ODD = st.one_of(
    json_values,
    st.sampled_from([1.5, -61.0, True, False, "-61", " 7 ", "1e3", "nan", [], {}]),
)
_SUBMIT_NAMES = [
    "macAddress",
    "age",
    "channel",
    "frequency",
    "signalStrength",
    "signalToNoiseRatio",
    "ssid",
    "radioType",
    "name",
    "other",
]


def _submit_entries(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    entry = st.dictionaries(st.sampled_from(_SUBMIT_NAMES), values, max_size=8)
    return st.lists(st.one_of(entry, entry, entry, values), max_size=8)


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        _submit_entries(_SUBMIT_VALUES),
        _submit_entries(st.one_of(_SUBMIT_VALUES, _SUBMIT_ODD)),
        json_values,
    ),
    st.booleans(),
)
def test_submitted_macs_equal_the_python_functions(value: Any, wifi: bool) -> None:
    """Plain lists give exactly what ``formats._wifi``/``_blue`` give (values, types
    and key order); anything else is handed back (None)."""
    from ichnaea.reports import formats

    names = (formats.WIFI_INTS, formats._WIFI_STRINGS) if wifi else (formats.BLUE_INTS, ("name",))
    function = formats._wifi if wifi else formats._blue
    got = _fast.submitted_macs(value, *names, formats.SENTINELS, wifi)
    want = [e for e in map(function, formats._entries(value)) if e is not None]
    if got is not None:
        _assert_same_entries(got, want)


def _assert_same_entries(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """The same entries: values, types and key order."""
    assert got == want
    assert [list(e.items()) for e in got] == [list(e.items()) for e in want]
    assert [[type(v) for v in e.values()] for e in got] == [
        [type(v) for v in e.values()] for e in want
    ]


_SUBMIT_INTS = st.one_of(st.none(), st.integers(-(2**63) - 2, 2**63 + 1), st.just(2147483647))
_SUBMIT_TEXTS = st.one_of(st.none(), st.integers(), st.sampled_from(["", "x", "a_b", "caf\u00e9"]))
_PLAIN_SUBMIT_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "macAddress": st.one_of(st.none(), st.integers(), st.sampled_from(["", "a0b1c2d3e4f5"])),
        **{name: _SUBMIT_INTS for name in ("age", "channel", "signalStrength")},
        **{name: _SUBMIT_TEXTS for name in ("ssid", "radioType", "name", "other")},
    },
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(_PLAIN_SUBMIT_ENTRY, st.integers(), st.none()), max_size=8), st.booleans()
)
def test_submitted_macs_take_plain_entries(value: Any, wifi: bool) -> None:
    """Ints where ints belong, anything but floats, booleans and texts to coerce
    elsewhere: the compiled pass answers unless an SSID could opt out."""
    from ichnaea.reports import formats

    names = (formats.WIFI_INTS, formats._WIFI_STRINGS) if wifi else (formats.BLUE_INTS, ("name",))
    got = _fast.submitted_macs(value, *names, formats.SENTINELS, wifi)
    could_opt_out = wifi and any(
        isinstance(e, dict)
        and isinstance(e.get("macAddress"), str)
        and e["macAddress"]
        and isinstance(e.get("ssid"), str)
        and "_" in e["ssid"]
        for e in value
    )
    assert (got is None) == could_opt_out


class _Dict(dict):  # type: ignore[type-arg]
    """A mapping the JSON decoders never make: only the Python path reads it."""


class _List(list):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize(
    "value",
    [
        [{"macAddress": "a0b1c2d3e4f5"}, _Dict(macAddress="a0b1c2d3e4f6")],
        _List([{"macAddress": "a0b1c2d3e4f5"}]),
    ],
)
def test_list_and_dict_subclasses_go_back_to_the_python_path(value: Any) -> None:
    from ichnaea.reports import formats

    assert _fast.submitted_macs(value, formats.WIFI_INTS, formats._WIFI_STRINGS,
                                formats.SENTINELS, True) is None  # fmt: skip
    for _, _, _, coded in observations._LISTS:
        assert _fast.flat_entries(value, coded, observations._RADIO_NAMES, 0, True) is None


# -- submitted_cells: the submit API's cell entries -----------------------------

_CELL_NAMES = [
    "radioType",
    "mobileCountryCode",
    "mobileNetworkCode",
    "locationAreaCode",
    "cellId",
    "newRadioCellId",
    "age",
    "asu",
    "serving",
    "signalStrength",
    "timingAdvance",
    "primaryScramblingCode",
    "psc",
    "other",
]
_RADIO_TEXTS = st.sampled_from(
    ["lte", " LTE ", "nr", "NR", "umts", "wcdma", "gsm", "cdma", "x", ""]
)
_CELL_VALUES = st.one_of(_SUBMIT_VALUES, _RADIO_TEXTS)


def _cell_entries(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    entry = st.dictionaries(st.sampled_from(_CELL_NAMES), values, max_size=8)
    return st.lists(st.one_of(entry, entry, entry, values), max_size=6)


_DEFAULT_RADIOS = st.sampled_from([None, "gsm", "nr", "lte"])


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        _cell_entries(_CELL_VALUES),
        _cell_entries(st.one_of(_CELL_VALUES, _SUBMIT_ODD)),
        json_values,
    ),
    _DEFAULT_RADIOS,
)
def test_submitted_cells_equal_the_python_function(value: Any, default_radio: str | None) -> None:
    """Plain lists give exactly what ``formats._cell`` gives (values, types and key
    order); anything else is handed back (None)."""
    from ichnaea.reports import formats

    got = _fast.submitted_cells(
        value, formats.CELL_INTS, formats.SENTINELS, formats.RADIOS, default_radio
    )
    want = [formats._cell(e, default_radio) for e in formats._entries(value)]
    if got is not None:
        _assert_same_entries(got, want)


_PLAIN_CELL_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        **{
            name: _SUBMIT_INTS
            for name in ("mobileCountryCode", "cellId", "newRadioCellId", "psc", "signalStrength")
        },
        "radioType": st.one_of(st.none(), st.integers(), _RADIO_TEXTS),
        "other": _SUBMIT_TEXTS,
    },
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(_PLAIN_CELL_ENTRY, st.integers(), st.none()), max_size=6), _DEFAULT_RADIOS
)
def test_submitted_cells_take_plain_entries(value: Any, default_radio: str | None) -> None:
    """Ints (or nothing) where ints belong: the compiled pass always answers."""
    from ichnaea.reports import formats

    got = _fast.submitted_cells(
        value, formats.CELL_INTS, formats.SENTINELS, formats.RADIOS, default_radio
    )
    assert got is not None
    assert got == [formats._cell(e, default_radio) for e in formats._entries(value)]


def test_submitted_cells_hand_back_what_the_python_function_coerces() -> None:
    from ichnaea.reports import formats

    def fast(value: Any) -> Any:
        return _fast.submitted_cells(
            value, formats.CELL_INTS, formats.SENTINELS, formats.RADIOS, None
        )

    assert fast([{"cellId": "12"}]) is None  # numeric text
    assert fast([{"cellId": 12.0}]) is None  # a float
    assert fast([{"psc": True}]) is None  # a boolean where psc stands in
    assert fast([{"radioType": "nr", "newRadioCellId": "7"}]) is None
    # Not read, so not in the way: psc beside a primaryScramblingCode, an NR id off NR.
    assert fast([{"primaryScramblingCode": 5, "psc": "x"}]) == [{"primaryScramblingCode": 5}]
    assert fast([{"radioType": "lte", "newRadioCellId": "7"}]) == [{"radioType": "lte"}]
    assert fast([{"radioType": " NR ", "cellId": 1, "newRadioCellId": 2**40}]) == [
        {"cellId": 2**40, "radioType": "nr"}
    ]
    assert fast(_List([{"cellId": 1}])) is None
    assert fast([_Dict(cellId=1)]) is None
