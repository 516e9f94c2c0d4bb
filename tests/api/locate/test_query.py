"""The query model (spec locate.md section 2): normalisation, validation, dedup."""

from __future__ import annotations

from typing import Any

import pytest

from ichnaea.api.locate.constants import DataAccuracy
from ichnaea.api.locate.query import Query, channel_frequency, normalise_mac
from ichnaea.api.locate.schemas import parse_locate_request
from ichnaea.enums import Radio
from ichnaea.errors import ParseError
from ichnaea.geoip import GeoIPRecord

LONDON = GeoIPRecord(51.5142, -0.0931, "GB", "United Kingdom", True, 40000.0, 543000.0, 0.8)


def build(body: dict[str, Any], *, ip: str | None = None, api_type: str = "locate") -> Query:
    geoip = LONDON if ip else None
    return Query.build(parse_locate_request(body), api_type=api_type, ip=ip, geoip=geoip)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A8:20:66:01:02:03", "a82066010203"),
        ("a8-20-66-01-02-03", "a82066010203"),
        ("a820.6601.0203", "a82066010203"),
        ("000000000000", None),
        ("ffffffffffff", None),
        ("01005e901000", None),
        ("a8206601020", None),
        ("a82066 010203", None),
        ("g82066010203", None),
        ("", None),
    ],
)
def test_mac_normalisation_and_validity(raw: str, expected: str | None) -> None:
    assert normalise_mac(raw) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ((1, None), (1, 2412)),
        ((13, None), (13, 2472)),
        ((14, None), (14, 2484)),
        ((36, None), (36, 5180)),
        ((186, None), (186, 4930)),
        ((None, 2412), (1, 2412)),
        ((None, 4915), (183, 4915)),
        ((None, 5180), (36, 5180)),
        ((3, 2412), (3, 2412)),
    ],
)
def test_channel_and_frequency_are_derived(
    given: tuple[int | None, int | None], expected: tuple[int, int]
) -> None:
    assert channel_frequency(*given) == expected


@pytest.mark.parametrize(
    "entry", [{"channel": 0}, {"channel": 200}, {"frequency": 2399}, {"frequency": 6000}]
)
def test_out_of_range_channel_or_frequency_is_dropped(entry: dict[str, int]) -> None:
    wifis = [{"macAddress": "a82066010203", **entry}, {"macAddress": "a82066010204"}]
    first = build({"wifiAccessPoints": wifis}).wifi[0]
    assert (first.channel, first.frequency) == (None, None)


def test_duplicate_wifi_keeps_the_strongest_signal() -> None:
    wifis = [{"macAddress": "a82066010203", "signalStrength": s} for s in (-90, -82, -85)]
    wifis.append({"macAddress": "a82066010204"})
    query = build({"wifiAccessPoints": wifis})
    assert [w.signal for w in query.wifi] == [-82, None]


def test_fewer_than_two_wifis_or_beacons_are_dropped_for_privacy() -> None:
    same = [{"macAddress": "a82066010203"}] * 3
    assert build({"wifiAccessPoints": same}).wifi == []
    one_bad = [{"macAddress": "a82066010203"}, {"macAddress": "nonsense"}]
    assert build({"bluetoothBeacons": one_bad}).blue == []


def test_cell_entry_yields_cell_and_area_and_gsm_fixup() -> None:
    cell = {"radioType": "gsm", "mobileCountryCode": 234, "mobileNetworkCode": 30,
            "locationAreaCode": 2, "cellId": 70000}  # fmt: skip
    query = build({"cellTowers": [cell]})
    # Quirk Q10, kept: a gsm cid above 65535 is a wcdma cell; the area stays gsm.
    assert query.cell[0].radio is Radio.wcdma
    assert query.cell_area[0].radio is Radio.gsm


LTE_AREA = {"radioType": "lte", "mobileCountryCode": 234, "mobileNetworkCode": 30,
            "locationAreaCode": 2}  # fmt: skip
TWO_WIFIS = [{"macAddress": "a82066010203"}, {"macAddress": "a82066010204"}]


@pytest.mark.parametrize(
    ("body", "ip", "expected"),
    [
        ({}, "81.2.69.192", DataAccuracy.low),
        ({"fallbacks": {"ipf": False}}, "81.2.69.192", DataAccuracy.none),
        ({"cellTowers": [LTE_AREA]}, None, DataAccuracy.low),
        ({"cellTowers": [LTE_AREA], "fallbacks": {"lacf": False}}, None, DataAccuracy.none),
        (
            {"cellTowers": [{**LTE_AREA, "cellId": 1}], "wifiAccessPoints": TWO_WIFIS},
            None,
            DataAccuracy.high,
        ),
    ],
)
def test_expected_accuracy_examples(
    body: dict[str, Any], ip: str | None, expected: DataAccuracy
) -> None:
    assert build(body, ip=ip).expected_accuracy is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(False, False), (0, False), ("false", False), ("FALSE", False), ("0", False),
     (True, True), (1, True), ("true", True), ("no", True), (0.0, True), (None, True)],
)  # fmt: skip
def test_boolean_parsing_keeps_the_original_rule_q7(value: Any, expected: bool) -> None:
    assert build({"fallbacks": {"ipf": value}}).ipf is expected


@pytest.mark.parametrize(
    "body",
    [
        {"wifiAccessPoints": [{"macAddress": 10}]},
        {"wifiAccessPoints": [{"macAddress": "a82066010203", "signalStrength": "x"}]},
        {"fallbacks": None},
        {"cellTowers": [{"radioType": "umts"}]},
        {"bluetoothBeacons": [1]},
        {"cellTowers": [{"cellId": "12.5"}]},
    ],
)
def test_wrong_json_types_are_parse_errors_q8(body: dict[str, Any]) -> None:
    with pytest.raises(ParseError) as info:
        parse_locate_request(body)
    assert info.value.details is not None and "validation" in info.value.details


def test_integer_coercions_follow_the_original() -> None:
    parsed = parse_locate_request(
        {"cellTowers": [{"radioType": "gsm", "mobileCountryCode": " 234", "mobileNetworkCode": "01",
                         "locationAreaCode": 2.9, "cellId": True, "age": ""}]}
    )  # fmt: skip
    cell = parsed.cell[0]
    assert (cell["mobileCountryCode"], cell["mobileNetworkCode"]) == (234, 1)
    assert (cell["locationAreaCode"], cell["cellId"], cell["age"]) == (2, 1, None)


@pytest.mark.parametrize("extra", [{}, {"age": 1.5}], ids=["compiled path", "python path"])
def test_psc_alias_is_honoured_fixing_q4(extra: dict[str, float]) -> None:
    # A float field sends the entries through the Python stages, not the kernel.
    cell = {"radioType": "wcdma", "mobileCountryCode": 234, "mobileNetworkCode": 10,
            "locationAreaCode": 1, "cellId": 2, "psc": 55, **extra}  # fmt: skip
    assert build({"cellTowers": [cell]}).cell[0].psc == 55
    if extra:
        parsed = parse_locate_request({"cellTowers": [cell]})
        assert parsed.cell[0]["primaryScramblingCode"] == 55


def test_nr_cells_carry_a_36_bit_cell_id() -> None:
    cell = {"radioType": "nr", "mobileCountryCode": 234, "mobileNetworkCode": 30,
            "locationAreaCode": 70000, "newRadioCellId": 68719476735}  # fmt: skip
    query = build({"cellTowers": [cell]})
    assert query.cell[0].cid == 68719476735
    assert len(query.cell[0].cellid) == 17
    (area,) = query.cell_area  # NR tracking areas: 24-bit TAC, 9-byte keys
    assert (area.lac, len(area.areaid)) == (70000, 9)


def test_json_lists_only_known_fields() -> None:
    wifis = [{"macAddress": "A8:20:66:01:02:03", "frequency": 2437, "extra": 1},
             {"macAddress": "a82066010204", "signalStrength": -130}]  # fmt: skip
    assert build({"wifiAccessPoints": wifis}).json() == {
        "wifiAccessPoints": [
            {"macAddress": "a82066010203", "channel": 6, "frequency": 2437},
            {"macAddress": "a82066010204"},
        ],
        "fallbacks": {"ipf": True, "lacf": True},
    }


def test_geoip_only_is_three_valued() -> None:
    assert build({}, ip="81.2.69.192").geoip_only is True
    assert build({}).geoip_only is None
    wifis = [{"macAddress": "a82066010203"}, {"macAddress": "a82066010204"}]
    assert build({"wifiAccessPoints": wifis}, ip="81.2.69.192").geoip_only is False


def signals(lookups: Any) -> list[int]:
    return sorted((lookup.signal for lookup in lookups), reverse=True)


def strongest(entries: list[dict[str, Any]], cap: int) -> list[int]:
    return sorted((e["signalStrength"] for e in entries if "signalStrength" in e), reverse=True)[
        :cap
    ]


def test_networks_beyond_the_cap_keep_the_strongest_in_request_order() -> None:
    """Issue 8 item 8: at most MAX_*_IN_QUERY networks of a type are looked up."""
    from ichnaea.api.locate.constants import (
        MAX_BLUES_IN_QUERY,
        MAX_CELLS_IN_QUERY,
        MAX_WIFIS_IN_QUERY,
    )

    n = 10_000
    # Signals -99..-11 repeating; entry 0 has none, which ranks below every reading.
    wifis = [{"macAddress": f"a820{i:08x}", "signalStrength": -11 - i % 89} for i in range(n)]
    del wifis[0]["signalStrength"]
    blues = [{"macAddress": f"b820{i:08x}", "signalStrength": -1 - i % 120} for i in range(n)]
    cells = [
        {"radioType": "lte", "mobileCountryCode": 234, "mobileNetworkCode": 30,
         "locationAreaCode": 1 + i // 100, "cellId": 1 + i, "signalStrength": -44 - i % 90}
        for i in range(n)
    ]  # fmt: skip
    query = build({"wifiAccessPoints": wifis, "bluetoothBeacons": blues, "cellTowers": cells})

    assert len(query.wifi) == MAX_WIFIS_IN_QUERY
    assert len(query.blue) == MAX_BLUES_IN_QUERY
    assert len(query.cell) == MAX_CELLS_IN_QUERY
    assert len(query.cell_area) == MAX_CELLS_IN_QUERY
    assert signals(query.wifi) == strongest(wifis, MAX_WIFIS_IN_QUERY)
    assert [w.mac for w in query.wifi] == sorted(w.mac for w in query.wifi)  # request order
    assert signals(query.blue) == strongest(blues, MAX_BLUES_IN_QUERY)
    assert signals(query.cell) == strongest(cells, MAX_CELLS_IN_QUERY)
    assert query.considered == {"blue": n, "cell": n, "wifi": n}


def test_networks_without_signals_beyond_the_cap_keep_the_first() -> None:
    from ichnaea.api.locate.constants import MAX_WIFIS_IN_QUERY

    wifis = [{"macAddress": f"a820{i:08x}"} for i in range(MAX_WIFIS_IN_QUERY + 5)]
    query = build({"wifiAccessPoints": wifis})
    assert [w.mac for w in query.wifi] == [f"a820{i:08x}" for i in range(MAX_WIFIS_IN_QUERY)]


def test_an_empty_body_parses_as_the_full_path_parses_one_without_known_fields() -> None:
    # {} takes a shortcut (the IP-only query is the most frequent); a body
    # whose only key is unknown takes the full path, and means the same.
    assert parse_locate_request({}) == parse_locate_request({"unknownField": 1})


@pytest.mark.parametrize(
    "body",
    [
        {"wifiAccessPoints": [{"macAddress": "not a mac"}]},  # stage B drops it
        # An invalid MCC, and no area fallback.
        {"cellTowers": [{"radioType": "gsm", "mobileCountryCode": 1}], "fallbacks": {"lacf": 0}},
        {"bluetoothBeacons": [{"macAddress": "00:00:00:00:00:00"}]},
        # A float signal: the Python path of stage A and B.
        {
            "wifiAccessPoints": [{"macAddress": "zz", "signalStrength": -7.5}],
            "fallbacks": {"ipf": 0},
        },
    ],
)
def test_a_query_without_networks_takes_the_shortcut_with_the_same_result(
    body: dict[str, Any],
) -> None:
    # Query.build returns at once when no entry survived stage B; the full
    # steps (dedup, caps, minimum counts) give the same empty query.
    request = parse_locate_request(body)
    query = Query.build(request, api_type="locate", ip="81.2.69.192", geoip=LONDON)
    assert not query.has_network_data
    assert query == Query(
        api_type="locate",
        ip="81.2.69.192",
        geoip=LONDON,
        lacf=request.lacf,
        ipf=request.ipf,
        considered=request.considered,
    )
    fallbacks = body.get("fallbacks", {})
    assert (query.lacf, query.ipf) == ("lacf" not in fallbacks, "ipf" not in fallbacks)
