"""Redis fixtures: the real server on this machine and the embedded one.

``redis_url`` is parametrised over both, so every test that uses it runs
against the Redis server at ``ICHNAEA_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379``, one database number per xdist worker, shifted by
``ICHNAEA_TEST_REDIS_DB_OFFSET``) and
against an embedded server started for the session. Each test starts with
an empty database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ichnaea.broker.embedded import ensure_embedded_redis
from tests._support import backend_unavailable, xdist_index


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


@pytest.fixture(params=["server", "embedded"])
def redis_url(request: pytest.FixtureRequest) -> str:
    name = "redis_server_url" if request.param == "server" else "embedded_redis_url"
    url: str = request.getfixturevalue(name)
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
