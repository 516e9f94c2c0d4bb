"""Station lookups of the locate path, on MariaDB and SQLite.

Cells of different radios live in tables whose keys have different widths
(11 bytes, 17 for 5G NR); a lookup must hand back each key exactly as the
query gave it, whatever else the query holds.
"""

from __future__ import annotations

from typing import Any

from tests.fixtures_pipeline import Pipeline

WIFIS = [{"macAddress": mac, "signalStrength": -60} for mac in ("3680873e9b83", "3680873e9b84")]
LTE = {"radioType": "lte", "mobileCountryCode": 234, "mobileNetworkCode": 30,
       "locationAreaCode": 2, "cellId": 1234, "signalStrength": -80}  # fmt: skip
# A 36-bit NR cell identity and a 24-bit tracking area code.
NR = {"radioType": "nr", "mobileCountryCode": 234, "mobileNetworkCode": 30,
      "locationAreaCode": 70000, "newRadioCellId": 2**35 + 1, "signalStrength": -80}  # fmt: skip
GSM = {"radioType": "gsm", "mobileCountryCode": 234, "mobileNetworkCode": 30,
       "locationAreaCode": 3, "cellId": 99, "signalStrength": -80}  # fmt: skip


def networks(*cells: dict[str, Any]) -> dict[str, Any]:
    return {"cellTowers": list(cells), "wifiAccessPoints": WIFIS}


def test_locate_with_learned_lte_and_nr_cells_answers_a_position(pipeline: Pipeline) -> None:
    pipeline.api_key("test")
    report = {"position": {"latitude": 51.5, "longitude": -0.1, "accuracy": 10.0},
              **networks(LTE, NR, GSM)}  # fmt: skip
    pipeline.submit([report])
    pipeline.run()
    assert len(pipeline.rows("cell_lte")) == len(pipeline.rows("cell_nr")) == 1

    for cells in ((LTE, NR), (GSM, NR), (LTE, NR, GSM)):
        query = {**networks(*cells), "considerIp": False}
        response = pipeline.client.post("/v1/geolocate?key=test", json=query)
        assert response.status_code == 200, response.text
        assert response.json()["location"] == {"lat": 51.5, "lng": -0.1}
        cells_only = {"cellTowers": list(cells), "considerIp": False}
        response = pipeline.client.post("/v1/geolocate?key=test", json=cells_only)
        assert response.status_code == 200, response.text
        assert response.json()["location"] == {"lat": 51.5, "lng": -0.1}
        country = pipeline.client.post("/v1/country?key=test", json=query)
        assert country.status_code == 200, country.text
        assert country.json()["country_code"] == "GB"


def test_locate_with_unknown_cells_in_learned_lte_and_nr_areas_answers_the_area(
    pipeline: Pipeline,
) -> None:
    pipeline.api_key("test")
    report = {"position": {"latitude": 51.5, "longitude": -0.1, "accuracy": 10.0},
              "cellTowers": [LTE, NR]}  # fmt: skip
    pipeline.submit([report])
    pipeline.run()
    assert len(pipeline.rows("cell_area")) == len(pipeline.rows("cell_area_nr")) == 1
    # Cells never seen, in the two learned areas: only the areas can answer.
    unknown = [{**LTE, "cellId": 4321}, {**NR, "newRadioCellId": 2**35 + 7}]
    query = {"cellTowers": unknown, "considerIp": False}
    response = pipeline.client.post("/v1/geolocate?key=test", json=query)
    assert response.status_code == 200, response.text
    assert response.json()["location"] == {"lat": 51.5, "lng": -0.1}
    assert response.json()["fallback"] == "lacf"
    country = pipeline.client.post("/v1/country?key=test", json=query)
    assert country.status_code == 200, country.text
    assert country.json()["country_code"] == "GB"
