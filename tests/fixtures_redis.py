"""Redis fixtures: the real server on this machine, the embedded one, and a cluster.

``redis_url`` is parametrised over both, so every test that uses it runs
against the Redis server at ``ICHNAEA_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379``, one database number per xdist worker, shifted by
``ICHNAEA_TEST_REDIS_DB_OFFSET``) and
against an embedded server started for the session. Each test starts with
an empty database.

Tests marked ``redis_cluster`` (the queues, limits, counters and caches)
run a third time against a Redis Cluster of three masters that the session
starts itself (one per xdist worker; ``tests.scaleout.servers``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ichnaea.broker.client import connect_url
from ichnaea.broker.embedded import ensure_embedded_redis
from tests._support import backend_unavailable, parametrized, xdist_index
from tests.scaleout.servers import RedisClusterServers, ServerStartError


@pytest.fixture(scope="session")
def redis_server_url(worker_id: str) -> str:
    base = os.environ.get("ICHNAEA_TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
    # Two test runs sharing one server (parallel sessions) set different offsets.
    offset = int(os.environ.get("ICHNAEA_TEST_REDIS_DB_OFFSET", "0"))
    url = f"{base}/{1 + (offset + xdist_index(worker_id)) % 15}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        backend_unavailable(f"Redis at {url} is unreachable: {exc}")
    return url


@pytest.fixture(scope="session")
def embedded_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Short path: unix socket paths are limited to 107 bytes.
    data_dir = Path(tmp_path_factory.mktemp("eredis"))
    server = ensure_embedded_redis(data_dir)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = Path(tmp_path_factory.mktemp("rcluster"))
    try:
        servers = RedisClusterServers(base, masters=3).start()
    except (ServerStartError, OSError) as exc:
        backend_unavailable(f"could not start a Redis Cluster: {exc}")
    yield servers.url
    servers.stop()


_URL_FIXTURES = {
    "server": "redis_server_url",
    "embedded": "embedded_redis_url",
    "cluster": "redis_cluster_url",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_url" in metafunc.fixturenames and not parametrized(metafunc, "redis_url"):
        kinds = ["server", "embedded"]
        if metafunc.definition.get_closest_marker("redis_cluster"):
            kinds.append("cluster")
        metafunc.parametrize("redis_url", kinds, indirect=True)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(_URL_FIXTURES[request.param])
    client = connect_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect_url(redis_url)
    yield client
    client.close()
