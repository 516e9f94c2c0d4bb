"""Application fixtures: settings and a client of the real ASGI app.

``backend`` pairs the storage the way deployments do: ``real`` is the
MariaDB database and the Redis server of this machine, ``embedded`` the
SQLite file and the embedded Redis. ``client`` is a Starlette TestClient
over ``create_app(settings)`` with its lifespan running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from starlette.testclient import TestClient

from ichnaea.api.context import STATE_KEY as API_STATE_KEY
from ichnaea.broker.client import connect_url
from ichnaea.codecs import encode_areaid, encode_cellid, mac_shard_id
from ichnaea.config import Settings, load_settings
from ichnaea.enums import Radio
from ichnaea.models.api_key import ApiKey as ApiKeyModel
from ichnaea.models.cell import CELL_TABLES, CellArea
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS
from ichnaea.repositories.session import create_engine
from ichnaea.web.app import create_app
from tests._support import parametrized

TEST_GEOIP = Path(__file__).parent / "data" / "GeoIP2-City-Test.mmdb"
# Test requests arrive as from a reverse proxy on the same host: the default
# FORWARDED_ALLOW_IPS trusts it, so a test's X-Forwarded-For names the client.
PROXY_PEER = ("127.0.0.1", 50000)


@dataclass(frozen=True)
class Backend:
    name: str
    db_url: str
    redis_url: str


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``backend``: MariaDB with the Redis server, SQLite with the embedded Redis, and,
    for tests marked ``redis_cluster``, MariaDB with a Redis Cluster."""
    if "backend" in metafunc.fixturenames and not parametrized(metafunc, "backend"):
        kinds = [pytest.param("real", marks=pytest.mark.mysql), "embedded"]
        if metafunc.definition.get_closest_marker("redis_cluster"):
            kinds.append(pytest.param("cluster", marks=pytest.mark.mysql))
        metafunc.parametrize("backend", kinds, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "embedded":
        db_url = request.getfixturevalue("migrated_sqlite_url")
        redis_url = request.getfixturevalue("embedded_redis_url")
    else:
        db_url = request.getfixturevalue("migrated_mysql_url")
        name = "redis_cluster_url" if request.param == "cluster" else "redis_server_url"
        redis_url = request.getfixturevalue(name)
    client = connect_url(redis_url)
    client.flushdb()
    client.close()
    return Backend(request.param, db_url, redis_url)


@pytest.fixture
def backend_redis(backend: Backend) -> Iterator[redis.Redis]:
    """A client of the same Redis the app under test uses."""
    client = connect_url(backend.redis_url)
    yield client
    client.close()


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
            # Most tests write stations straight into the database and ask at
            # once; the index tests (tests/index/) turn it on and show how
            # it follows the pipeline.
            "STATION_INDEX": "false",
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
    with TestClient(create_app(app_settings), client=PROXY_PEER) as test_client:
        yield test_client


class Seeder:
    """Writes rows for a test through a read-write engine and removes them afterwards.

    Station defaults follow the original test factories: lat 51.5, lon -0.1,
    region GB, samples 1, created = modified = now, last_seen today; radius
    5 for Wi-Fi and Bluetooth, 500 for cells; cell areas radius 25,000 with
    one cell; cells in MCC 234, MNC 30.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.tables: set[sa.Table] = set()
        self.now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    def insert(self, table: sa.Table, **values: object) -> dict[str, object]:
        with self.engine.begin() as conn:
            conn.execute(table.insert().values(**values))
        self.tables.add(table)
        return values

    def _station(self, **values: object) -> dict[str, object]:
        defaults: dict[str, object] = {
            "lat": 51.5,
            "lon": -0.1,
            "region": "GB",
            "samples": 1,
            "created": self.now,
            "modified": self.now,
            "last_seen": self.now.date(),
        }
        defaults.update(values)
        for bound in ("max_lat", "min_lat"):
            defaults.setdefault(bound, defaults["lat"])
        for bound in ("max_lon", "min_lon"):
            defaults.setdefault(bound, defaults["lon"])
        return defaults

    def wifi(self, mac: str, **values: object) -> dict[str, object]:
        table = WIFI_SHARDS[mac_shard_id(mac)].__table__
        return self.insert(table, mac=bytes.fromhex(mac), **self._station(radius=5, **values))  # type: ignore[arg-type]

    def blue(self, mac: str, **values: object) -> dict[str, object]:
        table = BLUE_SHARDS[mac_shard_id(mac)].__table__
        return self.insert(table, mac=bytes.fromhex(mac), **self._station(radius=5, **values))  # type: ignore[arg-type]

    def cell(
        self, radio: Radio, lac: int, cid: int, *, mcc: int = 234, mnc: int = 30, **values: object
    ) -> dict[str, object]:
        table = CELL_TABLES[radio].__table__
        return self.insert(
            table,  # type: ignore[arg-type]
            cellid=encode_cellid(radio, mcc, mnc, lac, cid),
            radio=int(radio),
            mcc=mcc,
            mnc=mnc,
            lac=lac,
            cid=cid,
            **self._station(radius=500, **values),
        )

    def area(
        self, radio: Radio, lac: int, *, mcc: int = 234, mnc: int = 30, **values: object
    ) -> dict[str, object]:
        row: dict[str, object] = {
            "lat": 51.5,
            "lon": -0.1,
            "region": "GB",
            "radius": 25_000,
            "num_cells": 1,
            "avg_cell_radius": 500,
            "created": self.now,
            "modified": self.now,
            "last_seen": self.now.date(),
        }
        row.update(values)
        return self.insert(
            CellArea.__table__,  # type: ignore[arg-type]
            areaid=encode_areaid(radio, mcc, mnc, lac),
            radio=int(radio),
            mcc=mcc,
            mnc=mnc,
            lac=lac,
            **row,
        )

    def api_key(self, key: str, **values: object) -> dict[str, object]:
        row: dict[str, object] = {
            "maxreq": 0,
            "allow_locate": True,
            "allow_region": True,
            "allow_fallback": False,
            "store_sample_locate": 100,
            "store_sample_submit": 100,
        }
        row.update(values)
        return self.insert(ApiKeyModel.__table__, valid_key=key, **row)  # type: ignore[arg-type]

    def cleanup(self) -> None:
        with self.engine.begin() as conn:
            for table in self.tables:
                conn.execute(table.delete())


@pytest.fixture
def seed(backend: Backend) -> Iterator[Seeder]:
    engine = create_engine(backend.db_url, pooled=False)
    seeder = Seeder(engine)
    try:
        yield seeder
    finally:
        seeder.cleanup()
        engine.dispose()


def flush_usage(client: TestClient) -> None:
    """Send the app's batched key usage to Redis now (it would within 50 ms)."""
    state = client.app_state[API_STATE_KEY]
    assert client.portal is not None, "use the client inside its with block"
    client.portal.call(state.usage.flush)
