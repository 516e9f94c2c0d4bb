"""Degraded operation: the locate APIs keep answering, with less, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from ichnaea.config import Settings
from ichnaea.models.api_key import ApiKey
from ichnaea.web.app import create_app
from tests.fixtures_app import PROXY_PEER

LONDON = {"X-Forwarded-For": "81.2.69.192"}
DOWN_DB = "mysql://root@127.0.0.1:1/location"
DOWN_REDIS = "redis://127.0.0.1:1/0"
NETWORKS = {
    "cellTowers": [
        {
            "radioType": "gsm",
            "mobileCountryCode": 234,
            "mobileNetworkCode": 30,
            "locationAreaCode": 1,
            "cellId": cid,
        }
        for cid in (1, 2, 3)
    ],
    "wifiAccessPoints": [{"macAddress": "a82066000001"}, {"macAddress": "a82066000002"}],
}
GEOIP_FALLBACK = {
    "location": {"lat": 51.5142, "lng": -0.0931},
    "accuracy": 40000.0,
    "fallback": "ipf",
}


def test_23_station_tables_missing_falls_back_to_geoip(
    make_settings: Callable[..., Settings], tmp_path: Path, redis_server_url: str
) -> None:
    # A database holding only a working api_key table: every station query fails.
    url = f"sqlite:///{tmp_path / 'keys-only.sqlite'}"
    engine = sa.create_engine(url)
    ApiKey.__table__.create(engine)
    with engine.begin() as conn:
        conn.execute(
            ApiKey.__table__.insert().values(valid_key="test", allow_locate=True, allow_region=True)
        )
    engine.dispose()
    settings = make_settings(DB_READONLY_URI=url, REDIS_URI=redis_server_url)
    with TestClient(create_app(settings), client=PROXY_PEER) as client:
        response = client.post("/v1/geolocate?key=test", json=NETWORKS, headers=LONDON)
        assert response.status_code == 200
        assert response.json() == GEOIP_FALLBACK
        country = client.post("/v1/country?key=test", json=NETWORKS, headers=LONDON)
        assert country.json()["country_code"] == "GB"


def test_24_database_down_uses_default_key_and_geoip(
    make_settings: Callable[..., Settings], redis_server_url: str
) -> None:
    settings = make_settings(DB_READONLY_URI=DOWN_DB, REDIS_URI=redis_server_url)
    with TestClient(create_app(settings), client=PROXY_PEER) as client:
        ip_only = client.post("/v1/geolocate?key=test", json={}, headers=LONDON)
        assert ip_only.json() == {"location": {"lat": 51.5142, "lng": -0.0931}, "accuracy": 40000.0}
        networks = client.post("/v1/geolocate?key=test", json=NETWORKS, headers=LONDON)
        assert networks.json() == GEOIP_FALLBACK
        no_ip = client.post("/v1/geolocate?key=test", json=NETWORKS)
        assert no_ip.status_code == 404


def test_redis_down_still_answers_without_limits_fixing_q5(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(DB_READONLY_URI=DOWN_DB, REDIS_URI=DOWN_REDIS)
    with TestClient(
        create_app(settings), client=PROXY_PEER, raise_server_exceptions=False
    ) as client:
        for _ in range(3):
            response = client.post("/v1/geolocate?key=test", json=NETWORKS, headers=LONDON)
            assert response.status_code == 200
            assert response.json() == GEOIP_FALLBACK
        assert client.post("/v1/country?key=test", json={}, headers=LONDON).status_code == 200
