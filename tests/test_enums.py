"""The stored integer values of the enumerations never change."""

from __future__ import annotations

from ichnaea.enums import Radio, ReportSource, StatKey


def test_radio_values_match_the_storage_format() -> None:
    assert {r.name: r.value for r in Radio} == {"gsm": 0, "cdma": 1, "wcdma": 2, "lte": 3, "nr": 4}


def test_report_source_values_match_the_storage_format() -> None:
    assert {s.name: s.value for s in ReportSource} == {
        "fixed": 0,
        "gnss": 3,
        "fused": 6,
        "query": 9,
    }


def test_stat_key_values_skip_retired_numbers() -> None:
    assert {k.name: k.value for k in StatKey} == {
        "cell": 1,
        "unique_cell": 2,
        "wifi": 3,
        "unique_wifi": 4,
        "blue": 8,
        "unique_blue": 9,
    }
