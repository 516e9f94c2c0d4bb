from pathlib import Path

import pytest
import redis

from ichnaea.embedded import EmbeddedRedisError, ensure_embedded_redis


def test_embedded_redis_starts_is_shared_and_stops(tmp_path: Path) -> None:
    owner = ensure_embedded_redis(tmp_path)
    try:
        assert owner.process is not None
        client = redis.Redis.from_url(owner.url)
        client.set("k", "v")
        # A second role finds the running server and shares its data.
        guest = ensure_embedded_redis(tmp_path)
        assert guest.process is None and guest.url == owner.url
        assert redis.Redis.from_url(guest.url).get("k") == b"v"
        guest.stop()  # not the owner: the server keeps running
        assert client.ping()
    finally:
        owner.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(owner.url).ping()


def test_embedded_redis_keeps_data_across_restarts(tmp_path: Path) -> None:
    first = ensure_embedded_redis(tmp_path)
    redis.Redis.from_url(first.url).rpush("queue", "accepted-report")
    first.stop()
    second = ensure_embedded_redis(tmp_path)
    try:
        assert redis.Redis.from_url(second.url).lrange("queue", 0, -1) == [b"accepted-report"]
    finally:
        second.stop()


def test_too_long_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(EmbeddedRedisError, match="ICHNAEA_DATA_DIR"):
        ensure_embedded_redis(deep)
