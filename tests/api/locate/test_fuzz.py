"""Property test: whatever the body, the locate APIs answer 200, 400 or 404 with JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests._strategies import json_values
from tests.fixtures_app import Seeder

FIELDS = [
    "macAddress",
    "signalStrength",
    "age",
    "channel",
    "frequency",
    "radioType",
    "mobileCountryCode",
    "mobileNetworkCode",
    "locationAreaCode",
    "cellId",
    "newRadioCellId",
    "psc",
    "timingAdvance",
    "signalToNoiseRatio",
    "ssid",
    "name",
]
entries = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "wifiAccessPoints": st.lists(entries, max_size=5) | json_values,
            "cellTowers": st.lists(entries, max_size=5) | json_values,
            "bluetoothBeacons": st.lists(entries, max_size=5) | json_values,
            "fallbacks": st.dictionaries(st.sampled_from(["lacf", "ipf"]), json_values)
            | json_values,
            "considerIp": json_values,
            "radioType": json_values,
            "homeMobileCountryCode": json_values,
            "carrier": json_values,
        },
    ),
)
raw_bodies = st.binary(max_size=200)


def check(response: Any) -> None:
    assert response.status_code in (200, 400, 404), response.text
    body = response.json()
    assert isinstance(body, dict)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, path=st.sampled_from(["/v1/geolocate", "/v1/country"]))
def test_random_json_bodies_never_fail(
    client: TestClient, seed: Seeder, body: Any, path: str
) -> None:
    if not seed.tables:
        seed.api_key("test")
    check(
        client.post(
            f"{path}?key=test", content=json.dumps(body), headers={"X-Forwarded-For": "81.2.69.192"}
        )
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=raw_bodies, gzip_header=st.booleans())
def test_random_bytes_never_fail(
    client: TestClient, seed: Seeder, raw: bytes, gzip_header: bool
) -> None:
    if not seed.tables:
        seed.api_key("test")
    headers = {"Content-Encoding": "gzip"} if gzip_header else {}
    check(client.post("/v1/geolocate?key=test", content=raw, headers=headers))
