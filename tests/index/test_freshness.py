"""Through the real app and pipeline: what the pipeline writes is answered within 2 s.

The app runs with the station index on (its refresher thread follows the
pipeline's announcements, as in production); reports go to
``/v2/geosubmit``, the pipeline runs until its queues are empty (as
``ichnaea process`` does), and ``/v1/geolocate`` is asked again until it
answers from the new state, or 2 s pass. Each test runs on MariaDB + the
Redis server and on SQLite + the embedded Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from ichnaea.config import Settings
from ichnaea.geo import haversine_m
from tests.fixtures_app import Backend
from tests.fixtures_pipeline import Pipeline

FRESHNESS_S = 2.0
MACS = ["0a1b2c3d4e01", "0a1b2c3d4e02", "0a1b2c3d4e03"]
OLD = (52.52, 13.40)
NEW = (52.52, 13.43)  # about 2 km east: a move (more than 1 km), within 5 km


@pytest.fixture
def app_settings(
    backend: Backend, make_settings: Callable[..., Settings], tmp_path: Path
) -> Settings:
    return make_settings(
        DB_READONLY_URI=backend.db_url,
        DB_READWRITE_URI=backend.db_url,
        REDIS_URI=backend.redis_url,
        STATION_INDEX="true",
        STATION_INDEX_DIR=str(tmp_path / "index"),
    )


def _wait_for_index(client: TestClient) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get("/__heartbeat__").json()["station_index"]
        if status["up"]:
            return status
        time.sleep(0.05)
    raise AssertionError(f"station index not up: {status}")


def _reports(lat: float, lon: float, count: int) -> list[dict[str, Any]]:
    return [
        {
            "position": {"latitude": lat + i * 1e-5, "longitude": lon, "accuracy": 10.0},
            "wifiAccessPoints": [
                {"macAddress": mac, "signalStrength": -60 - j} for j, mac in enumerate(MACS)
            ],
        }
        for i in range(count)
    ]


def _locate(client: TestClient) -> httpx.Response:
    body = {"wifiAccessPoints": [{"macAddress": mac} for mac in MACS], "considerIp": False}
    return client.post("/v1/geolocate?key=test", json=body)


def _answer_within(
    client: TestClient, done: Callable[[httpx.Response], bool]
) -> tuple[httpx.Response, float]:
    """Ask until ``done(answer)`` or :data:`FRESHNESS_S`; the last answer and the wait."""
    started = time.monotonic()
    while True:
        answer = _locate(client)
        waited = time.monotonic() - started
        if done(answer) or waited > FRESHNESS_S:
            return answer, waited
        time.sleep(0.01)


def _distance_m(answer: httpx.Response, point: tuple[float, float]) -> float:
    location = answer.json()["location"]
    return float(haversine_m(location["lat"], location["lng"], point[0], point[1]))


def test_learned_and_moved_stations_are_answered_from_the_index_within_2_s(
    client: TestClient, pipeline: Pipeline
) -> None:
    pipeline.api_key("test")
    _wait_for_index(client)
    assert _locate(client).status_code == 404

    pipeline.submit(_reports(*OLD, count=4))
    pipeline.run()
    answer, waited = _answer_within(client, lambda a: a.status_code == 200)
    assert answer.status_code == 200, answer.text
    assert waited < FRESHNESS_S
    print(f"learned: answered {waited * 1000:.0f} ms after the pipeline finished")
    assert _distance_m(answer, OLD) < 50
    before = answer.json()["location"]

    # Reports from 2 km away: a move. The stations are blocked and learned
    # afresh from these twelve consistent GNSS observations, enough to be
    # relearned at once (issue 11); the index answers from the new rows.
    pipeline.submit(_reports(*NEW, count=12))
    pipeline.run()
    answer, waited = _answer_within(
        client, lambda a: a.status_code == 200 and a.json()["location"] != before
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["location"] != before, f"not moved within {FRESHNESS_S} s"
    assert waited < FRESHNESS_S
    print(f"moved: answered {waited * 1000:.0f} ms after the pipeline finished")
    assert _distance_m(answer, OLD) > 1000  # from the new place, not the old one
    status = _wait_for_index(client)
    assert status["overlay_rows"] >= len(MACS)
