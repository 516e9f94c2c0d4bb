"""Property test: whatever the body, the submit APIs answer 200/204 or 400, never 500."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests._strategies import json_values

FIELDS = ["macAddress", "signalStrength", "radioType", "mobileCountryCode", "cellId",
          "newRadioCellId", "psc", "key", "signal", "mcc", "cid", "ssid", "name"]  # fmt: skip
entries = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)
reports = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": json_values,
        "time": json_values,
        "position": st.dictionaries(st.sampled_from(["latitude", "source", "age"]), json_values)
        | json_values,
        "latitude": json_values,
        "radioType": json_values,
        "wifiAccessPoints": st.lists(entries, max_size=4) | json_values,
        "cellTowers": st.lists(entries, max_size=4) | json_values,
        "bluetoothBeacons": st.lists(entries, max_size=4) | json_values,
        "wifi": st.lists(entries, max_size=4) | json_values,
        "cell": st.lists(entries, max_size=4) | json_values,
    },
)
bodies = st.one_of(
    json_values, st.fixed_dictionaries({"items": st.lists(reports | json_values, max_size=4)})
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, path=st.sampled_from(["/v2/geosubmit", "/v1/geosubmit", "/v1/submit"]))
def test_random_bodies_never_fail(client: TestClient, body: Any, path: str) -> None:
    response = client.post(path, content=json.dumps(body))
    assert response.status_code in (200, 204, 400), response.text
    if response.status_code != 204:
        assert isinstance(response.json(), dict)
