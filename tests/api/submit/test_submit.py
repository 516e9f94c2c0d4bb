"""The submit APIs over the real app (spec pipeline.md 1.8), with our lenient decisions."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item
from ichnaea.reports.formats import parse_v0, parse_v1, parse_v2
from tests.fixtures_app import Backend, Seeder

MAC = "a82066010203"
WIFI = {"macAddress": MAC}
NOW = 1_700_000_000_000


@pytest.fixture
def api(client: TestClient, seed: Seeder) -> Iterator[TestClient]:
    seed.api_key("test")
    yield client


def queued(client: redis.Redis) -> list[dict[str, Any]]:
    return [decode_item(raw) for raw in client.lrange(keyspace.INCOMING, 0, -1)]


def test_v2_report_is_queued_with_known_fields_only(
    api: TestClient, backend_redis: redis.Redis
) -> None:
    body = {
        "items": [
            {
                "position": {"latitude": 51.5, "longitude": -0.1},
                "bluetoothBeacons": [
                    {
                        "macAddress": MAC,
                        "name": "my-beacon",
                        "age": 3,
                        "signalStrength": -90,
                        "xtra_field": 4,
                    },
                    {"name": "beacon-2", "signalStrength": -92},
                ],
                "wifiAccessPoints": [{"signalStrength": -52}],
            }
        ]
    }
    response = api.post("/v2/geosubmit?key=test", json=body)
    assert response.status_code == 200 and response.json() == {}
    assert response.headers["access-control-allow-origin"] == "*"
    (item,) = queued(backend_redis)
    assert item["api_key"] == "test" and item["source"] == "gnss"
    report = item["report"]
    assert report["bluetoothBeacons"] == [
        {"macAddress": MAC, "name": "my-beacon", "age": 3, "signalStrength": -90}
    ]
    assert report["wifiAccessPoints"] == []
    assert isinstance(report["timestamp"], int)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert backend_redis.exists(f"apiuser:submit:test:{day}")


def test_umts_becomes_wcdma_and_source_is_kept(api: TestClient, backend_redis: redis.Redis) -> None:
    body = {
        "items": [
            {
                "position": {"latitude": 51.5, "longitude": -0.1, "source": "fused"},
                "cellTowers": [{"radioType": "umts", "mobileCountryCode": 234}],
            }
        ]
    }
    assert api.post("/v2/geosubmit?key=test", json=body).status_code == 200
    (item,) = queued(backend_redis)
    assert item["source"] == "fused"
    assert item["report"]["cellTowers"][0]["radioType"] == "wcdma"


def test_null_position_is_accepted_as_absent_fixing_quirk_5(
    api: TestClient, backend_redis: redis.Redis
) -> None:
    body = {"items": [{"position": None, "wifiAccessPoints": [WIFI], "cellTowers": None}]}
    assert api.post("/v2/geosubmit", json=body).status_code == 200
    (item,) = queued(backend_redis)
    assert item["report"]["position"] is None and item["api_key"] is None


def test_one_bad_field_never_rejects_the_batch(api: TestClient, backend_redis: redis.Redis) -> None:
    body = {
        "items": [
            {"wifiAccessPoints": [{"macAddress": 10}, WIFI]},
            {"wifiAccessPoints": [{"macAddress": MAC, "signalStrength": "strong"}]},
            "not even an object",
        ]
    }
    assert api.post("/v2/geosubmit", json=body).status_code == 200
    reports = [item["report"] for item in queued(backend_redis)]
    assert [r["wifiAccessPoints"] for r in reports] == [[WIFI], [WIFI]]


def test_nan_position_values_are_dropped(api: TestClient, backend_redis: redis.Redis) -> None:
    raw = (
        b'{"items": [{"position": {"latitude": NaN},'
        b' "wifiAccessPoints": [{"macAddress": "a82066010203"}]}]}'
    )
    assert api.post("/v2/geosubmit", content=raw).status_code == 200
    assert queued(backend_redis)[0]["report"]["position"] == {}


def test_empty_items_and_empty_body(api: TestClient, backend_redis: redis.Redis) -> None:
    assert api.post("/v2/geosubmit", json={"items": []}).status_code == 200
    assert queued(backend_redis) == []
    response = api.post("/v2/geosubmit", content=b"")
    assert response.status_code == 400
    assert "details" not in response.json()
    assert api.get("/v2/geosubmit").status_code == 400
    missing = api.post("/v2/geosubmit", json={})
    assert missing.json()["details"] == {"validation": {"items": "Required"}}


def test_110_reports_plus_junk_queue_110_items(api: TestClient, backend_redis: redis.Redis) -> None:
    items = [{"position": {"latitude": 51.5, "longitude": -0.1}, "wifiAccessPoints": [WIFI]}] * 110
    items.append({"latitude": 10, "longitude": 10, "whatever": "xx"})
    assert api.post("/v2/geosubmit", json={"items": items}).status_code == 200
    assert backend_redis.llen(keyspace.INCOMING) == 110


def test_v1_moves_position_fields_and_drops_nan(
    api: TestClient, backend_redis: redis.Redis
) -> None:
    raw = (
        b'{"items": [{"latitude": 51.5, "longitude": -0.1, "accuracy": NaN,'
        b' "altitude": -Infinity, "cellTowers": [{"radioType": "lte", "psc": 5}]},'
        b' {"wifiAccessPoints": [{"macAddress": "a82066010203"}]}]}'
    )
    assert api.post("/v1/geosubmit?key=test", content=raw).json() == {}
    first, second = (item["report"] for item in queued(backend_redis))
    assert first["position"] == {"latitude": 51.5, "longitude": -0.1}
    assert first["cellTowers"][0]["primaryScramblingCode"] == 5
    assert "position" not in second


def test_v0_submit_renames_and_answers_204(api: TestClient, backend_redis: redis.Redis) -> None:
    body = {
        "items": [
            {
                "lat": 51.5,
                "lon": -0.1,
                "time": "2016-04-07T03:33:20",
                "radio": "UMTS",
                "cell": [{"mcc": 234, "mnc": 30, "lac": 1, "cid": 2}],
                "wifi": [{"key": MAC, "signal": -70}],
            }
        ]
    }
    response = api.post("/v1/submit?key=test", json=body)
    assert response.status_code == 204 and response.content == b""
    (item,) = queued(backend_redis)
    report = item["report"]
    assert report["timestamp"] == 1460000000000
    assert report["position"] == {"latitude": 51.5, "longitude": -0.1}
    assert report["cellTowers"][0]["radioType"] == "wcdma"
    assert report["wifiAccessPoints"] == [{"macAddress": MAC, "signalStrength": -70}]


def test_gzip_bodies(api: TestClient, backend_redis: redis.Redis) -> None:
    body = gzip.compress(json.dumps({"items": [{"wifiAccessPoints": [WIFI]}]}).encode())
    headers = {"Content-Encoding": "gzip"}
    assert api.post("/v2/geosubmit", content=body, headers=headers).status_code == 200
    assert api.post("/v2/geosubmit", content=b"invalid", headers=headers).status_code == 400
    assert api.post("/v2/geosubmit", content=body[:-5], headers=headers).status_code == 400
    latin = '{"items": [{"carrier": "Résumé"}]}'.encode("latin-1")
    assert api.post("/v2/geosubmit", content=latin).status_code == 400
    assert backend_redis.llen(keyspace.INCOMING) == 1


def test_no_sampling_stores_nothing(
    client: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    seed.api_key("nosample", store_sample_submit=0)
    body = {"items": [{"wifiAccessPoints": [WIFI]}]}
    assert client.post("/v2/geosubmit?key=nosample", json=body).status_code == 200
    assert (
        client.post(
            "/v1/submit?key=nosample", json={"items": [{"wifi": [{"key": MAC}]}]}
        ).status_code
        == 204
    )
    assert queued(backend_redis) == []


def test_unknown_and_malformed_keys_store_anonymously(
    api: TestClient, backend_redis: redis.Redis
) -> None:
    body = {"items": [{"wifiAccessPoints": [WIFI]}]}
    for key in ("invalid_key", "abcdefg"):
        assert api.post(f"/v2/geosubmit?key={key}", json=body).status_code == 200
    assert [item["api_key"] for item in queued(backend_redis)] == [None, None]
    assert backend_redis.keys("apiuser:*") == []


def test_submit_is_limited_per_key_quirk_15_kept(client: TestClient, seed: Seeder) -> None:
    seed.api_key("tiny", maxreq=2)
    body = {"items": [{"wifiAccessPoints": [WIFI]}]}
    codes = [client.post("/v2/geosubmit?key=tiny", json=body).status_code for _ in range(3)]
    assert codes == [200, 200, 403]


def test_redis_down_is_503_with_retry_after(make_settings: Any, migrated_sqlite_url: str) -> None:
    from ichnaea.web.app import create_app

    settings = make_settings(DB_READONLY_URI=migrated_sqlite_url, REDIS_URI="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        response = client.post("/v2/geosubmit", json={"items": [{"wifiAccessPoints": [WIFI]}]})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json()["error"]["errors"][0]["reason"] == "serviceUnavailable"


# --- the parsers alone ------------------------------------------------------------------


def test_sentinels_and_strings_are_understood() -> None:
    (report,) = parse_v2(
        {
            "items": [
                {
                    "cellTowers": [
                        {
                            "radioType": "LTE",
                            "mobileCountryCode": "234",
                            "mobileNetworkCode": 30,
                            "locationAreaCode": 2147483647,
                            "cellId": 2147483647,
                            "signalStrength": "-70",
                        }
                    ]
                }
            ]
        },
        now=NOW,
    )
    assert report["cellTowers"] == [
        {
            "radioType": "lte",
            "mobileCountryCode": 234,
            "mobileNetworkCode": 30,
            "signalStrength": -70,
        }
    ]
    assert report["timestamp"] == NOW


@pytest.mark.parametrize(
    ("given", "stored"), [("gps", "gnss"), ("manual", "fixed"), ("GNSS", "gnss"), ("bogus", None)]
)
def test_position_source_vocabulary_quirk_4(given: str, stored: str | None) -> None:
    (report,) = parse_v2(
        {"items": [{"position": {"latitude": 1, "source": given}, "wifiAccessPoints": [WIFI]}]},
        now=NOW,
    )
    assert report["position"].get("source") == stored


def test_nr_cells_are_kept_with_their_36_bit_id() -> None:
    (report,) = parse_v2(
        {
            "items": [
                {
                    "cellTowers": [
                        {"radioType": "nr", "mobileCountryCode": 234, "newRadioCellId": 68719476735}
                    ]
                }
            ]
        },
        now=NOW,
    )
    assert report["cellTowers"][0]["cellId"] == 68719476735


def test_reports_without_networks_are_dropped_and_top_radio_applies() -> None:
    reports = parse_v2(
        {
            "items": [
                {"position": {"latitude": 1}},
                {"radioType": "lte", "cellTowers": [{"radioType": "18"}, {"radioType": ""}, {}]},
            ]
        },
        now=NOW,
    )
    assert [c.get("radioType") for c in reports[0]["cellTowers"]] == ["lte", "lte", "lte"]
    assert "radioType" not in reports[0]


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("2016-04-07T03:33:20", 1460000000000),
        ("2016-04-07T03:33:20Z", 1460000000000),
        ("2016-04-07T05:33:20+02:00", 1460000000000),  # quirk 6 fixed: the offset counts
        ("1710-02-28", NOW),
        ("garbage", NOW),
        (1460000000000, 1460000000000),  # quirk 6: a number is read as epoch ms, not a 400
        (None, NOW),
    ],
)
def test_v0_time_honours_offsets_and_numbers_fixing_quirk_6(time: object, expected: int) -> None:
    (report,) = parse_v0({"items": [{"time": time, "wifi": [{"key": MAC}]}]}, now=NOW)
    assert report["timestamp"] == expected


def test_v0_blue_without_key_and_unknown_radio() -> None:
    assert parse_v0({"items": [{"blue": [{}]}]}, now=NOW) == []
    (report,) = parse_v0({"items": [{"radio": "foo", "cell": [{"mcc": 1}]}]}, now=NOW)
    assert "radioType" not in report["cellTowers"][0]


def test_v1_without_position_fields_has_no_position_key() -> None:
    (report,) = parse_v1({"items": [{"wifiAccessPoints": [WIFI]}]}, now=NOW)
    assert "position" not in report


def test_backlog_over_the_limit_refuses_with_503_and_keeps_the_queue(
    backend: Backend, seed: Seeder, make_settings: Any, backend_redis: redis.Redis
) -> None:
    from ichnaea.web.app import create_app

    settings = make_settings(
        DB_READONLY_URI=backend.db_url, REDIS_URI=backend.redis_url, MAX_QUEUE_BACKLOG="3"
    )
    body = {"items": [{"wifiAccessPoints": [WIFI]}]}
    with TestClient(create_app(settings)) as client:
        codes = [client.post("/v2/geosubmit", json=body).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 503]
        refused = client.post("/v1/submit", json={"items": [{"wifi": [{"key": MAC}]}]})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "30"
    assert backend_redis.llen(keyspace.INCOMING) == 3  # nothing evicted, nothing added


def test_null_store_sample_submit_on_a_known_key_stores_everything_quirk_14_fixed(
    client: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    """The original read NULL as "never store" for known keys (unknown keys: 100 %)."""
    seed.api_key("nullsample", store_sample_submit=None)
    body = {"items": [{"wifiAccessPoints": [WIFI]}]}
    assert client.post("/v2/geosubmit?key=nullsample", json=body).status_code == 200
    assert [item["api_key"] for item in queued(backend_redis)] == ["nullsample"]


def test_batch_upload_is_counted_even_when_every_report_was_dropped_quirk_10_kept(
    backend: Backend, make_settings: Any, seed: Seeder, backend_redis: redis.Redis
) -> None:
    """Kept: ``data.batch.upload`` counts accepted uploads, not stored reports."""
    import socket

    from ichnaea.web.app import create_app

    seed.api_key("test")
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(5)
    settings = make_settings(
        DB_READONLY_URI=backend.db_url,
        REDIS_URI=backend.redis_url,
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=str(collector.getsockname()[1]),
    )
    lines: list[str] = []
    with TestClient(create_app(settings)) as client:
        # Neither report has a network: both are dropped at the API.
        body = {"items": [{"wifiAccessPoints": []}, {"position": {"latitude": 1, "longitude": 2}}]}
        assert client.post("/v2/geosubmit?key=test", json=body).status_code == 200
        while not any(line.startswith("location.data.batch.upload:") for line in lines):
            lines.extend(collector.recv(65536).decode().splitlines())
    collector.close()
    assert queued(backend_redis) == []
    assert "location.data.batch.upload:1|c|#key:test" in lines
