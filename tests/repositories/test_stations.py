"""Station lookups of the locate path, on MariaDB and SQLite.

Cells of different radios live in tables whose keys have different widths
(11 bytes, 17 for 5G NR); a lookup must hand back each key exactly as the
query gave it, whatever else the query holds. A database failure, however
it comes (connect, checkout, query, cursor), leaves ``StationReader`` as a
SQLAlchemy error that says whether the database is out of reach.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, ResourceClosedError

from ichnaea.repositories.session import create_engine
from ichnaea.repositories.stations import StationReader, is_outage
from tests.fixtures_pipeline import Pipeline

# Nothing listens on port 1: connecting is refused at once.
UNREACHABLE_MYSQL = "mysql+mysqldb://root@127.0.0.1:1/location"

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


def test_station_reader_raises_an_outage_error_when_the_database_is_unreachable() -> None:
    engine = create_engine(UNREACHABLE_MYSQL, readonly=True)
    try:
        with pytest.raises(DBAPIError) as raised:
            StationReader(engine)
    finally:
        engine.dispose()
    assert raised.value.orig.args[0] == 2002  # the driver's "can't connect"


class BrokenCursor:
    """A cursor on a connection that just broke: the query fails, and so does closing."""

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    def close(self) -> None:
        raise sqlite3.ProgrammingError("Cannot operate on a closed database.")


class BrokenConnection:
    def cursor(self) -> BrokenCursor:
        return BrokenCursor()

    def close(self) -> None:
        pass


def test_station_reader_query_on_a_broken_connection_is_an_outage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", readonly=True)
    try:
        with StationReader(engine) as reader:
            monkeypatch.setattr(reader._conn, "dbapi_connection", BrokenConnection())
            with pytest.raises(DBAPIError) as raised:
                reader.rows("SELECT 1", ())
            assert is_outage(raised.value)
            # The connection was invalidated: later lookups of the request fail cleanly.
            with pytest.raises(ResourceClosedError) as again:
                reader.rows("SELECT 1", ())
            assert is_outage(again.value)
    finally:
        engine.dispose()
