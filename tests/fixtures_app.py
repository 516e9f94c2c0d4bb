"""Application fixtures: settings and a client of the real ASGI app.

``backend`` pairs the storage the way deployments do: ``real`` is the
MariaDB database and the Redis server of this machine, ``embedded`` the
SQLite file and the embedded Redis. ``client`` is a Starlette TestClient
over ``create_app(settings)`` with its lifespan running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from starlette.testclient import TestClient

from ichnaea.config import Settings, load_settings
from ichnaea.web.app import create_app

TEST_GEOIP = Path(__file__).parent / "data" / "GeoIP2-City-Test.mmdb"


@dataclass(frozen=True)
class Backend:
    name: str
    db_url: str
    redis_url: str


@pytest.fixture(params=[pytest.param("real", marks=pytest.mark.mysql), "embedded"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "real":
        db_url = request.getfixturevalue("migrated_mysql_url")
        redis_url = request.getfixturevalue("redis_server_url")
    else:
        db_url = request.getfixturevalue("migrated_sqlite_url")
        redis_url = request.getfixturevalue("embedded_redis_url")
    redis.Redis.from_url(redis_url).flushdb()
    return Backend(request.param, db_url, redis_url)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings from an environment of test defaults plus the given variables."""

    def make(**env: str) -> Settings:
        base = {
            "ICHNAEA_DATA_DIR": str(tmp_path / "data"),
            "GEOIP_PATH": str(TEST_GEOIP),
            "WEB_PROCESSES": "1",
            "WORKER_PROCESSES": "1",
            "TESTING": "true",
        }
        return load_settings({**base, **env})

    return make


@pytest.fixture
def app_settings(backend: Backend, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        DB_READONLY_URI=backend.db_url, DB_READWRITE_URI=backend.db_url, REDIS_URI=backend.redis_url
    )


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client
