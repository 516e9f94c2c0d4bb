"""The internal exporter's transform (spec pipeline.md sections 7.1-7.6, 23 item 7)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ichnaea.codecs import decode_datamap_grid
from ichnaea.geocode import Geocoder
from ichnaea.pipeline.ingest.observations import InternalBatch, flatten_report, transform_batch
from ichnaea.pipeline.ingest.validation import (
    normalize_mac,
    validate_blue,
    validate_cell,
    validate_report,
    validate_wifi,
)
from ichnaea.regions import RegionTable
from tests._strategies import json_values

LONDON = {"latitude": 51.5, "longitude": -0.1}
TIMESTAMP = 1460700010000
GSM_CELL = {
    "radioType": "gsm",
    "mobileCountryCode": 234,
    "mobileNetworkCode": 30,
    "locationAreaCode": 123,
    "cellId": 4567,
}
MAC = "a8:20:66:00:00:01"
WIFIS = [{"macAddress": "0123456789ab"}, {"macAddress": "0123456789ac"}]
REJECT = object()  # expected value of a field that rejects the whole entry


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.load(RegionTable.load())


def report(
    *,
    position: Any = LONDON,
    blue: Any = None,
    cell: Any = None,
    wifi: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {"timestamp": TIMESTAMP, "position": position, **extra}
    if blue is not None:
        out["bluetoothBeacons"] = blue
    if cell is not None:
        out["cellTowers"] = cell
    if wifi is not None:
        out["wifiAccessPoints"] = wifi
    return out


def run(geocoder: Geocoder, *reports: Any, api_key: Any = "test") -> InternalBatch:
    return transform_batch([{"api_key": api_key, "report": r} for r in reports], geocoder)


def all_observations(batch: InternalBatch) -> list[dict[str, Any]]:
    return [obs for queue in batch.observations.values() for obs in queue]


# -- 7.1 flatten -------------------------------------------------------------


def test_flatten_renames_position_and_entry_fields() -> None:
    flat = flatten_report(
        {
            "timestamp": TIMESTAMP,
            "position": {
                "latitude": 51.5,
                "longitude": -0.1,
                "accuracy": 10,
                "altitude": 20.5,
                "altitudeAccuracy": 3,
                "heading": 90,
                "pressure": 1013,
                "speed": 2.5,
                "source": "gnss",
            },
            "bluetoothBeacons": [
                {"macAddress": "aa", "age": 1, "signalStrength": -70, "name": "x"}
            ],
            "cellTowers": [
                {
                    "radioType": "lte",
                    "mobileCountryCode": 262,
                    "mobileNetworkCode": 1,
                    "locationAreaCode": 2,
                    "cellId": 3,
                    "age": 4,
                    "asu": 5,
                    "primaryScramblingCode": 6,
                    "serving": 1,
                    "signalStrength": -90,
                    "timingAdvance": 7,
                }
            ],
            "wifiAccessPoints": [
                {
                    "macAddress": "bb",
                    "age": 8,
                    "channel": 6,
                    "frequency": 2437,
                    "radioType": "802.11n",
                    "signalToNoiseRatio": 20,
                    "signalStrength": -60,
                    "ssid": "home",
                }
            ],
        }
    )
    assert flat == {
        "lat": 51.5,
        "lon": -0.1,
        "accuracy": 10.0,
        "altitude": 20.5,
        "altitude_accuracy": 3.0,
        "heading": 90.0,
        "pressure": 1013.0,
        "speed": 2.5,
        "source": 3,
        "timestamp": TIMESTAMP,
        "blue": [{"mac": "aa", "age": 1, "signal": -70}],
        "cell": [
            {
                "radio": "lte",
                "mcc": 262,
                "mnc": 1,
                "lac": 2,
                "cid": 3,
                "age": 4,
                "asu": 5,
                "psc": 6,
                "serving": 1,
                "signal": -90,
                "ta": 7,
            }
        ],
        "wifi": [
            {
                "mac": "bb",
                "age": 8,
                "channel": 6,
                "frequency": 2437,
                "radio": "802.11n",
                "snr": 20,
                "signal": -60,
            }
        ],
    }


def test_flatten_position_age_makes_wifi_age_relative_to_fix() -> None:
    position = {**LONDON, "age": 6001}
    flat = flatten_report(report(position=position, wifi=[{"macAddress": "ab"}]))
    assert flat is not None
    assert flat["wifi"] == [{"mac": "ab", "age": -6001}]
    assert flat["timestamp"] == TIMESTAMP - 6001
    assert "age" not in flat


def test_flatten_position_age_shifts_beacon_ages() -> None:
    position = {**LONDON, "age": 1000}
    flat = flatten_report(report(position=position, blue=[{"age": 2000}, {"macAddress": "ab"}]))
    assert flat is not None
    assert flat["blue"] == [{"age": 1000}, {"age": -1000, "mac": "ab"}]


def test_flatten_position_age_moves_timestamp_back() -> None:
    flat = flatten_report(report(position={**LONDON, "age": 2000}, wifi=[{"macAddress": "ab"}]))
    assert flat is not None
    assert flat["timestamp"] == 1460700008000


def test_flatten_null_position_leaves_ages_untouched() -> None:
    flat = flatten_report(report(position=None, wifi=[{"macAddress": "ab", "age": 5}]))
    assert flat == {"timestamp": TIMESTAMP, "wifi": [{"mac": "ab", "age": 5}]}


def test_flatten_omits_empty_entries_and_lists() -> None:
    flat = flatten_report(
        report(blue=[{}, {"name": "only a name"}], cell=[], wifi=[{"ssid": "x"}, {"age": 3}])
    )
    assert flat is not None
    assert "blue" not in flat
    assert "cell" not in flat
    assert flat["wifi"] == [{"age": 3}]


@pytest.mark.parametrize(
    "value",
    [
        {"position": LONDON},
        report(blue=[{}], wifi=[{"ssid": "x"}], cell=[{"serving": None}]),
        report(wifi="not a list", cell={"radioType": "gsm"}),
        None,
        [1, 2],
        "report",
    ],
)
def test_flatten_report_without_entries_is_none(value: Any) -> None:
    assert flatten_report(value) is None


def test_flatten_report_radio_type_is_default_for_cells() -> None:
    flat = flatten_report(
        {"radioType": "UMTS", "cellTowers": [{"cellId": 1}, {"radioType": "lte", "cellId": 2}]}
    )
    assert flat is not None
    assert [cell["radio"] for cell in flat["cell"]] == ["wcdma", "lte"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("-70", -70),
        (" -70 ", -70),
        (-70.9, -70),
        ("-70.5", -70),
        ("1e1", 10),
        (True, None),
        ([-70], None),
        ({"v": 1}, None),
        (float("nan"), None),
        ("abc", None),
        (10**400, 10**400),
    ],
)
def test_flatten_coerces_numbers_or_treats_them_as_null(raw: Any, expected: Any) -> None:
    flat = flatten_report({"wifiAccessPoints": [{"macAddress": "ab", "signalStrength": raw}]})
    assert flat is not None
    assert flat["wifi"][0].get("signal") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("51.5", 51.5), (51, 51.0), (True, None), ("inf", None), (10**400, None), ([], None)],
)
def test_flatten_coerces_position_floats(raw: Any, expected: Any) -> None:
    flat = flatten_report(report(position={"latitude": raw}, wifi=[{"macAddress": "ab"}]))
    assert flat is not None
    assert flat.get("lat") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fixed", 0),
        ("gnss", 3),
        ("fused", 6),
        ("query", 9),
        ("GNSS", 3),
        ("gps", 3),
        ("manual", 0),
        (6, 6),
        ("9", 9),
        (1, None),
        ("satellite", None),
        (None, None),
    ],
)
def test_flatten_source_by_name_or_number(raw: Any, expected: int | None) -> None:
    flat = flatten_report(report(position={**LONDON, "source": raw}, wifi=[{"macAddress": "ab"}]))
    assert flat is not None
    assert flat.get("source") == expected


# -- 7.2 report validation ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("accuracy", 0.0, True),
        ("accuracy", 1_000_000.0, True),
        ("accuracy", -0.1, False),
        ("accuracy", 1_000_000.1, False),
        ("altitude", -10911.0, True),
        ("altitude", 100_000.0, True),
        ("altitude", -10911.1, False),
        ("altitude", 100_000.1, False),
        ("altitude_accuracy", 0.0, True),
        ("altitude_accuracy", 110_911.0, True),
        ("altitude_accuracy", -0.1, False),
        ("altitude_accuracy", 110_911.1, False),
        ("heading", 0.0, True),
        ("heading", 360.0, True),
        ("heading", -0.1, False),
        ("heading", 360.1, False),
        ("pressure", 100.0, True),
        ("pressure", 1200.0, True),
        ("pressure", 99.9, False),
        ("pressure", 1200.1, False),
        ("speed", 0.0, True),
        ("speed", 300.0, True),
        ("speed", -0.1, False),
        ("speed", 300.1, False),
        ("timestamp", 10**12, True),
        ("timestamp", 10**13, True),
        ("timestamp", 10**12 - 1, False),
        ("timestamp", 10**13 + 1, False),
        ("source", 0, True),
        ("source", 9, True),
        ("source", 4, False),
    ],
)
def test_report_optional_field_out_of_range_becomes_null(
    field: str, value: float, valid: bool
) -> None:
    fields = validate_report({"lat": 1.0, "lon": 2.0, field: value})
    assert fields is not None
    assert (field in fields) is valid
    if valid:
        assert fields[field] == value


@pytest.mark.parametrize(
    ("lat", "lon", "valid"),
    [
        (85.051, 180.0, True),
        (-85.051, -180.0, True),
        (85.0511, 0.0, False),
        (-85.0511, 0.0, False),
        (-90.1, 0.0, False),
        (0.0, 180.1, False),
        (0.0, -180.1, False),
        (None, 0.0, False),
        (0.0, None, False),
    ],
)
def test_report_requires_lat_lon_in_range(
    lat: float | None, lon: float | None, valid: bool
) -> None:
    flat = {name: value for name, value in (("lat", lat), ("lon", lon)) if value is not None}
    assert (validate_report(flat) is not None) is valid


def test_report_outside_every_region_is_dropped(geocoder: Geocoder) -> None:
    batch = run(geocoder, report(position={"latitude": 0.0, "longitude": 0.0}, wifi=WIFIS))
    assert batch.observations == {}
    assert batch.datamap == {}
    assert batch.counts == {"test": Counter(report_upload=1, report_drop=1)}


def test_report_without_position_is_dropped(geocoder: Geocoder) -> None:
    batch = run(geocoder, report(position=None, wifi=WIFIS))
    assert batch.observations == {}
    assert batch.counts == {"test": Counter(report_upload=1, report_drop=1)}


def test_report_without_entries_is_not_counted(geocoder: Geocoder) -> None:
    batch = run(geocoder, report(wifi=[{}], blue=[]), {"position": LONDON})
    assert batch == InternalBatch(observations={}, datamap={}, counts={})


# -- 7.2 MAC, Bluetooth and Wi-Fi validation ---------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("01:23:45:67:89:ab", "0123456789ab"),
        ("01-23-45-67-89-AB", "0123456789ab"),
        ("0123.4567.89ab", "0123456789ab"),
        ("0A0000000000", "0a0000000000"),
        ("000000000000", None),
        ("ff:ff:ff:ff:ff:ff", None),
        ("01:00:5e:90:10:00", None),
        ("abcd", None),
        ("0123456789ag", None),
        ("0123456789abc", None),
        ("01 23 45 67 89 ab", None),
        # Twelve characters with separators: eight hex digits once they are gone.
        ("01:23:45:67:", None),
        ("0123-4567-89", None),
        (123456789012, None),
        (None, None),
    ],
)
def test_mac_is_normalised_or_rejected(raw: Any, expected: str | None) -> None:
    assert normalize_mac(raw) == expected


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("age", -3_600_000, True),
        ("age", 3_600_000, True),
        ("age", -3_600_001, False),
        ("age", 3_600_001, False),
        ("signal", -127, True),
        ("signal", 0, True),
        ("signal", -128, False),
        ("signal", 1, False),
    ],
)
def test_blue_optional_field_out_of_range_becomes_null(field: str, value: int, valid: bool) -> None:
    assert validate_blue({"mac": "0123456789ab", field: value}) == {
        "mac": "0123456789ab",
        **({field: value} if valid else {}),
    }


def test_blue_without_valid_mac_is_rejected() -> None:
    assert validate_blue({"age": 3, "signal": -70}) is None
    assert validate_blue({"mac": "abcd", "signal": -70}) is None


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("age", -3_600_000, True),
        ("age", 3_600_000, True),
        ("age", 3_600_001, False),
        ("signal", -100, True),
        ("signal", -10, True),
        ("signal", -101, False),
        ("signal", -9, False),
        ("snr", 1, True),
        ("snr", 100, True),
        ("snr", 0, False),
        ("snr", 101, False),
    ],
)
def test_wifi_optional_field_out_of_range_becomes_null(field: str, value: int, valid: bool) -> None:
    obs = validate_wifi({"mac": "0123456789ab", field: value})
    assert obs is not None
    assert obs.get(field) == (value if valid else None)


@pytest.mark.parametrize(
    ("channel", "frequency", "expected"),
    [
        (1, None, (1, 2412)),
        (13, None, (13, 2472)),
        (14, None, (14, 2484)),
        (15, None, (15, 5075)),
        (36, None, (36, 5180)),
        (185, None, (185, 5925)),
        (186, None, (186, 4930)),
        (199, None, (199, 4995)),
        (200, None, (None, None)),
        (None, 2411, (None, 2411)),
        (None, 2412, (1, 2412)),
        (None, 2472, (13, 2472)),
        (None, 2473, (None, 2473)),
        (None, 2484, (14, 2484)),
        (None, 4910, (None, 4910)),
        (None, 4915, (183, 4915)),
        (None, 4995, (199, 4995)),
        (None, 5000, (None, 5000)),
        (None, 5074, (None, 5074)),
        (None, 5075, (15, 5075)),
        (None, 5925, (185, 5925)),
        (None, 5930, (None, 5930)),
        (None, 2400, (None, 2400)),
        (None, 5999, (None, 5999)),
        (None, 2399, (None, None)),
        (None, 6000, (None, None)),
        (3, 2412, (3, 2412)),
        (0, 10, (None, None)),
        (4, 10, (4, 2427)),
    ],
)
def test_wifi_channel_and_frequency_derive_each_other(
    channel: int | None, frequency: int | None, expected: tuple[int | None, int | None]
) -> None:
    entry = {"mac": "0123456789ab", "channel": channel, "frequency": frequency}
    obs = validate_wifi({key: value for key, value in entry.items() if value is not None})
    assert obs is not None
    assert (obs.get("channel"), obs.get("frequency")) == expected


def test_wifi_without_valid_mac_is_rejected() -> None:
    assert validate_wifi({"age": 3}) is None
    assert validate_wifi({"mac": "ffffffffffff"}) is None


# -- 7.2 cell validation -----------------------------------------------------

CELL = {"radio": "gsm", "mcc": 234, "mnc": 30, "lac": 123, "cid": 4567}
LTE = {**CELL, "radio": "lte"}
WCDMA = {**CELL, "radio": "wcdma"}
NR = {**CELL, "radio": "nr"}


@pytest.mark.parametrize(
    ("cell", "field", "value", "expected"),
    [
        (CELL, "mcc", 262, 262),
        (CELL, "mcc", -2, REJECT),
        (CELL, "mcc", 0, REJECT),
        (CELL, "mcc", 1, REJECT),
        (CELL, "mcc", 553, REJECT),
        (CELL, "mcc", 1000, REJECT),
        (CELL, "mcc", None, REJECT),
        (CELL, "mnc", 0, 0),
        (CELL, "mnc", 999, 999),
        (CELL, "mnc", -1, REJECT),
        (CELL, "mnc", 1000, REJECT),
        (CELL, "mnc", None, REJECT),
        (CELL, "lac", 1, 1),
        (CELL, "lac", 65533, 65533),
        (CELL, "lac", 0, REJECT),
        (CELL, "lac", 65534, REJECT),
        (CELL, "lac", None, REJECT),
        (CELL, "cid", 1, 1),
        (CELL, "cid", 65535, 65535),
        (WCDMA, "cid", 268_435_455, 268_435_455),
        (WCDMA, "cid", 268_435_456, REJECT),
        (CELL, "cid", 0, REJECT),
        (CELL, "cid", None, REJECT),
        (CELL, "radio", "cdma", REJECT),
        (CELL, "radio", "tdscdma", REJECT),
        (CELL, "radio", None, REJECT),
        (CELL, "psc", 0, 0),
        (CELL, "psc", 511, 511),
        (CELL, "psc", 512, None),
        (CELL, "psc", -1, None),
        (LTE, "psc", 503, 503),
        (LTE, "psc", 504, None),
        (CELL, "age", -3_600_000, -3_600_000),
        (CELL, "age", 3_600_000, 3_600_000),
        (CELL, "age", 3_600_001, None),
        (CELL, "asu", 0, 0),
        (CELL, "asu", 31, 31),
        (CELL, "asu", 32, None),
        (CELL, "asu", -1, None),
        (WCDMA, "asu", -5, -5),
        (WCDMA, "asu", 91, 91),
        (WCDMA, "asu", 92, None),
        (LTE, "asu", 97, 97),
        (LTE, "asu", 98, None),
        (LTE, "asu", -1, None),
        (CELL, "signal", -113, -113),
        (CELL, "signal", -51, -51),
        (CELL, "signal", -114, None),
        (CELL, "signal", -50, None),
        (WCDMA, "signal", -121, -121),
        (WCDMA, "signal", -25, -25),
        (WCDMA, "signal", -122, None),
        (WCDMA, "signal", -24, None),
        (LTE, "signal", -140, -140),
        (LTE, "signal", -43, -43),
        (LTE, "signal", -141, None),
        (LTE, "signal", -42, None),
        (CELL, "ta", 0, 0),
        (CELL, "ta", 63, 63),
        (CELL, "ta", 64, None),
        (CELL, "ta", -1, None),
        (LTE, "ta", 63, 63),
        (LTE, "ta", 64, None),
        (WCDMA, "ta", 0, None),
        (WCDMA, "ta", 10, None),
    ],
)
def test_cell_field_ranges(cell: dict[str, Any], field: str, value: Any, expected: Any) -> None:
    entry = {**cell, field: value}
    obs = validate_cell({key: v for key, v in entry.items() if v is not None})
    if expected is REJECT:
        assert obs is None
    else:
        assert obs is not None
        assert obs.get(field) == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("lac", 1, 1),
        ("lac", 65534, 65534),
        ("lac", 16_777_215, 16_777_215),
        ("lac", 16_777_216, REJECT),
        ("lac", 0, REJECT),
        ("cid", 1, 1),
        ("cid", 268_435_456, 268_435_456),
        ("cid", 68_719_476_735, 68_719_476_735),
        ("cid", 68_719_476_736, REJECT),
        ("cid", 0, REJECT),
        ("psc", 0, 0),
        ("psc", 1007, 1007),
        ("psc", 1008, None),
        ("signal", -156, -156),
        ("signal", -31, -31),
        ("signal", -157, None),
        ("signal", -30, None),
        ("asu", 0, 0),
        ("asu", 127, 127),
        ("asu", 128, None),
        ("ta", 0, 0),
        ("ta", 3846, 3846),
        ("ta", 3847, None),
        ("mcc", 553, REJECT),
        ("mnc", 1000, REJECT),
    ],
)
def test_nr_cell_field_ranges(field: str, value: int, expected: Any) -> None:
    obs = validate_cell({**NR, field: value})
    if expected is REJECT:
        assert obs is None
    else:
        assert obs is not None
        assert obs["radio"] == 4
        assert obs.get(field) == expected


def test_nr_cell_keeps_large_cell_id_without_rewrite_and_derives_no_signal() -> None:
    assert validate_cell({**NR, "cid": 70000, "asu": 15}) == {
        "radio": 4,
        "mcc": 234,
        "mnc": 30,
        "lac": 123,
        "cid": 70000,
        "asu": 15,
    }


@pytest.mark.parametrize(
    ("cid", "radio"),
    [(65535, 0), (65536, 2), (268_435_455, 2)],
)
def test_gsm_cell_with_large_cell_id_becomes_wcdma(cid: int, radio: int) -> None:
    obs = validate_cell({**CELL, "cid": cid, "ta": 5})
    assert obs is not None
    assert obs["radio"] == radio
    assert ("ta" in obs) is (radio == 0)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [(CELL, -83), (WCDMA, -101), (LTE, -125)],
)
def test_cell_signal_is_derived_from_asu(cell: dict[str, Any], expected: int) -> None:
    obs = validate_cell({**cell, "asu": 15})
    assert obs is not None
    assert (obs["asu"], obs["signal"]) == (15, expected)


def test_cell_signal_is_not_derived_from_invalid_asu() -> None:
    obs = validate_cell({**CELL, "asu": 32})
    assert obs is not None
    assert "asu" not in obs
    assert "signal" not in obs


@pytest.mark.parametrize(
    ("asu", "signal", "expected"),
    [
        (-70, None, (None, -70)),
        (-70, 5, (None, -70)),
        (-70, 0, (None, -70)),
        (-70, -80, (None, -80)),
        (-6, None, (None, None)),
        (-5, None, (-5, -121)),
    ],
)
def test_cell_asu_holding_a_dbm_value_is_swapped_into_signal(
    asu: int, signal: int | None, expected: tuple[int | None, int | None]
) -> None:
    entry = {**WCDMA, "asu": asu}
    if signal is not None:
        entry["signal"] = signal
    obs = validate_cell(entry)
    assert obs is not None
    assert (obs.get("asu"), obs.get("signal")) == expected


def test_cell_with_only_psc_is_rejected_quirk_7_kept() -> None:
    assert validate_cell({"radio": "lte", "psc": 5}) is None
    assert validate_cell({"radio": "lte", "mcc": 262, "mnc": 1, "psc": 5}) is None


# -- 7.3 de-duplication ------------------------------------------------------


def test_duplicated_beacon_keeps_only_the_best(geocoder: Geocoder) -> None:
    beacons = [
        {"macAddress": MAC, "signalStrength": -70},
        {"macAddress": MAC, "signalStrength": -68},
        {"macAddress": MAC, "signalStrength": -72},
    ]
    batch = run(geocoder, report(blue=beacons))
    assert [obs["signal"] for obs in all_observations(batch)] == [-68]
    assert batch.counts["test"] == Counter(report_upload=1, blue_upload=1)


def test_duplicate_replaces_kept_entry_unless_kept_is_better_in_any_comparator(
    geocoder: Geocoder,
) -> None:
    wifis = [
        {"macAddress": MAC, "signalStrength": -80, "signalToNoiseRatio": 30},
        # Better signal, but the kept one has the better snr: the kept one stays.
        {"macAddress": MAC, "signalStrength": -70, "signalToNoiseRatio": 20},
    ]
    batch = run(geocoder, report(wifi=wifis))
    assert [(obs["signal"], obs["snr"]) for obs in all_observations(batch)] == [(-80, 30)]


def test_duplicate_with_nothing_comparable_replaces_kept_entry(geocoder: Geocoder) -> None:
    wifis = [{"macAddress": MAC, "signalStrength": -70}, {"macAddress": MAC, "age": 5}]
    batch = run(geocoder, report(wifi=wifis))
    assert [obs.get("signal") for obs in all_observations(batch)] == [None]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ({"timingAdvance": 1}, {"timingAdvance": 2}, {"ta": 1}),
        ({"timingAdvance": 2}, {"timingAdvance": 1}, {"ta": 1}),
        ({"signalStrength": -80}, {"signalStrength": -90}, {"signal": -80}),
        ({"signalStrength": -90}, {"signalStrength": -80}, {"signal": -80}),
        (
            {"asu": 10, "signalStrength": -60},
            {"asu": 20, "signalStrength": -60},
            {"asu": 20, "signal": -60},
        ),
        ({"age": 10}, {"age": 20}, {"age": 10}),
        ({"age": 20}, {"age": 10}, {"age": 10}),
        # The kept one's lower ta wins although the new one has a better signal.
        (
            {"timingAdvance": 1, "signalStrength": -90},
            {"timingAdvance": 2, "signalStrength": -80},
            {"ta": 1, "signal": -90},
        ),
    ],
)
def test_duplicated_cell_keeps_better_one(
    geocoder: Geocoder, first: dict[str, int], second: dict[str, int], expected: dict[str, int]
) -> None:
    batch = run(geocoder, report(cell=[{**GSM_CELL, **first}, {**GSM_CELL, **second}]))
    (obs,) = batch.observations["update_cell_gsm"]
    assert {key: obs[key] for key in expected} == expected
    assert batch.counts["test"] == Counter(report_upload=1, cell_upload=1)


# -- 7.4 observations and queues ---------------------------------------------


@pytest.mark.parametrize(
    ("mac", "shard"),
    [
        ("111101123456", "0"),
        ("0000f0123456", "f"),
        ("3680873e9b83", "8"),
        ("AB:CD:EF:01:23:45", "e"),
    ],
)
def test_wifi_and_blue_queues_use_fifth_hex_character_quirk_3_kept(
    geocoder: Geocoder, mac: str, shard: str
) -> None:
    batch = run(geocoder, report(wifi=[{"macAddress": mac}], blue=[{"macAddress": mac}]))
    assert sorted(batch.observations) == [f"update_blue_{shard}", f"update_wifi_{shard}"]


def test_observations_are_sparse_with_report_fields(geocoder: Geocoder) -> None:
    position = {**LONDON, "accuracy": 17, "source": "fused", "heading": 400, "speed": 2}
    batch = run(
        geocoder,
        report(
            position=position,
            blue=[{"macAddress": "0123456789ab", "signalStrength": -70, "name": "tag"}],
            cell=[{**GSM_CELL, "primaryScramblingCode": 9, "serving": 1, "asu": 15}],
            wifi=[{"macAddress": "A8-20-66-00-00-01", "channel": 6, "ssid": "home"}],
        ),
    )
    common = {
        "lat": 51.5,
        "lon": -0.1,
        "accuracy": 17.0,
        "speed": 2.0,
        "source": 6,
        "timestamp": TIMESTAMP,
    }
    assert batch.observations == {
        "update_blue_4": [{**common, "mac": "0123456789ab", "signal": -70}],
        "update_cell_gsm": [
            {
                **common,
                "radio": 0,
                "mcc": 234,
                "mnc": 30,
                "lac": 123,
                "cid": 4567,
                "psc": 9,
                "asu": 15,
                "signal": -83,
            }
        ],
        "update_wifi_6": [{**common, "mac": "a82066000001", "channel": 6, "frequency": 2437}],
    }
    assert batch.counts == {
        "test": Counter(report_upload=1, blue_upload=1, cell_upload=1, wifi_upload=1)
    }


def test_nr_cell_goes_to_its_own_queue(geocoder: Geocoder) -> None:
    cell = {
        "radioType": "nr",
        "mobileCountryCode": 262,
        "mobileNetworkCode": 1,
        "locationAreaCode": 70000,
        "cellId": 2**35,
        "primaryScramblingCode": 1000,
        "signalStrength": -150,
        "asu": 100,
        "timingAdvance": 3000,
    }
    batch = run(geocoder, report(position={"latitude": 50.0, "longitude": 10.0}, cell=[cell]))
    (obs,) = batch.observations["update_cell_nr"]
    assert obs == {
        "lat": 50.0,
        "lon": 10.0,
        "timestamp": TIMESTAMP,
        "radio": 4,
        "mcc": 262,
        "mnc": 1,
        "lac": 70000,
        "cid": 2**35,
        "psc": 1000,
        "signal": -150,
        "asu": 100,
        "ta": 3000,
    }
    assert list(batch.observations) == ["update_cell_nr"]


def test_observation_timestamp_and_age_are_relative_to_gps_fix(geocoder: Geocoder) -> None:
    batch = run(
        geocoder,
        report(
            position={**LONDON, "age": 2000},
            wifi=[{"macAddress": "0123456789ab", "age": 1500}],
        ),
    )
    (obs,) = all_observations(batch)
    assert obs["timestamp"] == 1460700008000
    assert obs["age"] == -500


def test_observations_keep_input_order_across_reports(geocoder: Geocoder) -> None:
    macs = ["0000a0000001", "0000a0000002", "0000a0000003"]
    batch = run(geocoder, *(report(wifi=[{"macAddress": mac}]) for mac in macs))
    assert [obs["mac"] for obs in batch.observations["update_wifi_a"]] == macs


# -- 7.5 counts --------------------------------------------------------------


def test_invalid_mcc_drops_cell_and_report(geocoder: Geocoder) -> None:
    batch = run(geocoder, report(cell=[{**GSM_CELL, "mobileCountryCode": -2}]))
    assert batch.observations == {}
    assert batch.datamap == {}
    assert batch.counts == {"test": Counter(report_upload=1, report_drop=1, cell_drop=1)}


def test_invalid_wifi_mac_drops_wifi_and_report(geocoder: Geocoder) -> None:
    batch = run(geocoder, report(wifi=[{"macAddress": "abcd"}]))
    assert batch.observations == {}
    assert batch.counts == {"test": Counter(report_upload=1, report_drop=1, wifi_drop=1)}


def test_report_out_of_range_is_dropped_next_to_valid_one(geocoder: Geocoder) -> None:
    bad = report(position={"latitude": -90.1, "longitude": 0.0}, wifi=[{"macAddress": "abcd"}])
    batch = run(geocoder, bad, report(wifi=WIFIS[:1]))
    assert len(all_observations(batch)) == 1
    assert batch.counts == {"test": Counter(report_upload=2, report_drop=1, wifi_upload=1)}


def test_counts_are_kept_per_api_key(geocoder: Geocoder) -> None:
    one = report(cell=[GSM_CELL], wifi=WIFIS)
    items = [
        {"api_key": key, "report": one}
        for key in ["test"] * 3 + ["e5444-794"] * 6 + [None] * 3 + ["", 42]
    ]
    batch = transform_batch(items, geocoder)
    assert batch.counts == {
        "test": Counter(report_upload=3, cell_upload=3, wifi_upload=6),
        "e5444-794": Counter(report_upload=6, cell_upload=6, wifi_upload=12),
        None: Counter(report_upload=5, cell_upload=5, wifi_upload=10),
    }
    assert len(batch.observations["update_cell_gsm"]) == 14


def test_valid_and_invalid_entries_are_counted_by_type(geocoder: Geocoder) -> None:
    batch = run(
        geocoder,
        report(
            blue=[{"macAddress": "abcd"}, {"macAddress": "0123456789ab"}],
            cell=[{"radioType": "cdma", "cellId": 1}],
            wifi=[*WIFIS, {"macAddress": "000000000000"}, {"age": 1}],
        ),
    )
    assert batch.counts["test"] == Counter(
        report_upload=1, blue_upload=1, blue_drop=1, cell_drop=1, wifi_upload=2, wifi_drop=2
    )


# -- 7.6 datamap -------------------------------------------------------------


def test_datamap_grids_are_deduplicated_per_shard(geocoder: Geocoder) -> None:
    batch = run(
        geocoder,
        report(position={"latitude": 50.0, "longitude": 10.0}, wifi=WIFIS),
        report(position={"latitude": 20.0, "longitude": -10.0}, wifi=WIFIS),
        report(position={"latitude": 20.0, "longitude": -10.0}, wifi=WIFIS),
    )
    assert {queue: len(grids) for queue, grids in batch.datamap.items()} == {
        "update_datamap_ne": 1,
        "update_datamap_sw": 1,
    }
    assert [decode_datamap_grid(g) for g in batch.datamap["update_datamap_ne"]] == [(50000, 10000)]
    assert [decode_datamap_grid(g) for g in batch.datamap["update_datamap_sw"]] == [(20000, -10000)]


def test_datamap_skips_reports_without_observations(geocoder: Geocoder) -> None:
    batch = run(
        geocoder,
        report(position={"latitude": 50.0, "longitude": 10.0}, wifi=[{"macAddress": "abcd"}]),
        report(position={"latitude": 51.5001, "longitude": -0.1004}, wifi=WIFIS),
    )
    assert list(batch.datamap) == ["update_datamap_nw"]
    assert [decode_datamap_grid(g) for g in batch.datamap["update_datamap_nw"]] == [(51500, -100)]


# -- robustness --------------------------------------------------------------


@pytest.mark.parametrize(
    "items",
    [
        [],
        [None, 1, "x", [], {}],
        [{"report": None}, {"report": []}, {"api_key": [1], "report": "r"}],
        [{"api_key": {"a": 1}, "report": report(position=[], wifi=[None, 1, {"macAddress": []}])}],
    ],
)
def test_junk_items_are_skipped(geocoder: Geocoder, items: list[Any]) -> None:
    assert transform_batch(items, geocoder) == InternalBatch({}, {}, {})


REPORT_RANGES = {
    "lat": (-85.051, 85.051),
    "lon": (-180, 180),
    "accuracy": (0, 1e6),
    "altitude": (-10911, 100000),
    "altitude_accuracy": (0, 110911),
    "heading": (0, 360),
    "pressure": (100, 1200),
    "speed": (0, 300),
    "timestamp": (10**12, 10**13),
    "source": (0, 9),
}
AGE = (-3_600_000, 3_600_000)
BLUE_RANGES = {"age": AGE, "signal": (-127, 0)}
WIFI_RANGES = {
    "age": AGE,
    "channel": (1, 199),
    "frequency": (2400, 5999),
    "signal": (-100, -10),
    "snr": (1, 100),
}
COMMON_CELL = {"mcc": (1, 999), "mnc": (0, 999), "age": AGE}
CELL_RANGES = {
    "gsm": {"lac": (1, 65533), "cid": (1, 65535), "psc": (0, 511), "asu": (0, 31),
            "signal": (-113, -51), "ta": (0, 63)},
    "wcdma": {"lac": (1, 65533), "cid": (1, 2**28 - 1), "psc": (0, 511), "asu": (-5, 91),
              "signal": (-121, -25)},
    "lte": {"lac": (1, 65533), "cid": (1, 2**28 - 1), "psc": (0, 503), "asu": (0, 97),
            "signal": (-140, -43), "ta": (0, 63)},
    "nr": {"lac": (1, 2**24 - 1), "cid": (1, 2**36 - 1), "psc": (0, 1007), "asu": (0, 127),
           "signal": (-156, -31), "ta": (0, 3846)},
}  # fmt: skip
RADIO_NAMES = {0: "gsm", 2: "wcdma", 3: "lte", 4: "nr"}


def assert_in_ranges(obs: dict[str, Any], ranges: Mapping[str, tuple[float, float]]) -> None:
    for name, value in obs.items():
        low, high = ranges[name]
        assert value is not None
        assert low <= value <= high, (name, value)


def assert_valid_observation(queue: str, obs: dict[str, Any]) -> None:
    report_fields = {k: v for k, v in obs.items() if k in REPORT_RANGES}
    entry_fields = {k: v for k, v in obs.items() if k not in REPORT_RANGES}
    assert_in_ranges(report_fields, REPORT_RANGES)
    assert {"lat", "lon"} <= report_fields.keys()
    assert obs.get("source", 0) in (0, 3, 6, 9)
    kind = queue.split("_")[1]
    if kind in ("wifi", "blue"):
        mac = entry_fields.pop("mac")
        assert len(mac) == 12
        assert set(mac) <= set("0123456789abcdef")
        assert mac not in ("000000000000", "ffffffffffff", "01005e901000")
        assert queue == f"update_{kind}_{mac[4]}"
        assert_in_ranges(entry_fields, WIFI_RANGES if kind == "wifi" else BLUE_RANGES)
    else:
        assert kind == "cell"
        radio = RADIO_NAMES[entry_fields.pop("radio")]
        assert queue == f"update_cell_{radio}"
        assert {"mcc", "mnc", "lac", "cid"} <= entry_fields.keys()
        assert entry_fields["mcc"] != 553
        assert_in_ranges(entry_fields, {**COMMON_CELL, **CELL_RANGES[radio]})


def mostly(good: st.SearchStrategy[Any], junk: st.SearchStrategy[Any] = json_values) -> Any:
    """Four times in five ``good``, else ``junk`` (``one_of`` would favour ``junk``)."""
    return st.integers(0, 4).flatmap(lambda n: junk if n == 4 else good)


def plausible(*values: Any) -> Any:
    """Mostly the given values (valid ones and edge cases), sometimes any JSON value."""
    return mostly(st.sampled_from(values), st.integers(-200, 70000) | json_values)


ENTRY_FIELDS = {
    "macAddress": plausible("a8:20:66:00:00:01", "0123456789AB", "000000000000", "ab"),
    "age": plausible(0, 1500, -3_600_000, 3_600_001),
    "signalStrength": plausible(-70, -127, -10, -156, 5),
    "signalToNoiseRatio": plausible(0, 1, 100),
    "channel": plausible(1, 14, 36, 199),
    "frequency": plausible(2412, 4915, 5999),
    "radioType": plausible("gsm", "wcdma", "lte", "nr", "cdma", "UMTS"),
    "mobileCountryCode": plausible(234, 262, 553, -2),
    "mobileNetworkCode": plausible(0, 30, 999),
    "locationAreaCode": plausible(1, 65533, 16_777_215),
    "cellId": plausible(1, 65536, 2**28 - 1, 2**36 - 1),
    "primaryScramblingCode": plausible(0, 503, 511, 1007),
    "asu": plausible(-70, -5, 15, 31, 97, 127),
    "timingAdvance": plausible(0, 63, 3846),
}
CELL_KEYS = ("radioType", "mobileCountryCode", "mobileNetworkCode", "locationAreaCode", "cellId")


def entries_with(*required: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {name: ENTRY_FIELDS[name] for name in required},
        optional={name: value for name, value in ENTRY_FIELDS.items() if name not in required},
    )


entries = mostly(entries_with("macAddress") | entries_with(*CELL_KEYS) | entries_with())
positions = st.fixed_dictionaries(
    {
        "latitude": plausible(51.5, 50.0, "20", 51.5, 50.0, "20", 0.0, 85.051, -90.1),
        "longitude": plausible(-0.1, 10.0, 0.0, "-10"),
    },
    optional={
        "accuracy": plausible(10.0, -1, 1e6),
        "altitude": plausible(100.0, -10911),
        "altitudeAccuracy": plausible(5.0, 110911),
        "heading": plausible(0.0, 360, 361),
        "pressure": plausible(1013, 99),
        "speed": plausible(0.0, 300, 301),
        "age": plausible(0, 2000, -5000),
        "source": plausible("gnss", "fixed", "fused", "query", 3, "gps", "bogus"),
    },
)
station_lists = st.lists(entries, min_size=1, max_size=4) | st.lists(entries, max_size=2)
reports = st.fixed_dictionaries(
    {
        "position": mostly(positions),
        "bluetoothBeacons": mostly(station_lists),
        "cellTowers": mostly(station_lists),
        "wifiAccessPoints": mostly(station_lists),
    },
    optional={
        "timestamp": plausible(TIMESTAMP, 10**12, 10**13 + 1),
        "radioType": plausible("gsm", "lte", "nr"),
    },
)
export_items = st.lists(
    mostly(st.fixed_dictionaries({"report": mostly(reports)}, optional={"api_key": json_values})),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(items=export_items)
def test_random_reports_never_raise_and_give_valid_observations(
    geocoder: Geocoder, items: list[Any]
) -> None:
    batch = transform_batch(items, geocoder)
    produced = 0
    for queue, observations in batch.observations.items():
        assert observations
        for obs in observations:
            assert_valid_observation(queue, obs)
            produced += 1
    uploads = sum(
        count for counter in batch.counts.values() for name, count in counter.items()
        if name.endswith("_upload") and name != "report_upload"
    )  # fmt: skip
    assert uploads == produced
    for counter in batch.counts.values():
        assert counter["report_drop"] <= counter["report_upload"]
        assert all(count > 0 for count in counter.values())
    for queue, grids in batch.datamap.items():
        for grid in grids:
            assert queue.startswith("update_datamap_")
            lat, lon = decode_datamap_grid(grid)
            assert -85051 <= lat <= 85051
            assert -180000 <= lon <= 180000
